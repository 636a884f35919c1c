"""--classes folio on the real kpageflags dumps: the folios of each size agree with a page-by-page
walk written here from the definition (a head page and the tail pages after it; whole when a
power of two long and aligned to its length), and `pvrec classes` prints the same counts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pvrec import flags as F
from pvrec.classes import ValueClassifier, make_scheme
from pvrec.runs import encode_flags
from tests.helpers import fixture_names, load_fixture, make_recording, run_pvrec

FIXTURES = fixture_names()
pytestmark = pytest.mark.skipif(not FIXTURES, reason="no real fixtures in ../shared/fixtures")

HEAD, TAIL, HUGE = (np.uint64(F.bit(b)) for b in (F.COMPOUND_HEAD, F.COMPOUND_TAIL, F.HUGE))


def reference(flags: np.ndarray) -> tuple[dict[str, int], dict[str, int]]:
    """({size name: folios}, {size name: pages}) by walking the pages after every head."""
    head = (flags & HEAD) != 0
    tail = (flags & TAIL) != 0
    folios: dict[str, int] = {}
    pages: dict[str, int] = {}
    for h in np.flatnonzero(head).tolist():
        n = 1
        while h + n < flags.size and tail[h + n] and not head[h + n]:
            n += 1
        order = n.bit_length() - 1
        if n & (n - 1) or n == 1 or h % n:
            name = "partial"
        elif flags[h] & HUGE:
            name = {9: "hugetlb 2 MiB", 18: "hugetlb 1 GiB"}.get(order, "partial")
        elif order == 9:
            name = "2 MiB THP (PMD)"
        elif order < 9:
            kib = 4 << order
            name = f"{kib} KiB (order {order})" if kib < 1024 else f"{kib // 1024} MiB (order {order})"
        else:
            name = "partial"
        folios[name] = folios.get(name, 0) + 1
        pages[name] = pages.get(name, 0) + n
    return folios, pages


@pytest.mark.parametrize("fixture", FIXTURES)
def test_folio_counts_agree_with_a_page_by_page_walk(fixture):
    # GIVEN a real frame of the 24 GiB test VM
    flags = load_fixture(fixture)
    want_folios, want_pages = reference(flags)
    # WHEN the folio scheme classifies its runs
    scheme = make_scheme("folio")
    runs = encode_flags(flags)
    cls = ValueClassifier(scheme)(runs.values, runs.lengths)
    pages = np.bincount(cls, weights=runs.lengths, minlength=len(scheme)).astype(np.int64)
    counts = scheme.class_counts()
    # THEN every size has the walk's folios and pages (and the real frames hold THP)
    got_folios = {n: int(c) for n, c in zip(scheme.names, counts, strict=True) if c > 0}
    got_folios.pop("4 KiB (order 0)")
    assert got_folios == want_folios
    sized = {n: int(p) for n, p in zip(scheme.names, pages, strict=True)
             if n in want_pages}
    assert sized == want_pages
    assert want_folios.get("2 MiB THP (PMD)", 0) > 100
    # order-0 pages: in use (not free, not a hole, no flags at all) and in no compound
    plain = ((flags & (HEAD | TAIL)) == 0) & (flags != 0) & \
        ((flags & np.uint64(F.bit(F.BUDDY) | F.bit(F.NOPAGE))) == 0)
    assert pages[scheme.index("4 KiB (order 0)")] == counts[1] == int(plain.sum())


def test_pvrec_classes_prints_the_folios_of_each_size(tmp_path):
    # GIVEN a recording of the real frame that has hugetlb pages and a THP-backed process
    name = "hugetlb-anon700" if "hugetlb-anon700" in FIXTURES else FIXTURES[0]
    flags = load_fixture(name)
    rec = make_recording(tmp_path / "rec", [flags])
    want, _ = reference(flags)
    # WHEN `pvrec classes REC --classes folio` prints the table
    result = run_pvrec("classes", str(rec), "--classes", "folio", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    # THEN each size's row ends in its folio count
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)]
        if len(cells) > 8 and cells[1].isdigit():
            rows[cells[3]] = cells[7]
    for size, n in want.items():
        assert rows[size] == f"{n:,}", size
    assert rows["free"] == ""  # not folios
    # AND the snapshot draws it
    png = tmp_path / "folio.png"
    result = run_pvrec("snapshot", str(rec), "--classes", "folio", "-o", str(png))
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 0
