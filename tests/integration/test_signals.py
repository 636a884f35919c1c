"""Signals and the workload: Ctrl-C of a workload that ignores it, kill -9 of pvrec, the demo.

Real processes throughout: pvrec runs as a subprocess in its own session, the workloads are
small Python scripts that say (by a file) when they are ready, and each test waits for the
event it needs. A workload a test starts is killed after it, also when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pvrec.kernel.proctree import descendants
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


def _kill_9_leaves_no_workload(dump, tmp_path, reaped, *extra, env=None, ready=None,
                               before="", then="exec sleep 120", gone_within=30.0,
                               running=lambda pid: True):
    """Record a sh workload, SIGKILL pvrec after two frames, wait for the workload to end.

    The workload runs `before`, writes its pids (`$$`, and `$!` where `before` started a
    background job) to `ready`, then runs `then`; pvrec is killed once running(pid) is true
    too, and each pid must be gone within gone_within seconds of the kill, and the marker
    socket's directory soon after (the watchdog removes it). Returns the pids and the seconds
    they took."""
    out, ready = tmp_path / "rec", ready or tmp_path / "child.pid"
    # sh, not python: a user made for the test may not reach this venv's interpreter.
    script = (f'{before}echo $$ $! "$PVREC_MARK" > {ready}.part && mv {ready}.part {ready} '
              f'&& {then}')
    p = start_pvrec("record", "-q", "--kpageflags", dump[0], "--interval", "100ms", "-o", out,
                    *extra, "--", "sh", "-c", script, env=env)
    *pids, mark = wait_file(ready).read_text().split()
    pids = [int(pid) for pid in pids]
    marker_dir = Path(mark).parent
    assert marker_dir.name.startswith("pvrec-mark-") and marker_dir.is_dir()
    reaped.extend(pids)
    wait_frames(out, 2)
    wait_until("the workload to run", lambda: running(pids[0]))
    os.kill(p.pid, signal.SIGKILL)  # pvrec alone, not its process group
    killed = time.monotonic()
    p.communicate(timeout=60)  # the workload holds pvrec's stdout: this waits for it too
    for pid in pids:
        wait_gone(pid, timeout=gone_within)
    took = time.monotonic() - killed
    wait_until("the watchdog to remove the marker directory", lambda: not marker_dir.exists())
    return pids, took


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


def test_kill_9_of_pvrec_sigkills_a_workload_that_ignores_sigterm_after_kill_after(
        dump, tmp_path, reaped):
    # sh and its background sleep both ignore SIGTERM (an ignored signal is inherited).
    pids, took = _kill_9_leaves_no_workload(
        dump, tmp_path, reaped, "--kill-after", "2s",
        before='trap "" TERM INT; sleep 120 & ', then="wait", gone_within=10)
    assert len(pids) == 2
    assert took >= 2.0  # the SIGTERM's --kill-after grace came first


def test_kill_9_of_pvrec_ends_a_set_user_id_workload_with_sigterm(dump, tmp_path, reaped,
                                                                  request):
    # Exec of a set-user-ID program clears the kernel's parent-death signal: the watchdog sees
    # the changed uids and sends the SIGTERM itself, long before the 60 s of --kill-after.
    pw = request.getfixturevalue("throwaway_user")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        suid_sleep = Path(d) / "sleep"
        shutil.copy(shutil.which("sleep"), suid_sleep)
        os.chmod(suid_sleep, 0o4755)  # root's, set-user-ID
        ready = Path(d) / "child.pid"
        env = {"SUDO_UID": str(pw.pw_uid), "SUDO_GID": str(pw.pw_gid), "SUDO_USER": pw.pw_name}
        _kill_9_leaves_no_workload(dump, tmp_path, reaped, "--kill-after", "60s", env=env,
                                   ready=ready, then=f"exec {suid_sleep} 120", gone_within=10,
                                   running=lambda pid: _euid(pid) == 0)


def _euid(pid: int) -> int | None:
    """A process's effective uid (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(status.split("\nUid:")[1].split()[1])


def _watchdog_of(pvrec: int) -> int:
    """The pid of pvrec's watchdog (its child running pvrec.recorder.watchdog), or 0."""
    for pid in descendants(pvrec):
        try:
            if b"pvrec.recorder.watchdog" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            pass
    return 0


def test_the_watchdog_holds_only_its_pipe_and_ends_with_the_workload(dump, tmp_path, reaped):
    out, ready, finish = tmp_path / "rec", tmp_path / "child.pid", tmp_path / "finish"
    script = ready_file_script(ready, "", f"while not os.path.exists({str(finish)!r}): "
                                          "time.sleep(0.02)")
    p = start_recorder(dump[0], out, "--", sys.executable, "-c", script)
    reaped.append(int(wait_file(ready).read_text()))
    watchdog = wait_until("pvrec's watchdog", lambda: _watchdog_of(p.pid))
    reaped.append(watchdog)
    wait_until("the watchdog to wait on its pipe",  # its interpreter has started
               lambda: Path(f"/proc/{watchdog}/wchan").read_text().endswith("pipe_read"))
    fds = {os.readlink(f"/proc/{watchdog}/fd/{fd}") for fd in os.listdir(f"/proc/{watchdog}/fd")}
    pvrec_pipes = {os.readlink(f"/proc/{p.pid}/fd/{fd}") for fd in (1, 2)}
    pipes = {f for f in fds if f.startswith("pipe:")}
    assert fds - pipes == {"/dev/null", "anon_inode:[pidfd]"}, fds
    assert len(pipes) == 1 and not pipes & pvrec_pipes  # not pvrec's stdout or stderr
    assert os.getsid(watchdog) == watchdog  # its own session: no terminal, no Ctrl-C
    finish.touch()
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert not alive(watchdog)  # told and collected, not left as a zombie


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


def test_the_watchdog_is_not_part_of_the_workload_and_ends_with_it(monkeypatch):
    # In this process: the watchdog is our child, like the workload, yet neither tracked
    # (Workload.tree feeds the workload channel) nor counted by kill_tree.
    from pvrec.recorder import workload
    from pvrec.recorder.workload import Workload

    # pvrec records in a process of its own; the test process may have children of its own
    # already (multiprocessing's resource tracker, after an in-process render --jobs): not
    # the workload's, so out of its tree (and of what kill_tree kills).
    ours = set(descendants(os.getpid()))
    monkeypatch.setattr(workload, "descendants",
                        lambda pid: [p for p in descendants(pid) if p not in ours])
    w = Workload(["sleep", "60"])
    try:
        assert w.watchdog is not None and w.watchdog.pid in descendants(os.getpid())
        assert w.tree() == [w.pid]
        assert w.kill_tree() == 1
        assert not alive(w.watchdog.pid) and w.status == -signal.SIGKILL
    finally:
        w.proc.kill()
        w.poll()
