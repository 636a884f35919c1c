"""`pvrec info` counts page classes without the render half: the same figures as the renderer's
MapLayout counts, holes left out."""

from __future__ import annotations

import numpy as np
import pytest

from pvrec.layout import pages_per_class
from pvrec.recording.header import Header
from pvrec.render.raster import MapLayout


@pytest.mark.parametrize("ram", [[], [[0, 4000]], [[3, 100], [900, 1500], [2048, 10000]]])
def test_pages_per_class_in_ram_are_the_renderers(ram):
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 60, 300)
    pfn_count = int(lengths.sum())
    classes = rng.integers(1, 9, lengths.size).astype(np.uint8)  # 0 is HOLE
    header = Header.from_dict({"pfn_count": pfn_count, "ram_ranges": ram})
    lay = MapLayout.build(header)
    want = lay.class_pages(lay.class_runs(classes, lengths), 12)
    got = pages_per_class(classes, lengths, header.ram_or_all, 12)
    assert got[1:].tolist() == want[1:].tolist()
    assert int(got.sum()) == header.ram_pages == lay.ram_pages
