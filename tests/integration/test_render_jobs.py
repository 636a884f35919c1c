"""`pvrec render --jobs N`: the same output as one process, frame for frame, decoded back; its
warnings told once, Ctrl-C and SIGTERM stopping every worker, the cases drawn in one process.

The recording: 26 frames of 64 Ki pages, a key frame every 5 (six chunks for two workers),
frame 12 (a delta) damaged, so the frames after it up to the next key frame are skipped too.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest

from pvrec.errors import PvrecError
from pvrec.render.pipeline import render_recording
from tests.helpers import alive, make_recording, run_pvrec, start_pvrec, wait_until
from tests.integration.test_render import decode

DAMAGED = 12


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> Path:
    r = make_recording(tmp_path_factory.mktemp("jobs") / "run", 26, pages=1 << 16, key_every=5)
    (r / "frames" / f"{DAMAGED:06d}.npz").write_bytes(b"not a zip")
    return r


def both(rec: Path, tmp: Path, suffix: str, **kw) -> tuple[list, list, list, list]:
    """Render with --jobs 1 and 2: (frames 1, frames 2, warnings 1, warnings 2)."""
    got = []
    for jobs in (1, 2):
        said: list[str] = []
        s = render_recording(rec, tmp / f"j{jobs}{suffix}", jobs=jobs, warn=said.append, **kw)
        assert s.jobs == jobs
        got.append((decode(s.path), said, s))
    (f1, w1, s1), (f2, w2, s2) = got
    assert s1.frames == s2.frames and s1.rendered == s2.rendered
    assert s1.poster_frame == s2.poster_frame
    return f1, f2, w1, w2


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webp"])
def test_two_jobs_give_one_process_output_frame_for_frame(rec, tmp_path, suffix):
    f1, f2, w1, w2 = both(rec, tmp_path, suffix, every=1)
    assert len(f1) == 26 - 3  # frame 12 and the deltas after it up to key frame 15
    assert len(f2) == len(f1)
    for a, b in zip(f1, f2, strict=True):
        assert np.array_equal(a, b)
    assert w1 == w2  # the damaged frame, told once each
    assert sum("frame 12" in m and "damaged" in m for m in w2) == 1


def test_changes_and_a_timed_video_across_chunks(rec, tmp_path):
    # --changes compares each chunk's first frame with the one drawn before it (another
    # worker's); --speed skips and holds frames, so chunks do not start at key frames
    f1, f2, _, _ = both(rec, tmp_path, ".gif", changes=True, timeline=True, speed=2.5)
    assert len(f1) > 26 // 3
    assert all(np.array_equal(a, b) for a, b in zip(f1, f2, strict=True))


def test_every_and_the_block_view_with_jobs(rec, tmp_path):
    f1, f2, _, _ = both(rec, tmp_path, ".gif", every=3, view="blocks", timeline=True)
    assert len(f1) == len(f2) == 8  # 0, 3, ..., 24: frame 12 damaged
    assert all(np.array_equal(a, b) for a, b in zip(f1, f2, strict=True))


def test_the_cli_says_a_damaged_frame_once(rec, tmp_path):
    r = run_pvrec("render", rec, "-o", tmp_path / "a.gif", "--every", "1", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    damaged = [line for line in r.stderr.splitlines() if "is damaged" in line]
    assert damaged == [f"pvrec: warning: {rec}: frame 12 (frames/000012.npz) is damaged (File is "
                       f"not a zip file); skipped up to the next key frame"]
    assert re.search(r"pvrec: wrote .*a\.gif \(.*, 23 frames, .*frames/s by 2 processes\)\n",
                     r.stderr), r.stderr
    assert "Traceback" not in r.stderr


def test_what_one_process_draws_says_so_and_draws(rec, tmp_path):
    said: list[str] = []
    s = render_recording(rec, tmp_path / "age.gif", jobs=2, view="age", warn=said.append)
    assert s.jobs == 1
    assert "--jobs 2: --view age adds up every frame in order; drawing in one process" in said
    said.clear()
    render_recording(rec, tmp_path / "last.png", jobs=2, warn=said.append)
    assert "--jobs 2: a .png is one frame; drawing in one process" in said


@pytest.mark.parametrize("jobs", [0, 65])
def test_jobs_out_of_range_is_one_line(rec, tmp_path, jobs):
    r = run_pvrec("render", rec, "-o", tmp_path / "x.gif", "--jobs", str(jobs))
    assert r.returncode == 2 and r.stderr == f"pvrec: --jobs must be 1 to 64, not {jobs}\n"
    with pytest.raises(PvrecError, match=f"^--jobs must be 1 to 64, not {jobs}$"):
        render_recording(rec, tmp_path / "x.gif", jobs=jobs)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(alive(int(p)) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pgid)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_every_worker_and_leaves_nothing(tmp_path, sig, code):
    r = make_recording(tmp_path / "long", 300, pages=1 << 15, key_every=10)
    out = tmp_path / "long.gif"
    p = start_pvrec("render", r, "-o", out, "--every", "1", "--jobs", "2")
    # the temp output grows once frames come from the workers
    wait_until("frames written", lambda: any(f.stat().st_size > 0
                                             for f in tmp_path.glob(".long.pvrec-*")), 120)
    workers = [int(x) for x in os.listdir("/proc") if x.isdigit() and _pgid(int(x)) == p.pid
               and int(x) != p.pid]
    assert len(workers) >= 2  # the two workers (and ffmpeg)
    if sig == signal.SIGINT:
        os.killpg(p.pid, sig)  # Ctrl-C: the terminal signals the whole group
    else:
        p.send_signal(sig)  # kill PID: the parent alone
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err.count("interrupted") == 1 and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".long*"))
    wait_until("the workers to exit", lambda: not _group_alive(p.pid))
