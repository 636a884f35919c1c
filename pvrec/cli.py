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
    "recode": ("recode", "rewrite a recording in the current frame encoding (smaller frames)"),
    "render": ("render", "turn a recording into an MP4 / GIF / WebP / PNG where every pixel is "
                         "one page"),
    "view": ("view", "open a recording in the browser: an explorable page to zoom to single "
                     "pages, hover for flags and scrub time"),
    "snapshot": ("snapshot", "one picture of memory now (or of a dump, or RUN@N)"),
    "classes": ("classes", "print the page classes (and their colours) a render would use"),
    "stats": ("stats", "page-types summary: pages per flag combination"),
    "list": ("list", "page-types -Nl: runs of pages with equal flags"),
    "info": ("info", "summary of a recording: machine, sampling quality, class sizes, "
                     "fragmentation"),
    "metrics": ("metrics", "fragmentation metrics per frame and zone, as CSV"),
    "mark": ("mark", "label this moment in the recording the calling workload runs inside"),
    "blockers": ("blockers", "the huge-page blocks a few unmovable pages stop, and those pages"),
}

DESCRIPTION = """\
A time-lapse camera for Linux physical memory.

pvrec samples /proc/kpageflags (every physical page frame's flags, the data of the
kernel's tools/mm/page-types) at a fixed interval while a workload runs, and renders
the recording as a video in which every pixel is a 4 KiB page (or K pages) and every row
holds whole 2 MiB huge pages.
"""

EPILOG = """\
typical use (record and demo as root: sudo where you are not):
  sudo pvrec record --interval 1s -- make -j8     record while make runs
  pvrec render pvrec-make-*/ -o build.mp4         turn the recording into a video
  sudo pvrec demo                                 a 30 s built-in workload, recorded and rendered

`pvrec COMMAND --help` explains each command.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2, like every pvrec error."""

    command: str | None = None  # the command named on the line: its --help is the one to see

    def error(self, message: str):  # type: ignore[override]
        prog = f"pvrec {self.command}" if self.command in COMMANDS and self.prog == "pvrec" \
            else self.prog
        raise PvrecError(f"{message} (see {prog} --help)")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if args is not None:
            args = self._join_dash_values(list(args))
        return super().parse_known_args(args, namespace)

    def _join_dash_values(self, args: list[str]) -> list[str]:
        """`--interval -1s` -> `--interval=-1s`. argparse takes a value that starts with '-'
        for another option ("expected one argument"); joined, it reaches the option's own
        check, whose message says what is wrong with it. The workload's arguments (after `--`,
        or after CMD for record) are left as they are."""
        remainder = any(a.nargs == argparse.REMAINDER for a in self._actions
                        if not a.option_strings)
        out, i = [], 0
        while i < len(args):
            arg, value = args[i], args[i + 1] if i + 1 < len(args) else ""
            if arg == "--" or (remainder and not arg.startswith("-")):
                return out + args[i:]  # the workload's own arguments
            if self._single_value_option(arg) and value and value != "--":
                joined = value.startswith("-") and not self._is_option(value)
                out += [f"{arg}={value}" if arg.startswith("--") else arg + value] if joined \
                    else [arg, value]
                i += 2
            else:
                out.append(arg)
                i += 1
        return out

    def _single_value_option(self, arg: str) -> argparse.Action | None:
        """The option arg names (or abbreviates) if it takes exactly one value."""
        actions = self._option_string_actions
        action = actions.get(arg)
        if action is None and arg.startswith("--"):
            found = {actions[o] for o in actions if o.startswith(arg)}
            action = found.pop() if len(found) == 1 else None
        return action if action is not None and action.nargs is None else None

    def _is_option(self, arg: str) -> bool:
        """arg is an option of this parser ('-q', '-qf', '--force', '--out=x')."""
        name = arg.split("=", 1)[0]
        return name in self._option_string_actions or arg[:2] in self._option_string_actions \
            or any(o.startswith(name) for o in self._option_string_actions if name[:2] == "--")


def wrapped(text: str, width: int = 88) -> str:
    """A description's paragraphs filled to width where a line runs longer (the raw formatter
    keeps examples and tables as written; a paragraph written as one long line is filled)."""
    import textwrap

    paragraphs = text.strip("\n").split("\n\n")
    return "\n\n".join(textwrap.fill(" ".join(par.split()), width)
                       if max(map(len, par.splitlines())) > width and not par.startswith(" ")
                       else par for par in paragraphs) + "\n"


def add_command(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """The full parser of one command, from its module in pvrec.commands."""
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(f"pvrec.commands.{module_name}")
    p = sub.add_parser(name, help=help_text, description=wrapped(module.DESCRIPTION),
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
    parser.command = command
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
