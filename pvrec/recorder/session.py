"""One recording session: open the sources, write the header, run the sampling loop, close.

`pvrec record` builds RecordOptions from its arguments and runs Recorder(options); what the user sees
(the live status line, the summary) is the command's business: the session reports through
the display it is given and returns a RecordResult.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pvrec.errors import PvrecError
from pvrec.kernel.cpu import mark, peak_rss, usable_cpus
from pvrec.kernel.holes import Holes
from pvrec.kernel.kpageflags import KPAGECGROUP, KPAGEFLAGS, PageFlagsFile
from pvrec.kernel.layout import (
    cgroup_names,
    live_layout,
    machine_identity,
    wall_clock,
    with_known_ram,
)
from pvrec.kernel.parallel import MAX_JOBS, default_jobs
from pvrec.layout import flat_layout, max_pfn
from pvrec.recorder import events as kernel_events
from pvrec.recorder.budget import Budget
from pvrec.recorder.markers import ENV as MARK_ENV
from pvrec.recorder.markers import MarkerSocket
from pvrec.recorder.probe import probe_sample_cpu
from pvrec.recorder.sampler import Sampler, SamplerStats, StopNow, StopSignals, record_loop
from pvrec.recorder.workload import RunAs, Workload, become_subreaper, resolve_command
from pvrec.recording.events import DEFAULT_MAX_PER_FRAME
from pvrec.recording.format import DEFAULT_KEY_EVERY
from pvrec.recording.overhead import Overhead
from pvrec.recording.writer import Writer


@dataclass
class RecordOptions:
    """What `pvrec record` was asked to do, checked before anything is opened or written."""

    out: Path
    cmd: list[str]
    interval: float
    duration: float | None = None
    kill_after: float | None = None
    kpageflags: str | None = None
    kpagecgroup: str | None = None
    cgroups: bool = False
    track_workload: bool | None = None  # None: on when there is a CMD
    key_every: int = DEFAULT_KEY_EVERY
    force: bool = False
    stop_on_error: bool = False
    run_as: RunAs | None = None
    events: bool = False  # kernel tracepoints (recorder/events.py)
    events_max: int = DEFAULT_MAX_PER_FRAME
    max_overhead: float | None = None  # percent of the machine's CPUs, None: no budget
    jobs: int | None = None  # threads reading kpageflags; None: default_jobs()

    def check(self) -> None:
        """Refuse combinations that cannot work (one line each, exit 2), and a missing CMD (127)."""
        if self.key_every < 1:
            raise PvrecError("--key-every must be at least 1")
        if self.jobs is not None and not 1 <= self.jobs <= MAX_JOBS:
            raise PvrecError(f"--jobs must be 1 to {MAX_JOBS}, not {self.jobs}")
        if self.track_workload and not self.cmd:
            raise PvrecError("--track-workload needs a workload: pvrec record --track-workload "
                             "-- CMD")
        if self.track_workload and self.kpageflags:
            raise PvrecError("--track-workload reads this machine's page tables; it does not go "
                             "with --kpageflags")
        if self.events and self.kpageflags:
            raise PvrecError("--events reads this machine's kernel tracepoints; it does not go "
                             "with --kpageflags")
        if self.events_max < 1:
            raise PvrecError("--events-max must be at least 1")
        if self.kpagecgroup and not (self.cgroups and self.kpageflags):
            raise PvrecError("--kpagecgroup goes with --kpageflags and --cgroups")
        if self.cmd:
            resolve_command(self.cmd)  # 127 before anything is written


class Display(Protocol):
    """What the session tells while it runs: a redraw after each frame, and message lines."""

    def __enter__(self) -> Display: ...
    def __exit__(self, *exc) -> None: ...
    def update(self) -> None: ...
    def notify(self, message: str) -> None: ...


@dataclass
class RecordResult:
    """How a session ended, for the command's summary line."""

    exit_code: int
    reason: str
    stats: SamplerStats
    frames: int
    stopped_at_once: bool = False  # a second signal: no last frame was taken
    error: PvrecError | None = None  # a write error, already told through the display
    overhead: Overhead | None = None  # what the session cost (end.json's overhead)


class Recorder:
    """The sources and the header of one session (opened at construction: errors come early)."""

    def __init__(self, opt: RecordOptions):
        self.opt = opt
        # first: without root or tracefs, --events is the one line to tell
        self.stale_instances = kernel_events.prepare() if opt.events else []
        path = opt.kpageflags or KPAGEFLAGS
        self.files = ExitStack()  # the open sources: closed when the session ends, or fails here
        with self.files:
            self.source = self.files.enter_context(PageFlagsFile(path))
            self.cgroups = None
            if opt.cgroups:
                cg_path = opt.kpagecgroup or ("" if opt.kpageflags else KPAGECGROUP)
                if not cg_path:
                    raise PvrecError("--cgroups with --kpageflags needs --kpagecgroup FILE")
                self.cgroups = self.files.enter_context(PageFlagsFile(cg_path))
            self.pfn_count, layout = self._layout()
            self.cpus = usable_cpus()
            if opt.max_overhead is not None:  # refused before anything is written
                Budget(opt.max_overhead, self.cpus, 0.0, 0.0).check_affordable(
                    probe_sample_cpu(self.source, self.pfn_count))
            self.files = self.files.pop_all()
        self.ram_bytes = 0
        self.track = bool(opt.cmd) and not opt.kpageflags and opt.track_workload is not False
        now = time.time()
        self.header = {
            **machine_identity(),
            **layout,
            "pfn_count": self.pfn_count,
            "interval": opt.interval,
            "command": opt.cmd,
            "source": path,
            "start_wall": wall_clock(),
            "start_unix": now,
            "cgroup_names": cgroup_names() if opt.cgroups and not opt.kpageflags else {},
            "user": opt.run_as.user if opt.run_as else None,
        }
        if opt.events:
            self.header["events"] = kernel_events.events_header(opt.events_max)

    def _layout(self) -> tuple[int, dict]:
        """(page count, layout header fields): the live machine's, or a flat one for a dump."""
        if self.source.is_dump:
            count = self.source.dump_pages()
            return count, flat_layout(count)
        layout = live_layout()
        count = self.source.probe_pages(max_pfn(layout))
        return count, with_known_ram(layout, count)

    def run(self, make_display: Callable[[Sampler, float], Display]) -> RecordResult:
        """Record until the workload exits, the duration passes or a signal stops it."""
        with self.files:
            return self._record(make_display)

    def _record(self, make_display: Callable[[Sampler, float], Display]) -> RecordResult:
        opt = self.opt
        owner = (opt.run_as.uid, opt.run_as.gid) if opt.run_as else None
        addons: list = []  # more for each frame: the kernel's events, the workload's markers
        if opt.events:  # before the recording exists: a failure leaves nothing behind
            addons.append(kernel_events.open_events(self.files, opt.events_max))
        writer = Writer(opt.out, self.header, key_every=opt.key_every, force=opt.force,
                        owner=owner, channels=("flags",) + ("cgroup",) * bool(self.cgroups)
                        + ("workload",) * self.track)
        self.files.callback(writer.close_index)
        self.ram_bytes = writer.header.ram_pages * writer.header.page_size
        if opt.cmd:
            become_subreaper()
        stop = StopSignals()
        t0 = time.monotonic()
        self.t0_mark = mark(t0)
        started: list[Workload] = []
        if opt.cmd:
            addons.append(MarkerSocket(t0, owner))
            self.files.callback(addons[-1].close)
        sampler = Sampler(self.source, self.pfn_count, writer, t0,
                          with_context=not self.source.is_dump, cgroups=self.cgroups,
                          workload_pids=(lambda: started[0].tree() if started else []) if self.track
                          else None,
                          interval=opt.interval, budget=self._budget(t0),
                          holes=None if self.source.is_dump else Holes(self.pfn_count),
                          addons=addons, jobs=opt.jobs or default_jobs(self.cpus))
        display = make_display(sampler, t0)

        def start_workload() -> Workload:
            sampler.mark("start")
            marks = {MARK_ENV: str(addons[-1].path)}
            started.append(Workload(opt.cmd, opt.run_as, opt.kill_after, extra_env=marks,
                                    leftover=addons[-1].dir))  # its watchdog removes it
            return started[0]

        try:
            with display:
                result = record_loop(sampler, opt.interval, stop,
                                     start_workload if opt.cmd else None, opt.duration,
                                     opt.kill_after, opt.stop_on_error, display.update,
                                     display.notify)
            end = self._end(result.reason, sampler, result.exit_code, started)
            writer.close(end)
        except StopNow:
            if started:
                started[0].kill_tree()
            code = 128 + (stop.signum or 2)
            writer.close(self._end("stopped at once by a second signal", sampler, code, started))
            return RecordResult(code, "stopped at once", sampler.stats, writer.frames, True)
        finally:
            stop.restore()
        return RecordResult(result.exit_code, result.reason, sampler.stats, writer.frames,
                            error=result.error, overhead=Overhead.from_dict(end["overhead"]))

    def _budget(self, t0: float) -> Budget | None:
        if self.opt.max_overhead is None:
            return None
        return Budget(self.opt.max_overhead, self.cpus, t0, time.process_time())  # its clock

    def overhead(self, sampler: Sampler) -> Overhead:
        """What the session cost so far: pvrec's CPU against the machine's, its memory, its
        writes, and the workload's time and CPU beside pvrec's while it ran."""
        now = mark(time.monotonic())
        begin = self.t0_mark
        ov = Overhead(
            cpus=self.cpus, wall_s=now.wall - begin.wall, user_s=now.user - begin.user,
            system_s=now.system - begin.system,
            machine_busy_s=None if now.machine is None or begin.machine is None
            else now.machine - begin.machine,
            peak_rss=peak_rss(), written=_recording_bytes(sampler.writer),
            max_overhead=self.opt.max_overhead, tick_cpu_s=sampler.stats.tick_cpu,
            ram_bytes=self.ram_bytes)
        start = sampler.marks.get("start")
        if start is not None:
            end = sampler.marks.get("end", now)
            ov.workload_wall_s = end.wall - start.wall
            ov.workload_cpu_s = end.children - start.children
            ov.workload_pvrec_s = end.cpu - start.cpu
        return ov

    def _end(self, reason: str, sampler: Sampler, exit_code: int, started: list[Workload]
             ) -> dict:
        """end.json: why the session stopped, and its totals."""
        s = sampler.stats
        w = started[0] if started else None
        extra = {}
        if self.cgroups is not None and not self.opt.kpageflags:
            extra["cgroup_names"] = cgroup_names()  # cgroups made during the run
        return {
            **extra,
            "reason": reason,
            "exit_code": exit_code,
            "workload_status": w.status if w else None,
            **s.end_fields(),
            "overhead": self.overhead(sampler).to_dict(),
            "end_wall": wall_clock(),
        }


def _recording_bytes(writer: Writer) -> int:
    """Bytes pvrec has written to the recording: its frames, index and header. (Not
    /proc/self/io's wchar: the kernel adds the writes of every reaped child to it, so a
    build's object files would count as pvrec's.)"""
    total = writer.bytes
    for name in ("header.json", "frames.jsonl"):
        try:
            total += os.stat(writer.path / name).st_size
        except OSError:
            pass
    return total
