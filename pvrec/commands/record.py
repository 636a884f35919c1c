"""`pvrec record`: sample /proc/kpageflags at a fixed interval while a workload runs."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.kernel.kpageflags import KPAGECGROUP, KPAGEFLAGS, PageFlagsFile
from pvrec.kernel.layout import cgroup_names, live_layout, machine_identity
from pvrec.kernel.processes import descendants
from pvrec.layout import flat_layout, max_pfn, merge_ranges
from pvrec.messages import next_step, say
from pvrec.recorder.sampler import Sampler, StopNow, StopSignals, record_loop
from pvrec.recorder.workload import Workload, become_subreaper, invoking_user, resolve_command
from pvrec.recording.format import DEFAULT_KEY_EVERY, disk_usage
from pvrec.recording.writer import Writer
from pvrec.units import format_bytes, format_duration, parse_duration

DESCRIPTION = """\
Sample /proc/kpageflags (the flags of every physical page frame) at a fixed interval
and write each sample as a compressed frame into a recording directory.

With `-- CMD ARGS...` pvrec takes a frame, starts CMD, samples while it runs, takes a
last frame after it exits, and exits with CMD's exit status. Without CMD it records
the whole system until --duration passes or Ctrl-C. Needs root: reading
/proc/kpageflags needs root. Under sudo, CMD runs as the invoking user.

Ctrl-C (or SIGTERM/SIGHUP) stops cleanly: the workload gets the signal, pvrec takes a
last frame and exits 128+signal (130 for Ctrl-C). A second one stops at once; the
recording stays readable.
"""
EPILOG = """\
examples:
  sudo pvrec record -- make -j8                  record a kernel build
  sudo pvrec record --interval 250ms -- ./bench  sample four times a second
  sudo pvrec record --duration 30s -o idle/      the whole system for 30 s
  pvrec record --kpageflags dump.kpf --duration 5s   record from a saved raw dump
then:
  pvrec render RECORDING/ -o RECORDING.mp4
"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interval", default="1s", metavar="TIME",
                   help="time between samples: 250ms, 1s, 1.5s, 2m; a bare number is seconds "
                        "(default 1s). A full read "
                        "of kpageflags costs ~0.6 s of CPU on 24 GiB, so keep it above that")
    p.add_argument("-d", "--duration", metavar="TIME",
                   help="stop after this long (with CMD: whichever ends first)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="recording directory (default pvrec-<cmd>-<YYYYmmdd-HHMMSS>/)")
    p.add_argument("-f", "--force", action="store_true",
                   help="overwrite an existing recording in DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no live status line")
    p.add_argument("-F", "--kpageflags", metavar="FILE",
                   help="read a saved raw kpageflags dump (as page-types -F) instead of "
                        "/proc/kpageflags; it is re-read at every tick")
    p.add_argument("--as-root", action="store_true",
                   help="under sudo, run CMD as root instead of the invoking user")
    p.add_argument("--kill-after", metavar="TIME",
                   help="after a stop signal, SIGKILL the workload's process tree if it is "
                        "still running this much later")
    p.add_argument("--stop-on-error", action="store_true",
                   help="if writing fails (disk full), stop the workload too (default: let it "
                        "finish and stop sampling)")
    p.add_argument("--track-workload", action=argparse.BooleanOptionalAction, default=None,
                   help="store the PFNs the workload's processes map in every frame, for "
                        "`pvrec render --highlight workload` (default: on with CMD)")
    p.add_argument("--cgroups", action="store_true",
                   help="also sample /proc/kpagecgroup (each page's memory cgroup), for "
                        "`pvrec render --color-by cgroup`; doubles the kernel read cost")
    p.add_argument("--kpagecgroup", metavar="FILE",
                   help="with --kpageflags and --cgroups: a raw kpagecgroup dump to read")
    p.add_argument("--key-every", type=int, default=DEFAULT_KEY_EVERY, metavar="N",
                   help=f"a key frame every N frames; the others store only what changed "
                        f"(default {DEFAULT_KEY_EVERY})")
    p.add_argument("--no-next", action="store_true", help=argparse.SUPPRESS)  # for pvrec demo
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                   help="the workload to run and record")


def default_output(cmd: list[str]) -> Path:
    name = os.path.basename(cmd[0]) if cmd else "system"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "cmd"
    return Path(f"pvrec-{safe}-{datetime.now():%Y%m%d-%H%M%S}")


def run(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    interval = parse_duration(args.interval, "--interval")
    duration = parse_duration(args.duration, "--duration") if args.duration else None
    kill_after = parse_duration(args.kill_after, "--kill-after", True) if args.kill_after else None
    if args.key_every < 1:
        raise PvrecError("--key-every must be at least 1")
    if args.track_workload and not cmd:
        raise PvrecError("--track-workload needs a workload: pvrec record --track-workload -- CMD")
    if args.track_workload and args.kpageflags:
        raise PvrecError("--track-workload reads this machine's page tables; it does not go "
                         "with --kpageflags")
    if args.kpagecgroup and not (args.cgroups and args.kpageflags):
        raise PvrecError("--kpagecgroup goes with --kpageflags and --cgroups")
    run_as = invoking_user(args.as_root)
    if cmd:
        resolve_command(cmd, run_as)  # 127 before anything is written
    out = Path(args.output) if args.output else default_output(cmd)
    recording = Recorder(args, cmd, interval, out, run_as)
    return recording.run(duration, kill_after)


class Recorder:
    """One `pvrec record` run: opens the source, writes the header, runs the loop, reports."""

    def __init__(self, args, cmd, interval, out, run_as):
        self.args, self.cmd, self.interval, self.out, self.run_as = args, cmd, interval, out, run_as
        path = args.kpageflags or KPAGEFLAGS
        self.source = PageFlagsFile(path)
        self.cgroups = None
        if args.cgroups:
            cg_path = args.kpagecgroup or ("" if args.kpageflags else KPAGECGROUP)
            if not cg_path:
                raise PvrecError("--cgroups with --kpageflags needs --kpagecgroup FILE")
            self.cgroups = PageFlagsFile(cg_path)
        self.track = bool(cmd) and not args.kpageflags and args.track_workload is not False
        if self.source.is_dump:
            self.pfn_count = self.source.dump_pages()
            layout = flat_layout(self.pfn_count)
        else:
            layout = live_layout()
            self.pfn_count = self.source.probe_pages(max_pfn(layout))
            if not layout["ram_ranges"]:  # /proc/iomem hides addresses without CAP_SYS_ADMIN
                blocks = merge_ranges([r for n in layout["nodes"] for r in n["ranges"]])
                layout["ram_ranges"] = blocks or [[0, self.pfn_count]]
                layout["layout_source"] = ("live, RAM from memory blocks" if blocks
                                           else "live, RAM ranges unknown")
        now = time.time()
        self.header = {
            **machine_identity(),
            **layout,
            "pfn_count": self.pfn_count,
            "interval": interval,
            "command": cmd,
            "source": path,
            "start_wall": datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds"),
            "start_unix": now,
            "cgroup_names": cgroup_names() if args.cgroups and not args.kpageflags else {},
            "user": self.run_as.user if self.run_as else None,
        }

    def run(self, duration, kill_after) -> int:
        owner = (self.run_as.uid, self.run_as.gid) if self.run_as else None
        writer = Writer(self.out, self.header, key_every=self.args.key_every,
                        force=self.args.force, owner=owner,
                        channels=("flags",) + ("cgroup",) * bool(self.cgroups)
                        + ("workload",) * self.track)
        if self.cmd:
            become_subreaper()
        stop = StopSignals()
        t0 = time.monotonic()
        sampler = Sampler(self.source, self.pfn_count, writer, t0,
                          with_context=not self.source.is_dump, cgroups=self.cgroups,
                          workload_pids=(lambda: descendants(os.getpid())) if self.track else None)
        status = StatusLine(sampler, t0, self.interval, enabled=not self.args.quiet)
        start = (lambda: Workload(self.cmd, self.run_as)) if self.cmd else None
        workload_ref: list = []

        def start_workload():
            w = start()
            workload_ref.append(w)
            return w

        result = None
        try:
            with status:
                result = record_loop(sampler, self.interval, stop,
                                     start_workload if start else None, duration, kill_after,
                                     self.args.stop_on_error, status.update, status.notify)
        except StopNow:
            if workload_ref:
                workload_ref[0].kill_tree()
            signum = stop.signum or 2
            writer.close(self._end("stopped at once by a second signal", sampler, 128 + signum,
                                   workload_ref))
            stop.restore()
            self.source.close()
            say(f"stopped at once; {self.out}/ is readable up to frame "
                  f"{writer.frames - 1}")
            return 128 + signum
        finally:
            if result is not None:
                writer.close(self._end(result.reason, sampler, result.exit_code, workload_ref))
                stop.restore()
                self.source.close()
        if result.error is not None:
            return result.exit_code  # its message was shown when it happened
        self._summary(sampler, result.reason)
        return result.exit_code

    def _end(self, reason, sampler, exit_code, workload_ref) -> dict:
        s = sampler.stats
        w = workload_ref[0] if workload_ref else None
        extra = {}
        if self.cgroups is not None and not self.args.kpageflags:
            extra["cgroup_names"] = cgroup_names()  # cgroups made during the run
        return {
            **extra,
            "reason": reason,
            "exit_code": exit_code,
            "workload_status": w.status if w else None,
            "skipped_ticks": s.skipped_ticks,
            "failed_samples": s.failed_samples,
            "duration": round(time.monotonic() - sampler.t0, 6),
            "mean_sample_s": round(statistics.fmean(s.costs), 6) if s.costs else None,
            "end_wall": datetime.now().astimezone().isoformat(timespec="seconds"),
        }

    def _summary(self, sampler, reason) -> None:
        s = sampler.stats
        size = disk_usage(self.out)
        mean = statistics.fmean(s.costs) if s.costs else 0.0
        extra = ""
        if s.skipped_ticks:
            extra += f", {s.skipped_ticks} ticks skipped (sampler fell behind)"
        if s.failed_samples:
            extra += f", {s.failed_samples} samples failed ({s.last_error})"
        dur = s.last_t
        say(f"{s.frames} frames over {format_duration(dur)} in {self.out}/ "
              f"({format_bytes(size)}, mean sample {mean:.3f} s{extra}); {reason}")
        if self.args.no_next:
            return
        target = shlex.quote(str(self.out).rstrip("/") + ".mp4")
        next_step(f"pvrec render {shlex.quote(str(self.out))} -o {target}")


class StatusLine:
    """The live status line on stderr (rich), redrawn by a background thread four times a second."""

    def __init__(self, sampler: Sampler, t0: float, interval: float, enabled: bool):
        self.sampler, self.t0, self.interval = sampler, t0, interval
        self.live = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.console = Console(stderr=True)
            self.live = Live(self, console=self.console, refresh_per_second=4, transient=True)

    def __enter__(self):
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def update(self) -> None:
        if self.live:
            self.live.refresh()

    def notify(self, message: str) -> None:
        if self.live:
            self.console.print(f"pvrec: {message}", markup=False, highlight=False)
        else:
            say(message)

    def __rich__(self):
        from rich.text import Text

        s = self.sampler.stats
        text = Text()
        text.append("recording ", style="bold red")
        text.append(f"{format_duration(time.monotonic() - self.t0)}  {s.frames} frames  "
                    f"sample {s.last_cost:.2f} s  {format_bytes(s.bytes)}")
        if s.skipped_ticks:
            text.append(f"  falling behind: {s.skipped_ticks} ticks skipped; "
                        f"raise --interval to {math.ceil(s.last_cost * 12) / 10:.1f}s or more",
                        style="yellow")
        if s.failed_samples:
            text.append(f"  {s.failed_samples} samples failed", style="yellow")
        return text
