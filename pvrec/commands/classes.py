"""`pvrec classes`: the page classes (colours, rules, and a frame's sizes) a render would use."""

from __future__ import annotations

import argparse

from pvrec.classes import THEMES, ValueClassifier, hex_color, make_scheme
from pvrec.errors import PvrecError
from pvrec.layout import pages_per_class
from pvrec.messages import say, warn
from pvrec.render.data import fit_data_scheme
from pvrec.render.plan import parse_position
from pvrec.sources import open_source

TOML_HELP = """\
your own classes (--classes FILE.toml): tried in order, the first match wins;
pages no class matches are "other". bits are page-types bits-specs:

  [[class]]
  name = "THP"
  bits = "thp"                  # thp set ("a,b": ANY of a, b set)
  color = "#D55E00"             # #rrggbb, #rgb or a CSS name
  dark = "#FF7A1A"              # optional: colour for --theme dark

  [[class]]
  name = "small anon"
  bits = "anonymous,~thp"       # anonymous set, thp clear
  color = "#E69F00"

  [[class]]
  name = "active file"
  bits = ["=lru,active", "=lru,active,referenced"]   # exactly these flags
  color = "#56B4E9"

  [other]
  color = "#BBBBBB"
"""


DESCRIPTION = ("Print the active class scheme as a table: number, colour, name, the "
                    "page-types bits-spec that selects it. With RUN[@N], also each class's "
                    "size in that frame.")
EPILOG = TOML_HELP


def register(c: argparse.ArgumentParser) -> None:
    c.add_argument("source", nargs="?", metavar="RUN[@N]", help="a recording (and frame)")
    c.add_argument("--classes", metavar="SCHEME", default=None,
                   help="default, flags, folio, or FILE.toml")
    c.add_argument("--ignore-flags", metavar="NAMES", default=None,
                   help="with --classes flags: flags to drop")
    c.add_argument("--theme", choices=THEMES, default="light",
                   help="colours for a light or dark page (default light)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    scheme = make_scheme(args.classes, args.ignore_flags)
    pages = ram = counts = None
    if args.source:
        source, n = open_source(args.source, None, warn)
        if len(source) == 0:
            raise PvrecError(f"{source.name} has no frames")
        pos = parse_position(-1 if n is None else n, source.times, "frame")
        assert pos is not None
        fit_data_scheme(scheme, [(source, pos, pos)])
        runs, header = source.read_runs(pos), source.header
        pages = pages_per_class(ValueClassifier(scheme)(runs.values, runs.lengths), runs.lengths,
                                header.ram_or_all, len(scheme))
        counts = scheme.class_counts()  # folios per size (--classes folio)
        ram, page_size = header.ram_pages, header.page_size
    elif scheme.needs_data:
        say("--classes flags makes one class per flag combination of the data "
              "(most common first); give a recording to see them: pvrec classes RUN "
              "--classes flags")
    table = Table(title=f"page classes: {scheme.name}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("colour")
    table.add_column("class")
    table.add_column("bits-spec")
    if pages is not None:
        table.add_column("MiB", justify="right")
        table.add_column("% RAM", justify="right")
        if counts is not None:
            table.add_column("folios", justify="right")
    table.add_column("what it is")
    for i, c in enumerate(scheme.classes):
        rgb = hex_color(c.color(args.theme))
        row = [str(i), f"[on {rgb}]    [/] {rgb}", c.name, c.rule.replace("[", r"\["),
               ]
        if pages is not None:
            row += [f"{pages[i] * page_size / (1 << 20):,.1f}", f"{100 * pages[i] / ram:.1f}"]
            if counts is not None:
                row.append(f"{counts[i]:,}" if counts[i] >= 0 else "")
        row.append(c.description)
        table.add_row(*row)
    Console(width=max(Console().width, 120)).print(table)  # piped: keep the colour column whole
    return 0
