"""The `pvrec` command line: the table of subcommands, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys

from pvrec import __version__
from pvrec.errors import PvrecError
from pvrec.messages import say

# command -> (module in pvrec.commands, one-line help). Only the command being run is imported,
# so `pvrec record` never loads Pillow and `pvrec --help` loads nothing.
COMMANDS = {
    "record": ("record", "record every page frame's flags at a fixed interval while a workload "
                         "runs"),
    "demo": ("demo", "record and render a 30 s built-in workload: the quickest first look"),
    "export": ("export", "write one frame back as a raw kpageflags dump (for page-types -F)"),
    "render": ("render", "turn a recording into an MP4 / GIF / WebP / PNG where every pixel is "
                         "one page"),
    "snapshot": ("snapshot", "one picture of memory now (or of a dump, or RUN@N)"),
    "classes": ("classes", "print the page classes (and their colours) a render would use"),
    "stats": ("stats", "page-types summary: pages per flag combination"),
    "list": ("list", "page-types -Nl: runs of pages with equal flags"),
    "info": ("info", "summary of a recording: machine, sampling quality, class sizes, "
                     "fragmentation"),
    "metrics": ("metrics", "fragmentation metrics per frame and zone, as CSV"),
}

DESCRIPTION = """\
A time-lapse camera for Linux physical memory.

pvrec samples /proc/kpageflags (every physical page frame's flags, the data of the
kernel's tools/mm/page-types) at a fixed interval while a workload runs, and renders
the recording as a video in which every pixel is a 4 KiB page (or K pages) and every row one
2 MiB huge page.
"""

EPILOG = """\
typical use:
  sudo pvrec record --interval 1s -- make -j8     record while make runs
  pvrec render pvrec-make-*/ -o build.mp4         turn the recording into a video
  pvrec demo                                      a 30 s built-in workload, recorded and rendered

`pvrec COMMAND --help` explains each command.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2, like every pvrec error."""

    def error(self, message: str):  # type: ignore[override]
        raise PvrecError(f"{message} (see {self.prog} --help)")


def add_command(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """The full parser of one command, from its module in pvrec.commands."""
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(f"pvrec.commands.{module_name}")
    p = sub.add_parser(name, help=help_text, description=module.DESCRIPTION,
                       epilog=getattr(module, "EPILOG", None),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    module.register(p)
    p.set_defaults(func=module.run)
    return p


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the named command's module is imported (the others are listed)."""
    parser = _Parser(
        prog="pvrec",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pvrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_module, help_text) in COMMANDS.items():
        if name == command:
            add_command(sub, name)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run pvrec; every PvrecError becomes one line on stderr and its exit code."""
    try:
        argv = sys.argv[1:] if argv is None else argv
        command = next((a for a in argv if not a.startswith("-")), None)
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except PvrecError as exc:
        say(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except BrokenPipeError:
        # `pvrec list ... | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0
