"""Parsing the machine's layout (/proc/iomem, zoneinfo, /sys nodes) and per-frame context."""

from __future__ import annotations

import pytest

from pvrec.errors import PvrecError
from pvrec.kernel.layout import live_layout, nodes
from pvrec.kernel.procstat import buddyinfo, hugepages, vmstat
from pvrec.layout import intersect, max_pfn, ram_ranges, zones
from pvrec.units import format_bytes, format_duration, parse_duration

IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000a0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-bfffffff : System RAM
  01000000-01ffffff : Kernel code
100000000-63fffffff : System RAM
"""

ZONEINFO = """\
Node 0, zone      DMA
  pages free     3
        spanned  4095
        present  3998
        managed  3840
  start_pfn:           1
Node 0, zone    DMA32
  pages free     1
        spanned  1044480
        present  782336
  start_pfn:           4096
Node 0, zone   Movable
  pages free     0
        spanned  0
        present  0
  start_pfn:           0
"""


def test_ram_ranges_as_root_and_hidden():
    assert ram_ranges(IOMEM) == [[1, 0x9F], [0x100, 0xC0000], [0x100000, 0x640000]]
    hidden = IOMEM.replace("00001000-0009fbff", "00000000-00000000")
    assert ram_ranges(hidden) == []


def test_zones_skip_empty_ones():
    assert zones(ZONEINFO) == [
        {"node": 0, "name": "DMA", "start_pfn": 1, "end_pfn": 4096, "present": 3998},
        {"node": 0, "name": "DMA32", "start_pfn": 4096, "end_pfn": 1048576, "present": 782336},
    ]


def test_nodes_from_memory_blocks(tmp_path):
    (tmp_path / "devices/system/memory").mkdir(parents=True)
    (tmp_path / "devices/system/memory/block_size_bytes").write_text("8000000\n")
    for node, blocks in ((0, (0, 1, 2)), (1, (4, 5))):
        d = tmp_path / f"devices/system/node/node{node}"
        d.mkdir(parents=True)
        for b in blocks:
            (d / f"memory{b}").mkdir()
    assert nodes(tmp_path) == [{"node": 0, "ranges": [[0, 98304]]},
                               {"node": 1, "ranges": [[131072, 196608]]}]


def test_intersect_and_max_pfn():
    assert intersect([[0, 10], [20, 30]], [[5, 25]]) == [[5, 10], [20, 25]]
    assert max_pfn({"ram_ranges": [[0, 10]], "zones": [{"end_pfn": 12}]}) == 12


def test_live_layout_reads_this_machine():
    layout = live_layout()
    assert layout["page_size"] > 0 and layout["hpage_pages"] >= 1
    assert layout["layout_source"] == "live"


def test_buddyinfo_vmstat_meminfo():
    b = buddyinfo("Node 0, zone      DMA      0      1      2\n"
                  "Node 1, zone   Normal    157     52\n")
    assert b == {"0/DMA": [0, 1, 2], "1/Normal": [157, 52]}
    v = vmstat("nr_free_pages 100\nthp_fault_alloc 3\nnr_zone_inactive_anon 1\ncompact_stall 2\n")
    assert v == {"nr_free_pages": 100, "thp_fault_alloc": 3, "compact_stall": 2}
    m = hugepages("MemTotal: 1 kB\nAnonHugePages:  2048 kB\nHugePages_Total:      4\n")
    assert m == {"AnonHugePages": 2048, "HugePages_Total": 4}


@pytest.mark.parametrize("text, seconds", [("250ms", 0.25), ("1s", 1), ("1.5s", 1.5),
                                           ("2m", 120), ("0.5", 0.5), ("1h", 3600)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "-1s", "1x", "", "s", "nan", "inf"])
def test_parse_duration_rejects(text):
    with pytest.raises(PvrecError):
        parse_duration(text, "--interval")


def test_formatting():
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(10) == "10 B"
    assert format_duration(4.25) == "4.2s" and format_duration(75.3) == "1m15.3s"
    assert format_duration(3725) == "1h02m05s"


def test_hidden_iomem_takes_ram_from_the_memory_blocks_or_else_every_pfn():
    from pvrec.kernel.layout import with_known_ram

    # GIVEN a layout whose /proc/iomem was hidden (no CAP_SYS_ADMIN) but whose nodes are known
    hidden = {"ram_ranges": [], "nodes": [{"node": 0, "ranges": [[8, 16], [0, 8], [32, 40]]}],
              "layout_source": "live"}
    # THEN RAM is the merged memory blocks, and the header says where it came from
    got = with_known_ram(hidden, 64)
    assert got["ram_ranges"] == [[0, 16], [32, 40]]
    assert got["layout_source"] == "live, RAM from memory blocks"
    # and with no nodes either, every PFN counts as RAM
    bare = with_known_ram({**hidden, "nodes": []}, 64)
    assert bare["ram_ranges"] == [[0, 64]] and bare["layout_source"] == "live, RAM ranges unknown"
    # a layout that knows its RAM is left as it is
    known = {**hidden, "ram_ranges": [[1, 2]]}
    assert with_known_ram(known, 64) is known
