"""`pvrec record` end to end, as a user runs it: exit codes, signals, crashes, bad input."""

from __future__ import annotations

import os
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
from tests.conftest import REPO, needs_kpageflags, run_pvrec


def record(dump_path, out, *extra, **kw):
    return run_pvrec("record", "-q", "--kpageflags", dump_path, "--interval", "100ms",
                     "-o", out, *extra, **kw)


def start_recorder(dump_path, out, *cmd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "pvrec", "record", "-q", "--kpageflags", str(dump_path),
         "--interval", "100ms", "-o", str(out), *cmd],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)


def wait_frames(out, n, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if sum(1 for _ in open(out / "frames.jsonl")) >= n:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} frames after {timeout} s")


def test_duration_recording_of_a_dump_exports_byte_identical(dump, tmp_path):
    path, flags = dump
    r = record(path, tmp_path / "rec", "--duration", "0.5s")
    assert r.returncode == 0, r.stderr
    rec = open_recording(tmp_path / "rec")
    assert 5 <= len(rec) <= 8 and rec.complete
    assert rec.end["reason"] == "duration of 0.5 s reached"
    assert rec.header["pfn_count"] == 1 << 16 and rec.header["layout_source"] == "flat"
    assert "pvrec render" in r.stderr and f"{len(rec)} frames" in r.stderr
    out = tmp_path / "frame.kpf"
    e = run_pvrec("export", tmp_path / "rec", "--frame", "-1", "-o", out)
    assert e.returncode == 0, e.stderr
    assert out.read_bytes() == path.read_bytes()


def test_workload_exit_status_is_passed_through(dump, tmp_path):
    path, _ = dump
    r = record(path, tmp_path / "a", "--", sys.executable, "-c", "import time; time.sleep(0.35)")
    assert r.returncode == 0, r.stderr
    rec = open_recording(tmp_path / "a")
    # A frame before the workload, frames while it runs, a last frame after it exits.
    assert 3 <= len(rec) <= 7 and rec.end["workload_status"] == 0
    r = record(path, tmp_path / "b", "--", "sh", "-c", "exit 3")
    assert r.returncode == 3 and len(open_recording(tmp_path / "b")) == 2
    r = record(path, tmp_path / "c", "--", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 128 + signal.SIGTERM
    assert "killed by SIGTERM" in open_recording(tmp_path / "c").end["reason"]


def test_command_not_found_is_127_and_writes_nothing(dump, tmp_path):
    path, _ = dump
    r = record(path, tmp_path / "rec", "--", "no-such-command-pvrec")
    assert r.returncode == 127
    assert r.stderr.strip() == "pvrec: command not found: no-such-command-pvrec"
    assert not (tmp_path / "rec").exists()


@pytest.mark.parametrize("args, message", [
    (["--interval", "0"], "--interval must be greater than zero"),
    (["--interval=-1s"], "is not a duration"),
    (["--interval", "fast"], "--interval 'fast' is not a duration"),
    (["--duration", "1x"], "is not a duration"),
])
def test_bad_interval_is_one_line_exit_2(dump, tmp_path, args, message):
    r = record(dump[0], tmp_path / "rec", *args)
    assert r.returncode == 2 and message in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_output_checks(dump, tmp_path):
    path, _ = dump
    (tmp_path / "file").write_text("x")
    r = record(path, tmp_path / "file", "--duration", "0.1s")
    assert r.returncode == 2 and "exists and is not a directory" in r.stderr
    assert record(path, tmp_path / "rec", "--duration", "0.1s").returncode == 0
    r = record(path, tmp_path / "rec", "--duration", "0.1s")
    assert r.returncode == 2 and "not empty (use --force" in r.stderr
    assert record(path, tmp_path / "rec", "--duration", "0.1s", "--force").returncode == 0


def test_bad_dump_and_missing_source(tmp_path):
    (tmp_path / "odd.kpf").write_bytes(b"\0" * 12)
    r = record(tmp_path / "odd.kpf", tmp_path / "rec", "--duration", "0.1s")
    assert r.returncode == 2 and "not a multiple of 8" in r.stderr
    r = record(tmp_path / "none.kpf", tmp_path / "rec", "--duration", "0.1s")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_ctrl_c_stops_cleanly_with_a_last_frame_and_130(dump, tmp_path):
    out = tmp_path / "rec"
    p = start_recorder(dump[0], out, "--", "sleep", "30")
    wait_frames(out, 3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 130, err
    rec = open_recording(out)
    assert rec.complete and rec.end["reason"] == "workload killed by SIGINT"
    assert len(rec) >= 4


def test_second_ctrl_c_stops_at_once_when_the_workload_ignores_the_first(dump, tmp_path):
    out = tmp_path / "rec"
    marker = tmp_path / "child.pid"
    script = (f"import signal, os, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
              f"open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)")
    p = start_recorder(dump[0], out, "--", sys.executable, "-c", script)
    wait_frames(out, 3)
    while not marker.exists():
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert p.poll() is None  # still recording: the workload ignored SIGINT
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert p.returncode == 130, err
    assert "stopped at once" in err
    child = int(marker.read_text())
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read()
    rec = open_recording(out)
    assert len(rec) >= 3 and np.array_equal(rec.read(-1), dump[1])


def test_kill_after_ends_a_workload_that_ignores_sigterm(dump, tmp_path):
    out = tmp_path / "rec"
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    p = start_recorder(dump[0], out, "--kill-after", "0.5s", "--", sys.executable, "-c", script)
    wait_frames(out, 2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=15)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "SIGKILL" in open_recording(out).end["reason"]


def test_sigkill_mid_run_leaves_a_readable_recording(dump, tmp_path):
    out = tmp_path / "rec"
    p = start_recorder(dump[0], out, "--", "sleep", "30")
    wait_frames(out, 4)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    rec = open_recording(out)
    assert not rec.complete and len(rec) >= 4
    assert all(np.array_equal(f, dump[1]) for _, f in rec.iter_frames())
    r = run_pvrec("export", out, "-o", tmp_path / "last.kpf")
    assert r.returncode == 0, r.stderr


def test_disk_full_stops_sampling_with_one_line_and_a_readable_recording(tmp_path, tiny_tmpfs):
    # Incompressible flags: every frame is ~100 KB, so 400 KB fill up within a few frames.
    rng = np.random.default_rng(0)
    flags = rng.integers(0, 1 << 20, 1 << 15, dtype=np.uint64)
    path = tmp_path / "noisy.kpf"
    flags.tofile(path)
    out = tiny_tmpfs / "rec"
    r = record(path, out, "--key-every", "1", "--", "sleep", "1.5")
    assert r.returncode == 1
    assert "cannot write frame" in r.stderr and "No space left on device" in r.stderr
    assert "readable up to frame" in r.stderr and "Traceback" not in r.stderr
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
    assert float(r.stdout) < 1.0
    assert r.stderr.startswith("pvrec: cannot read /proc/kpageflags: permission denied")
    assert "root only" in r.stderr and "sudo" in r.stderr
    assert not (tmp_path / "rec").exists()


@needs_kpageflags
def test_live_recording_of_a_workload(tmp_path):
    out = tmp_path / "rec"
    r = run_pvrec("record", "-q", "-o", out, "--interval", "1s", "--",
                  sys.executable, "-c", "import time; x = bytearray(200 << 20); time.sleep(1.5)")
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    h = rec.header
    assert h["layout_source"] == "live" and h["hpage_pages"] == 512 and h["ram_ranges"]
    assert h["zones"] and h["command"][0] == sys.executable and h["kernel"] == os.uname().release
    assert len(rec) >= 3
    ctx = rec.frames[0].context
    assert "buddyinfo" in ctx and "nr_free_pages" in ctx["vmstat"]
    assert rec.read(-1).size == h["pfn_count"]


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
        assert open_recording(out).header["user"] == pw.pw_name
        r = record(dump[0], shared / "root", "--as-root", "--", "sh", "-c", script, env=env)
        assert r.returncode == 0 and ids.read_text().startswith("0 0 ")


def test_a_dump_cut_short_mid_run_skips_frames_and_goes_on(dump, tmp_path):
    path, flags = dump
    out = tmp_path / "rec"
    p = start_recorder(path, out, "--", "sleep", "1.2")
    wait_frames(out, 2)
    path.write_bytes(path.read_bytes()[: 8 * 1000])  # a short read from now on
    time.sleep(0.4)
    flags.astype("<u8").tofile(path)  # and whole again
    _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    rec = open_recording(out)
    assert rec.end["failed_samples"] >= 2
    assert "samples failed" in err and "short read" in err
    assert np.array_equal(rec.read(-1), flags)


def test_cgroups_from_dumps_are_recorded_as_a_channel(dump, tmp_path):
    path, flags = dump
    cg = np.repeat(np.array([1, 35, 2741, 35], np.uint64), flags.size // 4)
    cg_path = tmp_path / "cg.kpc"
    cg.astype("<u8").tofile(cg_path)
    r = record(path, tmp_path / "rec", "--duration", "0.3s", "--cgroups",
               "--kpagecgroup", cg_path)
    assert r.returncode == 0, r.stderr
    rec = open_recording(tmp_path / "rec")
    assert rec.channels == ("flags", "cgroup")
    assert np.array_equal(rec.read_frame(-1).cgroup.expand(), cg)
    r = record(path, tmp_path / "rec2", "--duration", "0.3s", "--cgroups")
    assert r.returncode == 2 and "needs --kpagecgroup FILE" in r.stderr


def test_track_workload_needs_a_live_workload(dump, tmp_path):
    r = record(dump[0], tmp_path / "a", "--track-workload", "--duration", "1s")
    assert r.returncode == 2 and "needs a workload" in r.stderr
    r = record(dump[0], tmp_path / "b", "--track-workload", "--", "true")
    assert r.returncode == 2 and "does not go with --kpageflags" in r.stderr


@needs_kpageflags
def test_workload_pages_and_cgroups_live(tmp_path):
    out = tmp_path / "rec"
    code = "import time; x = b'x' * (256 << 20); time.sleep(3.5)"
    r = run_pvrec("record", "-q", "-o", out, "--cgroups", "--", sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    assert rec.channels == ("flags", "cgroup", "workload")
    pages = [f.context["workload_pages"] for f in rec.frames]
    assert pages[0] == 0 and max(pages) >= (256 << 20) // 4096  # the bytearray is resident
    frame = rec.read_frame(pages.index(max(pages)))
    flags = frame.flags.expand()
    anon = (flags[np.flatnonzero(frame.workload.expand())] >> np.uint64(12)) & np.uint64(1)  # KPF_ANON
    assert anon.mean() > 0.8
    assert frame.cgroup.values.max() > 0
