"""The `pvrec` command line: the subcommand list, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys

from pvrec import __version__
from pvrec.errors import PvrecError

# Each module has register(subparsers) that adds its subcommands with set_defaults(func=...);
# func(args) returns the exit code. Imported lazily so `pvrec record` never loads Pillow.
COMMAND_MODULES = {
    "record": "pvrec.recorder.command",
    "demo": "pvrec.recorder.demo",
    "export": "pvrec.recorder.export",
    "render": "pvrec.render.command",
    "snapshot": "pvrec.render.command",
    "classes": "pvrec.render.command",
    "stats": "pvrec.inspect.command",
    "list": "pvrec.inspect.command",
    "info": "pvrec.inspect.info",
    "metrics": "pvrec.inspect.fragmentation",
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known command name only that command's module is imported."""
    parser = _Parser(
        prog="pvrec",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pvrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMAND_MODULES.values()
    for module_name in dict.fromkeys(wanted):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a half of pvrec not built yet
                continue
            raise
        module.register(sub)
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
        print(f"pvrec: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pvrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `pvrec list ... | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0
