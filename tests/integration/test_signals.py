"""Signals and the workload: Ctrl-C of a workload that ignores it, kill -9 of pvrec, the demo.

Real processes throughout: pvrec runs as a subprocess in its own session, the workloads are
small Python scripts that say (by a file) when they are ready, and each test waits for the
event it needs. A workload a test starts is killed after it, also when the test fails.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from pvrec.recording.reader import open_recording
from tests.conftest import needs_kpageflags
from tests.helpers import alive, start_pvrec, wait_file, wait_frames, wait_gone, wait_until
from tests.integration.test_record import (
    read_stderr_until,
    ready_file_script,
    start_recorder,
    throwaway_user,  # noqa: F401  (a fixture)
)
from tests.integration.test_terminal import Tmux, needs_tmux, pvrec_command
from tests.integration.test_terminal import tmux as tmux  # noqa: F401  (a fixture)

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")


@pytest.fixture
def reaped():
    """A list to put workload pids in: each is SIGKILLed after the test if still alive."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_of_a_workload_that_ignores_it_says_pvrec_waits_and_how_to_stop(dump, tmp_path,
                                                                                reaped):
    out, ready, finish = tmp_path / "rec", tmp_path / "child.pid", tmp_path / "finish"
    script = ready_file_script(
        ready, "signal.signal(signal.SIGINT, signal.SIG_IGN)",
        f"while not os.path.exists({str(finish)!r}): time.sleep(0.02)")
    p = start_recorder(dump[0], out, "--", sys.executable, "-c", script)
    reaped.append(int(wait_file(ready).read_text()))
    wait_frames(out, 2)
    p.send_signal(signal.SIGINT)
    told = read_stderr_until(p, "to kill it and stop at once")
    assert (f"pvrec: waiting for the workload (pid {reaped[0]}), still running after SIGINT; "
            f"press Ctrl-C again to kill it and stop at once") in told
    assert p.poll() is None
    finish.touch()  # the workload ends on its own, with status 0
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    summary, last = (told + err).strip().splitlines()[-2:]
    assert last.startswith("next:  pvrec render ")
    assert "exited with status 0" not in summary
    assert summary.endswith("stopped by SIGINT (exit 130); the workload ended after it, "
                         "with status 0"), summary
    assert open_recording(out).end["exit_code"] == 130


def _kill_9_leaves_no_workload(dump, tmp_path, reaped, *extra, env=None, ready=None):
    out, ready = tmp_path / "rec", ready or tmp_path / "child.pid"
    # sh, not python: a user made for the test may not reach this venv's interpreter.
    script = f'echo $$ > {ready}.part && mv {ready}.part {ready} && exec sleep 120'
    p = start_pvrec("record", "-q", "--kpageflags", dump[0], "--interval", "100ms", "-o", out,
                    *extra, "--", "sh", "-c", script, env=env)
    child = int(wait_file(ready).read_text())
    reaped.append(child)
    wait_frames(out, 2)
    os.kill(p.pid, signal.SIGKILL)  # pvrec alone, not its process group
    p.communicate(timeout=30)
    wait_gone(child)
    return child


def test_kill_9_of_pvrec_ends_the_workload(dump, tmp_path, reaped):
    _kill_9_leaves_no_workload(dump, tmp_path, reaped)


def test_kill_9_of_pvrec_ends_a_workload_running_as_the_sudo_user(dump, tmp_path, reaped,
                                                                  request):
    # The parent-death signal is set after the workload's setuid (which would clear it).
    pw = request.getfixturevalue("throwaway_user")
    with tempfile.TemporaryDirectory() as d:  # pytest's tmp_path is private to root
        os.chmod(d, 0o777)
        ready = Path(d) / "child.pid"
        _kill_9_leaves_no_workload(
            dump, tmp_path, reaped, ready=ready,
            env={"SUDO_UID": str(pw.pw_uid), "SUDO_GID": str(pw.pw_gid),
                 "SUDO_USER": pw.pw_name})
        assert ready.stat().st_uid == pw.pw_uid  # it ran as the user


@pytest.mark.slow
@needs_tmux
@needs_kpageflags
def test_ctrl_c_in_the_demo_stops_cleanly_and_says_how_to_render(tmux: Tmux, tmp_path):
    before = NR_HUGEPAGES.read_text()
    out = tmp_path / "demo"
    tmux.type(pvrec_command("demo", "--no-render", "-o", out) + "; echo pvrec-exit=$?")
    try:
        # Ctrl-C typed while the demo holds its hugetlb pages (or says it cannot).
        wait_until("the demo's hugetlb phase",
                   lambda: any(r.startswith("demo: hugetlb: ") for r in tmux.history()),
                   timeout=90)
        tmux.run("send-keys", "C-c")
        history = wait_until("pvrec to end", lambda: (h := tmux.history()) and
                             any(r.startswith("pvrec-exit=") for r in h) and h)
    finally:
        assert NR_HUGEPAGES.read_text() == before  # restored by the demo
    text = "\n".join(history)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "pvrec-exit=130" in history, text
    assert "demo: stopped by SIGINT; the page cache file is deleted and vm.nr_hugepages is as " \
           "it was" in history
    assert f"next:  pvrec render {out}/recording -o {out}/demo.mp4" in history
    # The demo's messages are whole lines above the status line, never glued to it.
    assert not any("recording " in r and "demo:" in r for r in history)
    assert not list(out.glob("recording/**/*.tmp")) and open_recording(out / "recording")


@pytest.mark.slow
@needs_kpageflags
def test_demo_stopped_with_stderr_a_pipe_writes_no_control_sequences(tmp_path):
    before = NR_HUGEPAGES.read_text()
    p = start_pvrec("demo", "--no-render", "-o", tmp_path / "demo")
    got = read_stderr_until(p, "demo: page cache: wrote", timeout=90)
    os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C: pvrec and the demo
    _, err = p.communicate(timeout=60)
    err = got + err
    assert p.returncode == 130, err
    assert "\x1b" not in err and "Traceback" not in err, err
    assert "demo: stopped by SIGINT" in err and "next:  pvrec render" in err
    assert NR_HUGEPAGES.read_text() == before
