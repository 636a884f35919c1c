"""`pvrec record`: sample /proc/kpageflags at a fixed interval while a workload runs."""

from __future__ import annotations

import argparse
import os
import shlex
import time
from datetime import datetime
from pathlib import Path

from pvrec.commands.terminal import LiveDisplay
from pvrec.messages import next_step, say, warn
from pvrec.recorder.sampler import Sampler
from pvrec.recorder.session import Recorder, RecordOptions, RecordResult
from pvrec.recorder.workload import invoking_user
from pvrec.recording.events import DEFAULT_MAX_PER_FRAME
from pvrec.recording.format import DEFAULT_KEY_EVERY
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

The workload finds the recording's marker socket in PVREC_MARK: `pvrec mark TEXT` run from
it labels that moment on the timeline, in the header and in `pvrec info` and `metrics`.
"""
EPILOG = """\
examples:
  sudo pvrec record -- make -j8                  record a kernel build
  sudo pvrec record --interval 250ms -- ./bench  sample four times a second
  sudo pvrec record --duration 30s -o idle/      the whole system for 30 s
  sudo pvrec record --events -- ./workload       + the kernel's fallbacks and compaction
  pvrec record --kpageflags dump.kpf --duration 5s   record from a saved raw dump
then:
  pvrec render RECORDING/ -o RECORDING.mp4
"""


SLOW_AFTER_FRAMES = 3  # the frame before the workload and two ticks': then tell


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interval", default="1s", metavar="TIME",
                   help="time between samples: 250ms, 1s, 1.5s, 2m; a bare number is seconds "
                        "(default 1s). Keep it above what a sample costs, which grows with RAM "
                        "and load: ~0.6 s per 24 GiB idle, ~1.2 s beside a build; the status "
                        "line shows the cost pvrec measures, and the summary its mean")
    p.add_argument("-d", "--duration", metavar="TIME",
                   help="stop after this long (with CMD: whichever ends first)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="recording directory to create (its parent must exist; default "
                        "pvrec-<cmd>-<YYYYmmdd-HHMMSS>/)")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace the pvrec recording in DIR (never another directory, a "
                        "file or a link)")
    p.add_argument("-q", "--quiet", action="store_true", help="no live status line")
    p.add_argument("-F", "--kpageflags", metavar="FILE",
                   help="read a saved raw kpageflags dump (as page-types -F) instead of "
                        "/proc/kpageflags; it is re-read at every tick")
    p.add_argument("--as-root", action="store_true",
                   help="under sudo, run CMD as root instead of the invoking user")
    p.add_argument("--kill-after", metavar="TIME",
                   help="after a stop signal, SIGKILL the workload's process tree if it is "
                        "still running this much later; also after kill -9 of pvrec (default "
                        "there: 5s)")
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
    p.add_argument("--events", action="store_true",
                   help="also record the kernel's page-block fallbacks (kmem:mm_page_alloc_"
                        "extfrag) and compaction (compaction:mm_compaction_*) tracepoints, for "
                        "`pvrec render --events`; root; tracefs is mounted at /sys/kernel/"
                        "tracing if it is not. They are read in a trace instance of pvrec's own "
                        "(instances/pvrec-PID: other tracing is neither disturbed nor read), "
                        "removed when pvrec ends; one left by a pvrec killed with SIGKILL is "
                        "removed by the next `pvrec record --events`")
    p.add_argument("--events-max", type=int, default=DEFAULT_MAX_PER_FRAME, metavar="N",
                   help=f"with --events: store at most N events of each type per frame; the "
                        f"rest are counted (as dropped) but not stored (default "
                        f"{DEFAULT_MAX_PER_FRAME})")
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
    opt = RecordOptions(
        out=Path(args.output) if args.output else default_output(cmd), cmd=cmd,
        interval=parse_duration(args.interval, "--interval"),
        duration=parse_duration(args.duration, "--duration") if args.duration else None,
        kill_after=parse_duration(args.kill_after, "--kill-after", True) if args.kill_after
        else None,
        kpageflags=args.kpageflags, kpagecgroup=args.kpagecgroup, cgroups=args.cgroups,
        track_workload=args.track_workload, key_every=args.key_every, force=args.force,
        stop_on_error=args.stop_on_error, run_as=invoking_user(args.as_root),
        events=args.events, events_max=args.events_max)
    opt.check()
    recorder = Recorder(opt)
    for name in recorder.stale_instances:
        say(f"removed trace instance {name}, left by a pvrec that was killed")
    result = recorder.run(
        lambda sampler, t0: StatusLine(sampler, t0, enabled=not args.quiet))
    if result.stopped_at_once:
        killed = "the workload was killed (SIGKILL); " if opt.cmd else ""
        say(f"stopped at once: {killed}{opt.out}/ is readable up to frame {result.frames - 1}")
        if result.frames and not args.no_next:
            next_render(opt.out)
    elif result.error is None:  # a write error was told when it happened
        summarize(result, opt.out, show_next=not args.no_next)
    return result.exit_code


def summarize(result: RecordResult, out: Path, show_next: bool) -> None:
    """The summary line (the figures `pvrec info` shows, printed alike), and the command that
    renders the recording."""
    s = result.stats
    f = s.shown()
    timing = ", ".join(f[k] for k in ("interval", "mean_gap", "skipped_ticks") if f[k])
    failed = f", {s.failed_samples} samples failed ({s.last_error})" if s.failed_samples else ""
    say(f"{f['frames']} over {f['duration']} in {out}/ ({timing}{failed}; {f['mean_sample']}, "
        f"{f['bytes']}); {result.reason}")
    if show_next:
        next_render(out)


def next_render(out: Path) -> None:
    """The command that renders the recording."""
    target = shlex.quote(str(out).rstrip("/") + ".mp4")
    next_step(f"pvrec render {shlex.quote(str(out))} -o {target}")


class StatusLine(LiveDisplay):
    """The live status line on the terminal's bottom row, redrawn four times a second."""

    def __init__(self, sampler: Sampler, t0: float, enabled: bool):
        self.sampler, self.t0 = sampler, t0
        self.told_slow = False
        super().__init__(enabled)

    def update(self) -> None:
        self._warn_if_slow()
        self.refresh()

    def notify(self, message: str) -> None:
        say(message)

    def _warn_if_slow(self) -> None:
        """Once, after the first samples: the interval is shorter than they take."""
        s = self.sampler.stats
        if not self.told_slow and s.frames >= SLOW_AFTER_FRAMES:
            self.told_slow = True
            if advice := s.too_slow():
                warn(advice)

    def clock(self) -> float:
        """Seconds since frame 0, running between samples; stopped at the last frame it is the
        summary's duration (frame 0 to the last frame)."""
        s = self.sampler.stats
        if s.first_t is None:
            return 0.0
        return max(s.duration, time.monotonic() - self.t0 - s.first_t)

    def __rich__(self):
        from rich.text import Text

        s = self.sampler.stats
        text = Text()
        text.append("recording ", style="bold red")
        text.append(f"{format_duration(self.clock())}  {s.frames} frames  "
                    f"sample {s.last_sample:.2f} s  {format_bytes(s.bytes)}")
        if s.skipped_ticks:
            text.append(f"  behind: {s.skipped_ticks} ticks skipped (--interval "
                        f"{s.holdable_interval()} holds)", style="yellow")
        if s.failed_samples:
            text.append(f"  {s.failed_samples} samples failed", style="yellow")
        return text
