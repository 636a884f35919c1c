"""`pvrec record` end to end, as a user runs it: exit codes, signals, crashes, bad input.

Bad input and recordings of a dump run in this process (pvrec_main); a subprocess only where
a process is the point: a workload, a signal, SIGKILL, privilege. Every test that races a
process waits for the event it needs (a file the workload writes once it is ready, a line
in frames.jsonl, a line on pvrec's stderr, a counter in /proc), never for a guessed time.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from pvrec.recording.reader import open_recording
from tests.conftest import needs_kpageflags
from tests.helpers import (
    REPO,
    alive,
    frame_lines,
    pvrec_main,
    run_pvrec,
    start_pvrec,
    wait_file,
    wait_frames,
    wait_until,
)


def record_args(dump_path, out, *extra, interval="100ms") -> list:
    return ["record", "-q", "--kpageflags", dump_path, "--interval", interval, "-o", out, *extra]


def record(dump_path, out, *extra, interval="100ms", **kw) -> subprocess.CompletedProcess:
    """`pvrec record` of a dump as a subprocess (for a workload: `-- CMD`)."""
    return run_pvrec(*record_args(dump_path, out, *extra, interval=interval), **kw)


def record_here(dump_path, out, *extra, interval="100ms") -> tuple[int, str, str]:
    """`pvrec record` of a dump in this process, no workload: (exit code, stdout, stderr)."""
    return pvrec_main(*record_args(dump_path, out, *extra, interval=interval))


def start_recorder(dump_path, out, *cmd, interval="100ms") -> subprocess.Popen:
    """`pvrec record` of a dump running in its own session, stdout/stderr piped."""
    return start_pvrec(*record_args(dump_path, out, *cmd, interval=interval))


def ready_file_script(ready: Path, setup: str, then: str = "time.sleep(120)") -> str:
    """A Python workload that runs `setup`, then writes its pid to `ready` (atomically), then
    runs `then`: the test waits for `ready` before it signals, so setup is known done."""
    return (f"import os, signal, sys, time\n{setup}\n"
            f"open({str(ready) + '.part'!r}, 'w').write(str(os.getpid()))\n"
            f"os.rename({str(ready) + '.part'!r}, {str(ready)!r})\n{then}\n")


def read_stderr_until(p: subprocess.Popen, text: str, timeout: float = 30.0) -> str:
    """Read p's stderr pipe (raw, so communicate() goes on after it) until text appears."""
    fd, got, end = p.stderr.fileno(), b"", time.monotonic() + timeout
    while text.encode() not in got:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no {text!r} on pvrec's stderr after {timeout:g} s: {got!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"pvrec closed stderr without {text!r}: {got!r}")
        got += chunk
    return got.decode()


def read_syscalls(pid: int) -> int:
    """How many read syscalls (read, pread, preadv...) process pid has made: /proc/PID/io."""
    with open(f"/proc/{pid}/io") as f:
        return int(next(line for line in f if line.startswith("syscr:")).split()[1])


def test_duration_recording_of_a_dump_exports_byte_identical(dump, tmp_path):
    path, flags = dump
    code, _, err = record_here(path, tmp_path / "rec", "--duration", "0.5s")
    assert code == 0, err
    rec = open_recording(tmp_path / "rec")
    assert rec.complete and rec.end["reason"] == "duration of 0.5 s reached"
    assert rec.header.pfn_count == 1 << 16 and rec.header.layout_source == "flat"
    # On the tick schedule whatever the load: frame 0 at once, then at most one frame per
    # 100 ms tick before the deadline (ticks the sampler fell behind on are skipped and
    # counted), then one last frame at the deadline.
    t = [f.t for f in rec.frames]
    assert t == sorted(t) and t[0] < 0.1 and t[-1] >= 0.5
    assert all(t[i] >= 0.1 * i for i in range(1, len(t)))  # frame i is at tick i or later
    assert 3 <= len(rec) <= 6
    assert "pvrec render" in err and f"{len(rec)} frames" in err
    out = tmp_path / "frame.kpf"
    code, _, err = pvrec_main("export", tmp_path / "rec", "--frame", "-1", "-o", out)
    assert code == 0, err
    assert out.read_bytes() == path.read_bytes()


def test_workload_exit_status_is_passed_through(dump, tmp_path):
    path, _ = dump
    out, seen = tmp_path / "a", tmp_path / "seen"
    # The workload notes how many frames were written when it started, then runs until it
    # has seen two more: a frame before it, frames while it runs, a last frame after it.
    frames = out / "frames.jsonl"
    script = (f'wc -l < {frames} > {seen}; '
              f'while [ "$(wc -l < {frames})" -lt 3 ]; do sleep 0.01; done')
    r = record(path, out, "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    assert int(seen.read_text()) >= 1
    assert len(rec) >= 4 and rec.end["workload_status"] == 0
    assert rec.end["reason"] == "workload exited with status 0"
    assert len(rec) <= 2 + math.floor(rec.end["duration"] / 0.1)  # never more than the ticks
    # With a 10 s interval no tick falls between the frame before and the frame after.
    r = record(path, tmp_path / "b", "--", "sh", "-c", "exit 3", interval="10s")
    assert r.returncode == 3 and len(open_recording(tmp_path / "b")) == 2
    r = record(path, tmp_path / "c", "--", "sh", "-c", "kill -TERM $$", interval="10s")
    assert r.returncode == 128 + signal.SIGTERM
    rec = open_recording(tmp_path / "c")
    assert rec.end["reason"] == "workload killed by SIGTERM" and len(rec) == 2


def test_command_not_found_is_127_and_writes_nothing(dump, tmp_path):
    code, _, err = record_here(dump[0], tmp_path / "rec", "--", "no-such-command-pvrec")
    assert code == 127
    assert err == "pvrec: command not found: no-such-command-pvrec\n"
    assert not (tmp_path / "rec").exists()


@pytest.mark.parametrize("args, message", [
    (["--interval", "0"], "--interval must be a positive duration such as 1s or 500ms, not 0"),
    (["--interval=-1s"], "--interval must be a positive duration such as 1s or 500ms, not -1s"),
    (["--interval", "fast"],
     "--interval must be a positive duration such as 1s or 500ms, not fast"),
    (["--duration", "1x"], "--duration must be a positive duration such as 1s or 500ms, not 1x"),
])
def test_bad_interval_is_one_line_exit_2(dump, tmp_path, args, message):
    code, out, err = record_here(dump[0], tmp_path / "rec", *args)
    assert code == 2 and message in err and out == ""
    assert err.startswith("pvrec: ") and err.count("\n") == 1 and err.endswith("\n")
    assert not (tmp_path / "rec").exists()


def test_output_checks(dump, tmp_path):
    path, _ = dump
    (tmp_path / "file").write_text("x")
    code, _, err = record_here(path, tmp_path / "file", "--duration", "0.1s")
    assert code == 2 and "exists and is not a directory" in err and err.count("\n") == 1
    assert record_here(path, tmp_path / "rec", "--duration", "0.1s")[0] == 0
    code, _, err = record_here(path, tmp_path / "rec", "--duration", "0.1s")
    assert code == 2 and "holds a pvrec recording (use --force" in err and err.count("\n") == 1
    assert record_here(path, tmp_path / "rec", "--duration", "0.1s", "--force")[0] == 0
    assert open_recording(tmp_path / "rec").complete


def test_bad_dump_and_missing_source(tmp_path):
    (tmp_path / "odd.kpf").write_bytes(b"\0" * 12)
    code, _, err = record_here(tmp_path / "odd.kpf", tmp_path / "rec", "--duration", "0.1s")
    assert code == 2 and "not a multiple of 8" in err and err.count("\n") == 1
    code, _, err = record_here(tmp_path / "none.kpf", tmp_path / "rec", "--duration", "0.1s")
    assert code == 2 and "no such file" in err and err.count("\n") == 1
    # a compressed dump whose size happens to be whole words: said so, not recorded as flags
    import lzma

    packed = lzma.compress(np.arange(4096, dtype="<u8").tobytes())
    (tmp_path / "d.kpf.xz").write_bytes(packed + b"\0" * (-len(packed) % 8))
    code, _, err = record_here(tmp_path / "d.kpf.xz", tmp_path / "rec", "--duration", "0.1s")
    assert code == 2 and err.count("\n") == 1
    assert "d.kpf.xz is xz-compressed, not a raw kpageflags dump: decompress it first (xz -dk " \
        in err
    assert not (tmp_path / "rec").exists()


def test_ctrl_c_stops_cleanly_with_a_last_frame_and_130(dump, tmp_path):
    out = tmp_path / "rec"
    p = start_recorder(dump[0], out, "--", "sleep", "30")
    seen = wait_frames(out, 3)  # frame 2 comes from the loop, so the workload is running
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    rec = open_recording(out)
    assert rec.complete and rec.end["reason"] == "workload killed by SIGINT"
    assert len(rec) >= seen + 1  # and a last frame after it


def test_second_ctrl_c_stops_at_once_when_the_workload_ignores_the_first(dump, tmp_path):
    out, ready, got = tmp_path / "rec", tmp_path / "child.pid", tmp_path / "got-sigint"
    # The workload survives SIGINT and says it got one (a file), so the test knows pvrec
    # forwarded the first signal before it sends the second.
    script = ready_file_script(
        ready, f"signal.signal(signal.SIGINT, lambda *_: open({str(got)!r}, 'w').close())")
    p = start_recorder(dump[0], out, "--", sys.executable, "-c", script)
    wait_file(ready)
    wait_frames(out, 2)  # the loop runs: the signal handler knows the workload
    p.send_signal(signal.SIGINT)
    wait_file(got)
    wait_frames(out, frame_lines(out) + 1)
    assert p.poll() is None  # still recording: the workload ignored SIGINT
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    last = err.splitlines()[-2:]  # what it did, and how to render what it kept
    assert last[0] == (f"pvrec: stopped at once: the workload was killed (SIGKILL); {out}/ is "
                       f"readable up to frame {len(open_recording(out)) - 1}"), err
    assert last[1] == f"next:  pvrec render {out} -o {out}.mp4"
    assert not alive(int(ready.read_text()))  # SIGKILLed and reaped before pvrec exited
    rec = open_recording(out)
    assert len(rec) >= 3 and np.array_equal(rec.read(-1), dump[1])
    assert rec.end["reason"] == "stopped at once by a second signal"


def test_kill_after_ends_a_workload_that_ignores_sigterm(dump, tmp_path):
    out, ready = tmp_path / "rec", tmp_path / "ready"
    # SIGTERM must reach the workload after it ignores SIGTERM, not while the interpreter
    # starts (under load that took longer than two frames: it died of the SIGTERM).
    script = ready_file_script(ready, "signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    p = start_recorder(dump[0], out, "--kill-after", "0.5s", "--", sys.executable, "-c", script)
    wait_file(ready)
    wait_frames(out, 2)
    sent = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert time.monotonic() - sent >= 0.5  # it waited the --kill-after time first
    assert p.returncode == 128 + signal.SIGTERM, err
    assert open_recording(out).end["reason"] == "workload killed by SIGKILL"


def test_sigkill_mid_run_leaves_a_readable_recording(dump, tmp_path):
    out = tmp_path / "rec"
    p = start_recorder(dump[0], out, "--", "sleep", "30")
    wait_frames(out, 4)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    rec = open_recording(out)
    assert not rec.complete and len(rec) >= 4
    assert all(np.array_equal(f, dump[1]) for _, f in rec.iter_frames())
    code, _, err = pvrec_main("export", out, "-o", tmp_path / "last.kpf")
    assert code == 0, err
    assert (tmp_path / "last.kpf").read_bytes() == dump[0].read_bytes()


def test_disk_full_stops_sampling_with_one_line_and_a_readable_recording(tmp_path, tiny_tmpfs):
    # Incompressible flags: every frame is ~100 KB, so 400 KB fill up within a few frames.
    rng = np.random.default_rng(0)
    flags = rng.integers(0, 1 << 20, 1 << 15, dtype=np.uint64)
    path = tmp_path / "noisy.kpf"
    flags.tofile(path)
    out, ready = tiny_tmpfs / "rec", tmp_path / "workload.pid"
    p = start_recorder(path, out, "--key-every", "1", "--", "sh", "-c",
                       f"echo $$ > {ready}.part && mv {ready}.part {ready} && exec sleep 60")
    # The workload runs on after the disk filled up, until the test ends it.
    err = read_stderr_until(p, "sampling stopped; waiting for the workload to finish")
    assert p.poll() is None
    os.kill(int(wait_file(ready).read_text()), signal.SIGTERM)
    _, rest = p.communicate(timeout=30)
    err += rest
    assert p.returncode == 1, err
    assert "cannot write frame" in err and "No space left on device" in err
    assert "readable up to frame" in err and "Traceback" not in err
    rec = open_recording(out)
    assert len(rec) >= 1
    assert np.array_equal(rec.read(-1), flags)
    assert not list(out.glob("frames/*.tmp"))


def test_not_root_fails_fast_with_the_missing_privilege(tmp_path):
    # Import as we are, then drop to nobody (the interpreter may live where nobody can't read).
    code = (
        "import os, sys, time; import pvrec.cli, pvrec.commands.record\n"
        "if os.geteuid() == 0:\n    os.setegid(65534); os.seteuid(65534)\n"
        "t = time.monotonic(); rc = pvrec.cli.main(sys.argv[1:])\n"
        "print(time.monotonic() - t); sys.exit(rc)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", code, "record", "-o", str(tmp_path / "rec"),
                        "--duration", "1s"], capture_output=True, text=True, env=env, cwd="/")
    assert r.returncode == 2, r.stderr
    assert float(r.stdout) < 1.0  # before the first tick of a 1 s interval: nothing sampled
    assert r.stderr.startswith("pvrec: cannot read /proc/kpageflags: permission denied")
    assert "root only" in r.stderr and "sudo" in r.stderr
    assert not (tmp_path / "rec").exists()


@needs_kpageflags
def test_live_recording_of_a_workload(tmp_path):
    out = tmp_path / "rec"
    # The workload holds 200 MiB until a frame was taken while it ran (frame 1), then exits.
    script = ("import sys, time; x = bytearray(200 << 20)\n"
              "while open(sys.argv[1], 'rb').read().count(b'\\n') < 2: time.sleep(0.01)\n")
    r = run_pvrec("record", "-q", "-o", out, "--interval", "1s", "--",
                  sys.executable, "-c", script, out / "frames.jsonl")
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    h = rec.header
    assert h.layout_source == "live" and h.hpage_pages == 512 and h.ram_ranges
    assert h.zones and h.command[0] == sys.executable and h.kernel == os.uname().release
    assert len(rec) >= 3 and rec.end["workload_status"] == 0
    ctx = rec.frames[0].context
    assert "buddyinfo" in ctx and "nr_free_pages" in ctx["vmstat"]
    assert rec.read(-1).size == h.pfn_count


@pytest.fixture
def throwaway_user():
    """A user made for this test and removed after it (needs root and useradd)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("creating a user needs root and useradd")
    name = f"pvrec{os.getpid() % 100000}"
    r = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"useradd failed: {r.stderr.strip()}")
    import pwd

    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def test_under_sudo_the_workload_runs_as_the_invoking_user(dump, throwaway_user):
    pw = throwaway_user
    with tempfile.TemporaryDirectory() as d:  # pytest's tmp_path is private to root
        shared = Path(d)
        shared.chmod(0o777)
        out, ids = shared / "rec", shared / "ids.txt"
        script = f'echo "$(id -u) $(id -g) $(id -G) $HOME" > {ids}'
        env = {"SUDO_UID": str(pw.pw_uid), "SUDO_GID": str(pw.pw_gid), "SUDO_USER": pw.pw_name}
        r = record(dump[0], out, "--", "sh", "-c", script, env=env)
        assert r.returncode == 0, r.stderr
        assert ids.read_text().split() == [str(pw.pw_uid), str(pw.pw_gid), str(pw.pw_gid),
                                           pw.pw_dir]
        assert {p.stat().st_uid for p in [out, *out.rglob("*")]} == {pw.pw_uid}
        assert open_recording(out).header.user == pw.pw_name
        r = record(dump[0], shared / "root", "--as-root", "--", "sh", "-c", script, env=env)
        assert r.returncode == 0 and ids.read_text().startswith("0 0 ")


def test_a_dump_cut_short_mid_run_skips_frames_and_goes_on(dump, tmp_path):
    path, flags = dump
    out, go = tmp_path / "rec", tmp_path / "go"
    p = start_recorder(path, out, "--", "sh", "-c", f"while [ ! -e {go} ]; do sleep 0.01; done")
    wait_frames(out, 2)
    # Cut to 1000 pages: every sample from now on reads 8000 bytes, then EOF (2 read calls,
    # where a whole sample of this dump is one). At most one read was under way at the cut.
    before = read_syscalls(p.pid)
    os.truncate(path, 8 * 1000)
    wait_until("two samples of the cut dump", lambda: read_syscalls(p.pid) >= before + 5)
    lines = frame_lines(out)
    flags.astype("<u8").tofile(path)  # and whole again
    go.touch()
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    rec = open_recording(out)
    assert rec.end["failed_samples"] >= 2 and len(rec) >= lines + 1
    assert "samples failed" in err and "short read" in err
    assert np.array_equal(rec.read(-1), flags)


def test_cgroups_from_dumps_are_recorded_as_a_channel(dump, tmp_path):
    path, flags = dump
    cg = np.repeat(np.array([1, 35, 2741, 35], np.uint64), flags.size // 4)
    cg_path = tmp_path / "cg.kpc"
    cg.astype("<u8").tofile(cg_path)
    code, _, err = record_here(path, tmp_path / "rec", "--duration", "0.3s", "--cgroups",
                               "--kpagecgroup", cg_path)
    assert code == 0, err
    rec = open_recording(tmp_path / "rec")
    assert rec.channels == ("flags", "cgroup")
    assert np.array_equal(rec.read_frame(-1).cgroup.expand(), cg)
    code, _, err = record_here(path, tmp_path / "rec2", "--duration", "0.3s", "--cgroups")
    assert code == 2 and "needs --kpagecgroup FILE" in err and err.count("\n") == 1


def test_track_workload_needs_a_live_workload(dump, tmp_path):
    code, _, err = record_here(dump[0], tmp_path / "a", "--track-workload", "--duration", "1s")
    assert code == 2 and "needs a workload" in err and err.count("\n") == 1
    code, _, err = record_here(dump[0], tmp_path / "b", "--track-workload", "--", "true")
    assert code == 2 and "does not go with --kpageflags" in err and err.count("\n") == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@needs_kpageflags
def test_workload_pages_and_cgroups_live(tmp_path):
    out = tmp_path / "rec"
    # The workload touches 256 MiB, then runs until a frame counted its pages (it gives up
    # with status 1 after 60 s: then the recorder never saw them).
    script = ("import json, sys, time; x = b'x' * (256 << 20); end = time.monotonic() + 60\n"
              "seen = lambda: [json.loads(l).get('workload_pages', 0) for l in\n"
              "                open(sys.argv[1], 'rb').read().splitlines()]\n"
              "while max(seen()) < (256 << 20) // 4096:\n"
              "    time.sleep(0.01)\n"
              "    if time.monotonic() > end: sys.exit(1)\n")
    r = run_pvrec("record", "-q", "-o", out, "--cgroups", "--", sys.executable, "-c", script,
                  out / "frames.jsonl")
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    assert rec.channels == ("flags", "cgroup", "workload")
    pages = [f.context["workload_pages"] for f in rec.frames]
    assert pages[0] == 0 and max(pages) >= (256 << 20) // 4096  # the bytes object is resident
    frame = rec.read_frame(pages.index(max(pages)))
    flags = frame.flags.expand()
    anon = (flags[np.flatnonzero(frame.workload.expand())] >> np.uint64(12)) & np.uint64(1)  # KPF_ANON
    assert anon.mean() > 0.8
    assert frame.cgroup.values.max() > 0


def test_a_duration_that_ends_first_says_pvrec_stopped_the_workload(dump, tmp_path):
    # GIVEN a workload that would run on well after --duration
    path, _ = dump
    r = record(path, tmp_path / "rec", "--duration", "0.5s", "--", "sleep", "60")
    # THEN pvrec exits 0 (the duration is what was asked for) and says it ended the workload
    assert r.returncode == 0, r.stderr
    reason = open_recording(tmp_path / "rec").end["reason"]
    assert reason == ("duration of 0.5 s reached; the workload was still running: pvrec sent "
                      "it SIGTERM and it was killed by SIGTERM")
    assert reason in r.stderr
