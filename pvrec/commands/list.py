"""`pvrec list`: page-types -Nl, the runs of pages with equal flags, from any source."""

from __future__ import annotations

import argparse

from pvrec.commands.stats import SPECS_HELP, add_source_options
from pvrec.commands.stats import run as run
from pvrec.inspect import pagetypes as pt

DESCRIPTION = """\
List the pages as page-types -Nl does: one line per maximal run of PFN-contiguous pages
with equal (filtered) flags, `offset<TAB>len<TAB>flags` in hex. -L lists every page.
Like page-types, a line also ends every 65536 pages of a walked range (its read batch),
so the output is line for line what page-types prints.
"""
EPILOG = SPECS_HELP + """
examples:
  sudo pvrec list                        every run of equal flags in memory now (as root)
  pvrec list run/ -b thp                 where the THP pages of the last frame are
  pvrec list run/@0 -b anonymous,~thp    the non-THP anonymous pages of the first frame
  pvrec list -F dump.kpf -a 0x100000,    from PFN 0x100000 (4 GiB) to the end
  pvrec list run/ -L -a 0+16             the first 16 pages, one line each
"""


def register(p: argparse.ArgumentParser) -> None:
    add_source_options(p)
    p.add_argument("-L", "--list-each", dest="list_mode", action="store_const",
                   const=pt.LIST_EACH, default=pt.LIST_RANGES,
                   help="one line per page (page-types -NL)")
    p.add_argument("-s", "--summary", dest="no_summary", action="store_false",
                   help="also show the summary after the list (page-types -l)")
    p.set_defaults(no_summary=True, describe=[])
