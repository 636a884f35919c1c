"""Start the workload, run it as the invoking user under sudo, forward signals, reap, kill its tree.

pvrec makes itself a child subreaper, so that processes the workload daemonizes come back to
pvrec instead of init: the workload's process tree is then exactly pvrec's descendants, which
is what `--kill-after` and a second Ctrl-C kill, and whose pages workload tracking reads
(mapped_pfns, through /proc/PID/pagemap) -- all but the watchdog (recorder.watchdog), which
ends the workload if pvrec is killed.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.kernel.proctree import descendants
from pvrec.recorder.watchdog import STOP_GRACE, Watchdog

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl():
    """libc's prctl, or None where there is none."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def become_subreaper() -> bool:
    """Ask the kernel to reparent orphaned descendants to us (Linux >= 3.4)."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def die_with(parent: int):
    """A preexec_fn: the child gets SIGTERM when `parent` dies (kill -9 of pvrec included).

    It runs in the child after Popen's setgroups/setgid/setuid (a credentials change clears the
    setting, as exec of a set-user-ID program does); a parent that died before it was set
    is seen as a new parent pid, and the child leaves at once. The signal comes when the
    thread that started the child ends: pvrec starts it from its main thread. The SIGKILL that
    may have to follow is the watchdog's (recorder.watchdog): the kernel sends only this.
    """
    prctl = _prctl()  # looked up before the fork: the child only calls it

    def in_child() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + signal.SIGTERM)

    return in_child


@dataclass
class RunAs:
    """Who the workload runs as: uid, gid, supplementary groups, and the user's environment."""

    uid: int
    gid: int
    groups: list[int]
    user: str
    home: str


def invoking_user(as_root: bool) -> RunAs | None:
    """The user behind sudo (SUDO_UID/SUDO_GID), or None to run as ourselves."""
    if as_root or os.geteuid() != 0 or "SUDO_UID" not in os.environ:
        return None
    try:
        uid = int(os.environ["SUDO_UID"])
        gid = int(os.environ.get("SUDO_GID", uid))
    except ValueError:
        raise PvrecError("SUDO_UID/SUDO_GID are not numbers; use --as-root to run as root") from None
    if uid == 0:
        return None
    try:
        pw = pwd.getpwuid(uid)
        user, home = pw.pw_name, pw.pw_dir
        groups = os.getgrouplist(user, gid)
    except KeyError:
        user, home, groups = os.environ.get("SUDO_USER", str(uid)), "/", [gid]
    return RunAs(uid, gid, groups, user, home)


def resolve_command(argv: list[str]) -> str:
    """The executable for argv[0], found as a shell would; PvrecError 127/126 as a shell says."""
    exe = argv[0]
    found = exe if "/" in exe else shutil.which(exe)
    if found is None or not os.path.exists(found):
        raise PvrecError(f"command not found: {exe}", exit_code=127)
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise PvrecError(f"cannot execute {exe}: permission denied", exit_code=126)
    return found


class Workload:
    """The running workload: its Popen, a pidfd to wait on, its watchdog, and how it ended."""

    def __init__(self, argv: list[str], run_as: RunAs | None = None,
                 kill_after: float | None = None, extra_env: dict[str, str] | None = None,
                 leftover: Path | None = None):
        exe = resolve_command(argv)
        env = dict(os.environ, **(extra_env or {}))
        kwargs: dict = {}
        if run_as is not None:
            env.update(HOME=run_as.home, USER=run_as.user, LOGNAME=run_as.user)
            for key in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"):
                env.pop(key, None)
            kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": run_as.groups}
        try:
            # Same process group as pvrec: a terminal's Ctrl-C reaches both, as in a shell job.
            self.proc = subprocess.Popen(argv, executable=exe, env=env, close_fds=True,
                                         preexec_fn=die_with(os.getpid()), **kwargs)
        except PermissionError:
            raise PvrecError(f"cannot execute {argv[0]}: permission denied", exit_code=126) from None
        except OSError as exc:
            raise PvrecError(f"cannot start {argv[0]}: {exc.strerror or exc}", exit_code=127) from None
        self.pid = self.proc.pid
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self.pidfd = -1
        self.status: int | None = None
        self.watchdog: Watchdog | None = None
        if self.pidfd >= 0:  # without a pidfd it could not tell a recycled pid: no watchdog
            creds = (run_as.uid,) * 3 + (run_as.gid,) * 3 if run_as else \
                os.getresuid() + os.getresgid()
            self.watchdog = Watchdog(self.pidfd, self.pid,
                                     STOP_GRACE if kill_after is None else kill_after, creds,
                                     leftover)

    def poll(self) -> bool:
        """True once the workload has exited (and is reaped)."""
        if self.status is None and self.proc.poll() is not None:
            self.status = self.proc.returncode
            if self.pidfd >= 0:
                os.close(self.pidfd)
                self.pidfd = -1
            if self.watchdog is not None:
                self.watchdog.release()
        return self.status is not None

    def tree(self) -> list[int]:
        """The workload's processes: every descendant of pvrec but the watchdog."""
        skip = self.watchdog.pid if self.watchdog is not None else None
        return [pid for pid in descendants(os.getpid()) if pid != skip]

    @property
    def exit_code(self) -> int:
        """The shell's view of how it ended: its status, or 128+N when signal N killed it."""
        if self.status is None:
            return 0
        return 128 - self.status if self.status < 0 else self.status

    def describe_exit(self) -> str:
        if self.status is None:
            return "still running"
        if self.status < 0:
            try:
                name = signal.Signals(-self.status).name
            except ValueError:
                name = f"signal {-self.status}"
            return f"killed by {name}"
        return f"exited with status {self.status}"

    def send(self, sig: int) -> None:
        """Send a signal to the workload itself (not its children: they are its business)."""
        if self.status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill_tree(self) -> int:
        """SIGKILL the workload and every descendant of pvrec; returns how many were signalled."""
        victims = self.tree()
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.poll()
        reap_orphans()
        return len(victims)


def reap_orphans() -> None:
    """Collect exited orphans that the subreaper inherited, so none stay zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
