"""The fixed-rate sampling loop: tick k at t0 + k*interval, missed ticks skipped and counted.

One sample reads kpageflags chunk by chunk and run-length encodes each chunk while it is still
in cache, so memory stays at one chunk plus the runs however big the machine. Signals only set
state here (the first asks for a clean stop, the second stops at once), so a frame is never
half-written by a handler.
"""

from __future__ import annotations

import math
import os
import select
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pvrec.errors import PvrecError
from pvrec.kernel.cpu import CpuMark, mark
from pvrec.kernel.holes import Holes
from pvrec.kernel.kpageflags import PageFlagsFile, SampleError
from pvrec.kernel.processes import mapped_pfns
from pvrec.kernel.procstat import read_context
from pvrec.recorder.budget import Budget, next_tick
from pvrec.recorder.watchdog import STOP_GRACE
from pvrec.recorder.workload import Workload
from pvrec.recording.figures import Figures
from pvrec.recording.writer import Writer
from pvrec.runs import encode_flags

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TELL_WAITING_AFTER = 1.0  # s after a stop signal: the workload still runs, say what happens


class StopNow(BaseException):
    """Raised by the second stop signal: leave at once (BaseException so no handler eats it)."""


class StopSignals:
    """Turns SIGINT/SIGTERM/SIGHUP into stop requests and wakes the sampler's wait through a pipe."""

    def __init__(self) -> None:
        self.count = 0
        self.signum: int | None = None
        self.first_at: float | None = None
        self.workload: Workload | None = None
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        self._old_fd = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)

    @property
    def fd(self) -> int:
        return self._r

    def drain(self) -> None:
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    def _handle(self, signum: int, _frame) -> None:
        self.count += 1
        if self.count == 1:
            self.signum, self.first_at = signum, time.monotonic()
            if self.workload is not None and not _terminal_sent_it_too(signum):
                self.workload.send(signum)
        else:
            raise StopNow()

    def attach(self, workload: Workload | None) -> None:
        """Forward stop signals to the workload from now on, and one that came while it started."""
        self.workload = workload
        if workload is not None and self.count and not _terminal_sent_it_too(self.signum):
            workload.send(self.signum)

    def waiting_notice(self, workload: Workload, kill_after: float | None) -> str:
        """What to tell when the workload outlives the stop signal, and how to stop at once."""
        name = signal.Signals(self.signum).name
        again = ("press Ctrl-C again" if self.signum == signal.SIGINT
                 else f"send {name} again (kill -{name[3:]} {os.getpid()})")
        then = (f"; it is killed {kill_after:g} s after the signal (--kill-after)"
                if kill_after is not None else "")
        return (f"waiting for the workload (pid {workload.pid}), still running after {name}"
                f"{then}; {again} to kill it and stop at once")

    def restore(self) -> None:
        signal.set_wakeup_fd(self._old_fd)
        for s, h in self._old.items():
            signal.signal(s, h)
        os.close(self._r)
        os.close(self._w)


def _terminal_sent_it_too(signum: int) -> bool:
    """A Ctrl-C typed at our terminal already reached the workload (it shares our process group)."""
    if signum != signal.SIGINT:
        return False
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


@dataclass
class SamplerStats(Figures):
    """What the live status line, the summary and end.json show: the recording's figures (one
    definition, shared with `pvrec info`), and why the last failed sample failed."""

    skipped_ticks: int = 0  # always counted here
    budget_ticks: int = 0
    failed_samples: int = 0
    last_error: str = ""


class FrameAddon(Protocol):
    """More for each frame (kernel events, markers): (index-line context, frame-file arrays),
    of what happened up to `began`, the monotonic start of the frame's sample."""

    def frame_data(self, began: float) -> tuple[dict, dict]: ...


class Sampler:
    """Takes one frame: read every PFN in chunks, encode, add context, append to the writer."""

    def __init__(self, source: PageFlagsFile, pfn_count: int, writer: Writer, t0: float,
                 with_context: bool = True, cgroups: PageFlagsFile | None = None,
                 workload_pids: Callable[[], list[int]] | None = None, interval: float = 0.0,
                 budget: Budget | None = None, holes: Holes | None = None,
                 addons: Sequence[FrameAddon] = (), jobs: int = 1):
        self.source = source
        self.jobs = jobs  # threads reading kpageflags (pvrec.kernel.parallel)
        self.cgroups = cgroups
        self.workload_pids = workload_pids
        self.pfn_count = pfn_count
        self.writer = writer
        self.t0 = t0
        self.with_context = with_context
        self.addons = addons
        self.stats = SamplerStats(interval=interval)
        self.budget = budget
        self.holes = holes
        self.marks: dict[str, CpuMark] = {}  # "start"/"end": the counters around the workload

    def ready_at(self, now: float) -> float:
        """The earliest time the budget lets the next sample start (-inf: no budget)."""
        if self.budget is None:
            return -math.inf
        return self.budget.spend(now, time.process_time())

    def mark(self, name: str) -> None:
        """Note the CPU counters now, as `name` (the workload's start and end)."""
        self.marks[name] = mark(time.monotonic())

    def _flag_chunks(self, context: dict):
        """The flags chunk by chunk; known holes filled, not read (pvrec.kernel.holes). When
        the last chunk is read, context gets the frame's smear: first read start to last read
        end, what --jobs shortens."""
        began = time.monotonic()
        yield from self._read_chunks()
        context["smear_s"] = round(time.monotonic() - began, 6)

    def _read_chunks(self):
        holes, jobs = self.holes, self.jobs
        if holes is None:
            yield from self.source.chunks(self.pfn_count, jobs=jobs)
            return
        if holes.known and not holes.stale() and self.writer.frames % self.writer.key_every:
            yield from self.source.chunks(self.pfn_count, skip=holes.known, jobs=jobs)
            return
        holes.forget()  # a full read: learn (again) what the holes read as
        pos = 0
        for chunk in self.source.chunks(self.pfn_count, jobs=jobs):
            holes.watch(chunk, pos)
            pos += chunk.size
            yield chunk
        holes.learn()

    def take(self, scheduled: float) -> bool:
        """Sample now; False (and counted) when the read failed and the frame was skipped."""
        start, cpu_began = time.monotonic(), time.process_time()
        # Chunks are read, encoded and diffed one at a time inside add_frame (bounded memory).
        context = {"late": round(start - scheduled, 6)}
        runs = (encode_flags(c) for c in self._flag_chunks(context))
        cgroup = workload = None
        if self.cgroups is not None:
            cgroup = (encode_flags(c) for c in self.cgroups.chunks(self.pfn_count,
                                                                     jobs=self.jobs))
        if self.workload_pids is not None:
            t = time.monotonic()
            workload = mapped_pfns(self.workload_pids(), self.pfn_count)
            context["workload_pages"] = int(workload.size)
            context["workload_s"] = round(time.monotonic() - t, 6)
        if self.with_context:
            context.update(read_context())
        extra: dict = {}
        for addon in self.addons:
            more, arrays = addon.frame_data(start)
            context.update(more)
            extra.update(arrays)
        try:
            info = self.writer.add_frame(runs, start - self.t0, context, cgroup=cgroup,
                                         workload=workload, began=start,
                                         cpu_began=cpu_began, extra=extra)
        except SampleError as exc:
            self.stats.failed_samples += 1
            self.stats.last_error = str(exc)
            return False
        finally:  # a write error or a second Ctrl-C mid-read: the read threads stop now
            runs.close()
            if cgroup is not None:
                cgroup.close()
        self.stats.add(info)  # the entry frames.jsonl now holds: info counts the same
        return True


@dataclass
class RunResult:
    """How a recording ended."""

    reason: str
    exit_code: int
    error: PvrecError | None = None


def record_loop(
    sampler: Sampler,
    interval: float,
    stop: StopSignals,
    start_workload: Callable[[], Workload] | None,
    duration: float | None,
    kill_after: float | None,
    stop_on_error: bool,
    on_update: Callable[[], None] = lambda: None,
    notify: Callable[[str], None] = lambda message: None,
) -> RunResult:
    """Frame before the workload, frames on the tick schedule while it runs, a frame after it."""
    t0 = sampler.t0
    deadline = t0 + duration if duration else math.inf
    sampler.take(t0)
    on_update()
    workload = start_workload() if start_workload else None
    stop.attach(workload)
    k = first_tick(sampler, t0, interval)
    reason = ""
    told_waiting = False
    while True:
        if workload is not None and workload.poll():
            reason = f"workload {workload.describe_exit()}"
            sampler.mark("end")
            break
        if stop.count and workload is not None and not told_waiting and \
                time.monotonic() >= stop.first_at + TELL_WAITING_AFTER:
            notify(stop.waiting_notice(workload, kill_after))
            told_waiting = True
        if stop.count and workload is None:
            reason = f"stopped by {signal.Signals(stop.signum).name}"
            break
        if stop.count and kill_after is not None and workload is not None:
            if time.monotonic() >= stop.first_at + kill_after:
                workload.kill_tree()
                continue
        now = time.monotonic()
        if now >= deadline:
            reason = f"duration of {duration:g} s reached"
            break
        tick = t0 + k * interval
        wake = min(tick, deadline)
        if stop.count and kill_after is not None:
            wake = min(wake, stop.first_at + kill_after)
        if stop.count and not told_waiting:
            wake = min(wake, stop.first_at + TELL_WAITING_AFTER)
        if not _wait(wake, stop, workload):
            continue  # woken by the workload or a signal: look again
        if time.monotonic() >= deadline or time.monotonic() < tick:
            continue
        try:
            sampler.take(tick)
        except PvrecError as exc:  # the disk is full or gone: stop sampling, keep what we have
            return _after_write_error(exc, workload, stop_on_error, stop, notify)
        k = after_tick(sampler, k, t0, interval)
        on_update()
    sampler.stats.budget_ticks -= unpassed_held(k, t0, interval)
    if workload is not None and not workload.poll():  # the duration ended first
        reason += _end_workload(workload, kill_after)
    try:
        sampler.take(time.monotonic())
    except PvrecError as exc:
        notify(exc.message)
        return RunResult(reason, 1, exc)
    on_update()
    if stop.count:
        code = 128 + stop.signum
        if workload is not None and workload.poll() and workload.exit_code != code \
                and workload.status >= 0:
            # It outlived the signal and ended on its own: pvrec's exit still says "stopped".
            reason = (f"stopped by {signal.Signals(stop.signum).name} (exit {code}); the "
                      f"workload ended after it, with status {workload.status}")
        return RunResult(reason, code)
    if workload is not None and not reason.startswith("duration"):
        return RunResult(reason, workload.exit_code)
    return RunResult(reason, 0)


def _end_workload(workload: Workload, kill_after: float | None) -> str:
    """SIGTERM the workload still running at the end of --duration; what to add to the reason."""
    workload.send(signal.SIGTERM)
    _wait_exit(workload, kill_after if kill_after is not None else STOP_GRACE)
    was = "was " if (workload.status or 0) < 0 else ""
    return f"; the workload was still running: pvrec sent it SIGTERM and it {was}" \
        f"{workload.describe_exit()}"


def first_tick(sampler: Sampler, t0: float, interval: float) -> int:
    """The tick after frame 0 (taken before the workload: tick 1 even if it ran long), later
    when the budget says so (those ticks counted as held)."""
    _, _, held = next_tick(0, t0, sampler.ready_at(time.monotonic()), t0, interval)
    sampler.stats.budget_ticks += held
    return 1 + held


def after_tick(sampler: Sampler, k: int, t0: float, interval: float) -> int:
    """The tick after tick k's sample, counting the ticks it ran over and those the budget
    gives up."""
    done = time.monotonic()
    k, late, held = next_tick(k, done, sampler.ready_at(done), t0, interval)
    sampler.stats.skipped_ticks += late
    sampler.stats.budget_ticks += held
    return k


def unpassed_held(k: int, t0: float, interval: float) -> int:
    """Ticks counted as held for the budget that the recording ended before (next tick k)."""
    held = k - 1 - math.floor((time.monotonic() - t0) / interval)
    return max(0, held)


def _wait(until: float, stop: StopSignals, workload: Workload | None) -> bool:
    """Sleep until a monotonic time; False if the workload exiting or a signal woke us first."""
    fds = [stop.fd]
    if workload is not None and workload.pidfd >= 0:
        fds.append(workload.pidfd)
    while True:
        timeout = until - time.monotonic()
        if timeout <= 0:
            return True
        if workload is not None and workload.pidfd < 0:
            timeout = min(timeout, 0.05)  # no pidfd: poll the child
        ready, _, _ = select.select(fds, [], [], timeout)
        if stop.fd in ready:
            stop.drain()
        if ready or (workload is not None and workload.poll()):
            return False


def _wait_exit(workload: Workload, grace: float) -> None:
    """Wait for the workload to exit, SIGKILLing its tree after grace seconds."""
    end = time.monotonic() + grace
    while not workload.poll():
        if time.monotonic() >= end:
            workload.kill_tree()
            return
        time.sleep(0.02)


def _after_write_error(exc: PvrecError, workload: Workload | None, stop_on_error: bool,
                       stop: StopSignals, notify: Callable[[str], None]) -> RunResult:
    """Writing failed: stop sampling; the workload finishes unless --stop-on-error."""
    notify(exc.message)
    if workload is not None and not workload.poll():
        if stop_on_error:
            workload.send(signal.SIGTERM)
            _wait_exit(workload, STOP_GRACE)
        else:
            notify("sampling stopped; waiting for the workload to finish "
                   "(--stop-on-error stops it)")
            while not workload.poll():
                _wait(time.monotonic() + 3600, stop, workload)
    return RunResult("write error", 1, exc)
