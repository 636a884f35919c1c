"""Faults and privilege: nothing lost, no orphans, no shell, no privilege where none is needed."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pvrec.kernel import kpageflags
from pvrec.kernel.kpageflags import PageFlagsFile
from pvrec.kernel.proctree import descendants
from pvrec.recorder.sampler import Sampler
from pvrec.recording.reader import open_recording
from pvrec.recording.writer import Writer
from tests.helpers import (
    REPO,
    alive,
    make_recording,
    pvrec_main,
    start_pvrec,
    wait_file,
    wait_frames,
    wait_gone,
    wait_until,
)
from tests.integration.test_record import record, record_here, start_recorder


def test_second_ctrl_c_leaves_no_orphans_even_daemonized_ones(dump, tmp_path):
    pids, got = tmp_path / "pids", tmp_path / "got-sigint"
    # A workload that survives SIGINT (and says it got one) and leaves a double-forked daemon
    # that ignores it; each writes its pid once it is set up.
    script = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        open({str(pids)!r}, 'a').write('%d\\n' % os.getpid()); time.sleep(120)\n"
        "    os._exit(0)\n"
        f"signal.signal(signal.SIGINT, lambda *_: open({str(got)!r}, 'w').close())\n"
        f"open({str(pids)!r}, 'a').write('%d\\n' % os.getpid()); time.sleep(120)\n"
    )
    out = tmp_path / "rec"
    p = start_recorder(dump[0], out, "--", sys.executable, "-c", script)
    wait_until("the workload and its daemon", lambda: pids.exists()
               and len(pids.read_text().split()) == 2)
    wait_frames(out, 2)  # the loop runs: the signal handler knows the workload
    victims = [int(x) for x in pids.read_text().split()]
    assert len(victims) == 2 and all(alive(v) for v in victims)
    p.send_signal(signal.SIGINT)
    wait_file(got)  # the first one was forwarded, and survived
    assert p.poll() is None
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    for v in victims:  # SIGKILLed; the daemon's zombie goes to init once pvrec is gone
        wait_gone(v)


def test_eio_mid_run_skips_the_frame_and_counts_it(dump, tmp_path, monkeypatch):
    path, flags = dump
    w = Writer(tmp_path / "rec", {"pfn_count": flags.size})
    calls = {"n": 0}
    real = os.preadv

    def flaky(fd, buffers, offset):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, buffers, offset)

    with PageFlagsFile(str(path)) as src:
        s = Sampler(src, flags.size, w, time.monotonic(), with_context=False)
        monkeypatch.setattr(kpageflags.os, "preadv", flaky)
        assert s.take(time.monotonic()) is False  # the first read fails...
        assert s.take(time.monotonic()) is True  # ...the next one is fine
    w.close({})
    assert s.stats.failed_samples == 1 and "I/O error" in s.stats.last_error
    rec = open_recording(tmp_path / "rec")
    assert len(rec) == 1 and np.array_equal(rec.read(0), flags)


@pytest.mark.slow
def test_sigkill_at_random_moments_always_leaves_a_readable_recording(fixture_dumps, tmp_path):
    """20 trials on the real 6.5 M-page fixture (frame writes take tens of ms, so some kills
    land inside one); every recording reads back up to its last complete frame."""
    rng = random.Random(20261126)
    for trial in range(20):
        out = tmp_path / f"rec{trial}"
        p = start_recorder(fixture_dumps["after-kbuild"], out, "--key-every", "3",
                           "--", "sleep", "30")
        wait_frames(out, 1)
        time.sleep(rng.uniform(0.0, 0.8))  # a random moment, on purpose: not a wait
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        rec = open_recording(out)
        assert len(rec) >= 1
        assert rec.read(-1).size == 6553600
        code, _, err = pvrec_main("info", out, "--json")
        assert code == 0, err


def test_cmd_is_never_given_to_a_shell(dump, tmp_path):
    marker = tmp_path / "pwned"
    r = record(dump[0], tmp_path / "rec", "--", "echo", f"$(touch {marker}); touch {marker}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"$(touch {marker}); touch {marker}\n"  # echo got it as one argument
    assert not marker.exists()


def test_record_writes_only_its_output_directory(dump, tmp_path):
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    code, _, err = pvrec_main("record", "-q", "--kpageflags", dump[0], "--duration", "0.2s",
                              "--interval", "100ms", cwd=cwd, env={"HOME": str(home)})
    assert code == 0, err
    made = [p.name for p in cwd.iterdir()]
    assert len(made) == 1 and made[0].startswith("pvrec-system-")
    assert not list(home.iterdir())


# Runs pvrec commands in one interpreter whose audit hook refuses (as the kernel would refuse
# nobody) and notes every open of what needs root; prints one JSON line per command.
NO_PRIVILEGE = """\
import json, sys
opened = []
def hook(event, args):
    if event == 'open' and str(args[0]).startswith(('/proc/kpage', '/proc/self/pagemap')):
        opened.append(str(args[0]))
        raise PermissionError(13, 'Permission denied', str(args[0]))
sys.addaudithook(hook)
import pvrec.cli
for argv in json.loads(sys.argv[1]):
    del opened[:]
    code = pvrec.cli.main(argv)
    print(json.dumps({"argv": argv, "code": code, "opened": opened}), flush=True)
"""


def test_reading_commands_need_no_privilege(dump, tmp_path):
    """render/info/stats -F/list -F/metrics/export never open what needs root (an audit hook
    watches every open; dropping to nobody is not possible where the interpreter is root's)."""
    path, _ = dump
    code, _, err = record_here(path, tmp_path / "rec", "--duration", "0.2s")
    assert code == 0, err
    rec = str(tmp_path / "rec")
    commands = [["stats", "-F", str(path)], ["list", "-F", str(path)], ["info", rec],
                ["stats", f"{rec}@-1"], ["metrics", rec],
                ["export", rec, "-o", str(tmp_path / "x.kpf")],
                ["render", "-q", rec, "-o", str(tmp_path / "x.gif")]]
    r = subprocess.run([sys.executable, "-c", NO_PRIVILEGE, json.dumps(commands)],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                       cwd="/")
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{"argv"')]
    assert [x["argv"] for x in results] == commands, r.stderr
    for x in results:
        assert x["code"] == 0 and x["opened"] == [], (x, r.stderr)
    assert (tmp_path / "x.kpf").stat().st_size == 8 << 16 and (tmp_path / "x.gif").stat().st_size
    # The hook itself works: a command that needs root is caught opening /proc/kpageflags.
    r = subprocess.run([sys.executable, "-c", NO_PRIVILEGE, json.dumps([["stats"]])],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                       cwd="/")
    caught = json.loads(r.stdout.splitlines()[-1])
    assert caught["code"] == 2 and caught["opened"][:1] == ["/proc/kpageflags"], r.stderr
    assert "permission denied" in r.stderr


def rss_during(args: list[str], every: float = 0.1) -> list[int]:
    """Run pvrec ARGS and sample its resident memory (kB) while it runs."""
    p = start_pvrec(*args, stdout=subprocess.DEVNULL)
    samples = []
    while p.poll() is None:
        try:
            status = open(f"/proc/{p.pid}/status").read()
            samples.append(int(status.split("VmRSS:")[1].split()[0]))
        except (OSError, IndexError):
            pass
        time.sleep(every)  # the sampling rate, not a wait for anything
    _, err = p.communicate()
    assert p.returncode == 0, err
    return samples


@pytest.mark.slow
def test_a_10000_frame_recording_renders_with_flat_memory(tmp_path):
    long = make_recording(tmp_path / "long", 10_000, pages=2048, header={"hpage_pages": 512},
                          interval=0.1, durable=False)
    # The map alone: the chrome is drawn the same way every frame, the 2,000-frame render test
    # covers it; here the reader and the encoder stream 10,000 frames (1,700 frames/s).
    samples = rss_during(["render", "-q", str(long), "--map-only",
                          "-o", str(tmp_path / "long.mp4")], every=0.05)
    assert len(samples) >= 20
    early = max(samples[len(samples) // 5: len(samples) // 5 + 5])
    late = max(samples[-6:-1])
    assert late - early < 16 * 1024, (early, late)


def size_of(path) -> int:
    """The size of path, 0 while (or once no longer) it exists."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_render_killed_with_sigkill_never_leaves_a_broken_output(tmp_path):
    rec = make_recording(tmp_path / "rec", 400, pages=1 << 15)
    out = tmp_path / "out.gif"
    out.write_bytes(b"the old one")
    p = start_pvrec("render", "-q", "-f", rec, "-o", out, stdout=subprocess.DEVNULL)
    tmp = tmp_path / f".out.pvrec-{p.pid}.tmp.gif"  # pvrec.output.temp_beside(out) in pvrec
    try:
        # Kill it while the new file is being written: ffmpeg has begun the temp file.
        wait_until(f"{tmp.name} being written", lambda: size_of(tmp))
        encoders = descendants(p.pid)
        assert p.poll() is None and encoders  # still rendering, ffmpeg running
        p.kill()
        p.wait()
        for pid in encoders:  # ffmpeg reads EOF, ends the temp file and exits
            wait_gone(pid)
    finally:
        p.kill()
        p.communicate()
    assert out.read_bytes() == b"the old one"  # the new one was never renamed in place
    # Nothing else was written beside it; the temp file stays (a SIGKILLed process cannot
    # remove it) under its hidden name, which no tool takes for the output.
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([tmp.name, "out.gif", "rec"])


def test_render_to_a_full_disk_fails_and_leaves_nothing(tiny_tmpfs):
    rec = make_recording(tiny_tmpfs.parent / "rec", 30, pages=1 << 16)
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (340 << 10))  # ~60 KiB left
    code, _, err = pvrec_main("render", "-q", rec, "-o", tiny_tmpfs / "x.mp4", "--every", "1")
    assert code == 1
    assert "pvrec: ffmpeg failed writing" in err and "nothing was written" in err
    assert [p.name for p in tiny_tmpfs.iterdir()] == ["filler"]
