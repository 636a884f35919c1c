"""The workload's watchdog: a small process that ends the workload if pvrec dies (kill -9).

The kernel's parent-death signal (workload.die_with) gives the workload's direct child SIGTERM
when pvrec dies, but nothing is left to send the SIGKILL that --kill-after promises, so a
workload that ignores SIGTERM would run on under init. pvrec therefore starts this watchdog
beside the workload: it holds the read end of a pipe whose write end only pvrec holds, and
a pidfd of the workload opened while pvrec was its parent (so no recycled pid is signalled).
On a normal end pvrec writes "done" and the watchdog exits at once; on EOF without it (pvrec
died), the watchdog waits the grace for the workload's tree to end, then SIGKILLs what is left,
and removes what pvrec could not: the private directory of its marker socket (recorder.markers).

The grace is --kill-after, or STOP_GRACE when it was not given: after kill -9 nobody is left
to press a second Ctrl-C, and a build that outlives its recorder is what a user least expects;
STOP_GRACE is the grace pvrec itself gives a workload when --duration ends it.

The watchdog runs in its own session (no terminal, no terminal signals), in /, with nothing
but its pipe and the pidfd open; it is pvrec's child, and Workload.tree() leaves it out.
It sets no parent-death signal: outliving pvrec is its job. Stdlib only (started with
`python -I`, it imports kernel.proctree and no numpy: it stays small while it waits).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pvrec.kernel.proctree import children_by_parent, parent_of

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when the user did not say (--kill-after)
DONE = b"d"


class Watchdog:
    """pvrec's end of a running watchdog: release() says the workload ended normally."""

    def __init__(self, pidfd: int, pid: int, grace: float, creds: tuple[int, ...],
                 leftover: Path | None = None):
        read, self._write = os.pipe()  # both close-on-exec: the workload never holds them
        root = str(Path(__file__).resolve().parents[2])
        code = (f"import sys; sys.path.insert(0, {root!r}); "
                "from pvrec.recorder.watchdog import main; main(sys.argv[1:])")
        args = [read, pidfd, pid, grace, ",".join(map(str, creds)), leftover or ""]
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", code, *map(str, args)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(read, pidfd),
                start_new_session=True, cwd="/")
        finally:
            os.close(read)
        self.pid = self.proc.pid

    def release(self) -> None:
        """The workload ended and is reaped: tell the watchdog, and collect it."""
        if self._write < 0:
            return
        try:
            os.write(self._write, DONE)
        except OSError:
            pass  # it is gone already
        os.close(self._write)
        self._write = -1
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def main(args: list[str]) -> None:
    """The watchdog itself: wait for pvrec's word or its death, then end the workload and
    remove pvrec's leftover directory."""
    read, pidfd, pid = (int(a) for a in args[:3])
    grace, creds = float(args[3]), tuple(int(c) for c in args[4].split(","))
    if os.read(read, 1) == DONE:
        return
    end_tree(pidfd, pid, grace, creds)
    if args[5]:  # "": no leftover
        shutil.rmtree(args[5], ignore_errors=True)


def end_tree(pidfd: int, pid: int, grace: float, creds: tuple[int, ...]) -> None:
    """SIGTERM (where the kernel's was lost), wait up to grace for the tree, SIGKILL the rest."""
    if _credentials(pid) not in (creds, None) and not _exited(pidfd):
        # A set-user-ID exec or a setuid() cleared the parent-death signal: send it here.
        _send(pidfd, signal.SIGTERM)
    tree = subtree(pid, pidfd)
    deadline = time.monotonic() + grace
    waiting = list(tree.values())
    while waiting and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(waiting, [], [], left)
        waiting = [fd for fd in waiting if fd not in ready]
    for _ in range(10):  # again for what forked meanwhile, a few rounds at most
        left = {}
        for p, fd in tree.items():
            if not _exited(fd):
                left.update(subtree(p, fd))
        if not left:
            return
        for fd in left.values():
            _send(fd, signal.SIGKILL)
        tree = left


def subtree(pid: int, pidfd: int) -> dict[int, int]:
    """The process and its live descendants, pid -> pidfd; a child counts only if, after its
    pidfd is open, its parent is still the live parent (so its pid was not recycled)."""
    children = children_by_parent()
    found, todo = {pid: pidfd}, [(pid, pidfd)]
    while todo:
        parent, parent_fd = todo.pop()
        for child in children.get(parent, []):
            try:
                fd = os.pidfd_open(child)
            except OSError:
                continue
            if parent_of(child) == parent and not _exited(parent_fd):
                found[child] = fd
                todo.append((child, fd))
            else:
                os.close(fd)
    return found


def _exited(pidfd: int) -> bool:
    return bool(select.select([pidfd], [], [], 0)[0])


def _send(pidfd: int, sig: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except OSError:
        pass  # it ended meanwhile, or is not ours to signal


def _credentials(pid: int) -> tuple[int, ...] | None:
    """Real, effective and saved uid, then gid, of a process (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            lines = {k: v.split() for k, _, v in (line.partition(":") for line in f)}
        return tuple(int(x) for x in lines["Uid"][:3] + lines["Gid"][:3])
    except (OSError, KeyError, ValueError):
        return None
