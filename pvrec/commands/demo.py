"""`pvrec demo`: record the built-in workload, so a newcomer sees pvrec work in one command."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from pvrec.commands import record as record_command
from pvrec.errors import PvrecError
from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile
from pvrec.messages import next_step, say, warn
from pvrec.output import check_output_dir, make_output_dir
from pvrec.recorder.demo_workload import hugepages_restored
from pvrec.recording.writer import is_recording
from pvrec.units import parse_duration

DESCRIPTION = (
    "Record about 30 seconds of a built-in workload that visibly changes "
    "memory: page cache filling and dropping, a 1 GiB anonymous THP-backed "
    "allocation growing and freed, 256 hugetlb pages reserved and released "
    "(vm.nr_hugepages is restored), then render it to demo.mp4 and demo.gif "
    "beside the recording. Needs root, like `pvrec record`."
)
EPILOG = ("examples (as root; sudo where you are not):\n  sudo pvrec demo\n"
          "  sudo pvrec demo -o /tmp/demo --no-render")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="DIR",
                   help="directory to create for the recording and videos (its parent must "
                        "exist; an earlier demo's is replaced; default pvrec-demo-<time>/)")
    p.add_argument("-i", "--interval", default="1s", metavar="TIME",
                   help="time between samples (default 1s), as pvrec record --interval")
    p.add_argument("-q", "--quiet", action="store_true", help="no live status line")
    p.add_argument("--no-render", action="store_true", help="record only")


def run(args: argparse.Namespace) -> int:
    try:
        PageFlagsFile(KPAGEFLAGS).close()
    except PvrecError as exc:
        raise PvrecError(f"the demo records this machine's memory, and {exc.message}") from None
    parse_duration(args.interval, "--interval")  # before anything is made on disk
    out = Path(args.output or f"pvrec-demo-{datetime.now():%Y%m%d-%H%M%S}")
    # An earlier demo's directory is pvrec's own: its recording and videos are replaced.
    check_output_dir(out, True, lambda d: is_recording(d / "recording"), "an earlier pvrec demo")
    make_output_dir(out)
    recording = out / "recording"
    with tempfile.TemporaryDirectory(prefix="pvrec-demo-") as work:
        # Through the record parser itself, so the demo takes every default `record` has.
        parser = argparse.ArgumentParser(prog="pvrec record")
        record_command.register(parser)
        rec_args = parser.parse_args(
            ["--force", "--as-root", "--no-next", "--kill-after", "5s", "--stop-on-error",
             "--interval", args.interval, "-o", str(recording)] + ["-q"] * args.quiet
            + ["--", sys.executable, "-m", "pvrec.recorder.demo_workload", work])
        # The workload restores vm.nr_hugepages itself; this also covers it being SIGKILLed.
        with hugepages_restored():
            code = record_command.run(rec_args)
    if code != 0 and (recording / "frames.jsonl").exists():
        say("the demo stopped early; what it recorded renders with:")
        next_step(f"pvrec render {shlex.quote(str(recording))} -o "
                  f"{shlex.quote(str(out / 'demo.mp4'))}")
    if code != 0 or args.no_render:
        return code
    return render_demo(recording, out)


def render_demo(recording: Path, out: Path) -> int:
    """Render the demo recording to demo.mp4 and demo.gif beside it."""
    from pvrec.render.pipeline import render_recording  # the render half, only now

    for name in ("demo.mp4", "demo.gif"):
        r = render_recording(recording, out / name, title="pvrec demo: page cache, THP, hugetlb",
                             warn=warn)
        say(r.line())
    say(f"demo written to {out}/: recording/ (the recording), demo.mp4 (and its poster "
        f"demo.poster.png), demo.gif")
    next_step(f"pvrec info {out}/recording")
    return 0
