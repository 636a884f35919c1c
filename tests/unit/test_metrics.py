"""Fragmentation metrics from flags: exact on hand-made frames, and agreeing with the kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvrec import flags as kpf
from pvrec.errors import PvrecError
from pvrec.metrics import (
    buddy_blocks,
    check_metric_names,
    frame_metrics,
    free_intervals,
    kernel_figures,
)
from pvrec.recording.header import Header
from pvrec.runs import encode_flags
from tests.conftest import needs_kpageflags, run_pvrec

BUDDY = 1 << kpf.BUDDY
LRU_ANON = (1 << kpf.LRU) | (1 << kpf.ANON)
SLAB = 1 << kpf.SLAB


def reference_buddy(s: int, e: int, max_order: int = 10) -> list[int]:
    """Page by page: at each start the largest aligned block that fits (the allocator's view)."""
    counts = [0] * (max_order + 1)
    while s < e:
        order = max_order
        while order and (s % (1 << order) or s + (1 << order) > e):
            order -= 1
        counts[order] += 1
        s += 1 << order
    return counts


@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 3000)), max_size=6))
def test_buddy_decomposition_is_aligned_power_of_two_blocks(spans):
    s = np.array([a for a, _ in spans], dtype=np.int64)
    e = np.array([a + n for a, n in spans], dtype=np.int64)
    expected = np.zeros(11, dtype=np.int64)
    for a, b in zip(s, e, strict=True):
        expected += reference_buddy(int(a), int(b))
    assert buddy_blocks(s, e).tolist() == expected.tolist()


def test_frame_metrics_exact_on_a_hand_made_frame():
    hp = 8  # tiny huge pages keep the example readable
    flags = np.zeros(64, np.uint64)
    flags[0:8] = BUDDY  # block 0 free
    flags[8:12] = BUDDY  # block 1 half free, half anon: movable only
    flags[12:16] = LRU_ANON
    flags[16:18] = LRU_ANON  # block 2 mixes anon and slab
    flags[18:20] = SLAB
    flags[20:24] = BUDDY
    flags[24:48] = BUDDY  # blocks 3, 4, 5 free
    flags[48:56] = 0  # block 6: kernel pages with no flag (unmovable)
    flags[56:64] = LRU_ANON
    header = Header.from_dict({"pfn_count": 64, "hpage_pages": hp})
    m = frame_metrics(encode_flags(flags), header)["all"]
    assert m["free_pages"] == 8 + 4 + 28
    assert m["free_hp_blocks"] == 4
    assert m["largest_free_run"] == 28  # 20..47
    assert m["unusable_index"] == pytest.approx(1 - 32 / 40)
    assert m["mixed_blocks"] == pytest.approx(1 / 4)  # of the used blocks 1, 2, 6, 7


def test_zones_split_the_metrics_and_holes_do_not_count():
    flags = np.full(4096, BUDDY, np.uint64)
    header = Header.from_dict({
        "pfn_count": 4096, "hpage_pages": 512, "ram_ranges": [[0, 1024], [2048, 4096]],
        "zones": [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": 2048},
                  {"node": 0, "name": "Normal", "start_pfn": 2048, "end_pfn": 4096}]})
    m = frame_metrics(encode_flags(flags), header)
    assert m["DMA32"]["free_pages"] == 1024 and m["DMA32"]["free_hp_blocks"] == 2
    assert m["Normal"]["free_pages"] == 2048 and m["Normal"]["buddy_order_10"] == 2


def test_free_intervals_merge_runs_of_different_free_flags():
    flags = np.array([0, BUDDY, BUDDY | 1, BUDDY, 0, BUDDY], np.uint64)
    s, e = free_intervals(encode_flags(flags))
    assert s.tolist() == [1, 5] and e.tolist() == [4, 6]


def test_kernel_figures_from_buddyinfo():
    ctx = {"buddyinfo": {"0/Normal": [3, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1]}}
    assert kernel_figures(ctx, "Normal") == {"kernel_free_pages": 3 + 2 * 512 + 1024,
                                             "kernel_free_hp_blocks": 4}
    assert kernel_figures({}, "Normal") == {}


def test_unknown_metric_is_refused():
    with pytest.raises(PvrecError, match="unknown metric 'bogus'; valid metrics: free_pages"):
        check_metric_names(["free_pages", "bogus"])


def test_metrics_command_on_a_fixture_recording(fixture_dumps, tmp_path):
    r = run_pvrec("record", "-q", "--kpageflags", fixture_dumps["after-kbuild"],
                  "--duration", "0.2s", "--interval", "100ms", "-o", tmp_path / "rec")
    assert r.returncode == 0, r.stderr
    r = run_pvrec("metrics", tmp_path / "rec", "-m", "free_pages", "-m", "free_hp_blocks")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "frame,t,all.free_pages,all.free_hp_blocks"
    flags = np.fromfile(fixture_dumps["after-kbuild"], dtype="<u8")
    free = int(((flags & np.uint64(BUDDY)) != 0).sum())
    assert lines[1].split(",")[2] == str(free)
    r = run_pvrec("metrics", tmp_path / "rec", "--zone", "Normal")
    assert r.returncode == 2 and "no zone 'Normal'" in r.stderr


@needs_kpageflags
def test_free_blocks_agree_with_the_kernels_buddyinfo(tmp_path):
    """buddyinfo is read right after the flags; on a busy machine pages move in between, so
    every frame must be close and the calmest one very close (measured during a kernel
    build: 0.35% median, 1.9% p99, 3.9% worst; exact when the machine is idle)."""
    r = run_pvrec("record", "-q", "--duration", "3s", "-o", tmp_path / "rec")
    assert r.returncode == 0, r.stderr
    r = run_pvrec("metrics", tmp_path / "rec", "-m", "free_pages", "-m", "free_hp_blocks")
    rows = [dict(zip(r.stdout.splitlines()[0].split(","), line.split(","), strict=True))
            for line in r.stdout.splitlines()[1:]]
    zones = [k.split(".")[0] for k in rows[0] if k.endswith(".free_pages")]
    for zone in zones:
        diffs, hp_diffs = [], []
        for row in rows:
            ours, kernel = int(row[f"{zone}.free_pages"]), int(row[f"{zone}.kernel_free_pages"])
            diffs.append(abs(ours - kernel) / max(kernel, 1))
            hp_diffs.append(abs(int(row[f"{zone}.free_hp_blocks"])
                                - int(row[f"{zone}.kernel_free_hp_blocks"])))
        # another process allocating in the ~0.6 s between the two reads moves one frame far
        # (17% seen beside other test suites): the median frame is close, the calmest closer
        assert sorted(diffs)[len(diffs) // 2] <= 0.10, (zone, diffs)
        assert min(diffs) <= 0.01, (zone, diffs)
        assert min(hp_diffs) <= 2, (zone, hp_diffs)


def buddy_recording(path, orders: int | None):
    """2 free frames of 8192 pages; with `orders` orders of /proc/buddyinfo in each context."""
    from pvrec.recording.writer import Writer

    w = Writer(path, {"pfn_count": 8192, "hpage_pages": 512})
    for i in range(2):
        ctx = {"buddyinfo": {"0/Normal": [0] * (orders - 1) + [1]}} if orders else {}
        w.add_frame(np.full(8192, BUDDY, np.uint64), float(i), ctx)
    w.close({"reason": "test"})
    return path


def test_buddy_orders_follow_the_recordings_buddyinfo(tmp_path, capsys):
    """A kernel with orders 0..12 (buddyinfo of 13 counts): 13 buddy_order_N columns, and
    buddy_order_12 is a metric; one without buddyinfo (a dump) keeps orders 0..10."""
    from pvrec.cli import main

    assert main(["metrics", str(buddy_recording(tmp_path / "a", 13))]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert [c for c in header if "buddy_order" in c] == [f"all.buddy_order_{i}"
                                                         for i in range(13)]
    assert main(["metrics", str(tmp_path / "a"), "-m", "buddy_order_12"]) == 0
    assert capsys.readouterr().out.splitlines() == ["frame,t,all.buddy_order_12",
                                                    "0,0.0,2", "1,1.0,2"]  # 8192 = 2 x 4096
    assert main(["metrics", str(buddy_recording(tmp_path / "b", None)), "-m",
                 "buddy_order_11"]) == 2
    assert capsys.readouterr().err == ("pvrec: unknown metric 'buddy_order_11'; valid metrics: "
                                       "free_pages, free_hp_blocks, unusable_index, "
                                       "largest_free_run, mixed_blocks, compactable_hp_blocks, "
                                       "unmovable_blocks, movable_blocks, reclaimable_blocks, "
                                       "highatomic_blocks, cma_blocks, isolate_blocks, "
                                       "extfrag_events, extfrag_fragmenting, compaction_runs, "
                                       "compaction_scanned, kernel_unusable_index, "
                                       "buddy_order_0..10\n")


# -- the kernel's figures a recording may not hold


def test_a_kernel_metric_no_frame_holds_is_one_line_saying_what_records_it():
    from pvrec.metrics import check_recorded

    plain = [{"buddyinfo": {}}, {}]
    for name, says in (("unmovable_blocks", "/proc/pagetypeinfo"),
                       ("compaction_runs", "pvrec record --events"),
                       ("kernel_unusable_index", "debugfs")):
        with pytest.raises(PvrecError) as e:
            check_recorded(["free_hp_blocks", name], plain, "rec")
        assert str(e.value).startswith(f"{name} is not in rec: ") and says in str(e.value)
    with_them = plain + [{"pagetypeinfo": {"blocks": {"0/Normal": {"Unmovable": 3}}},
                          "events": {"compaction_runs": 2}}]
    check_recorded(["unmovable_blocks", "compaction_runs", "free_pages"], with_them)


def test_metric_values_take_pvrecs_figures_then_the_frames_own_and_nan_where_none():
    from pvrec.metrics import metric_values

    figures = {"Normal": {"free_hp_blocks": 7}}
    context = {"pagetypeinfo": {"blocks": {"0/Normal": {"Unmovable": 3}}}}
    got = metric_values(figures, context, [("free_hp_blocks", "Normal"),
                                           ("unmovable_blocks", "Normal"),
                                           ("compaction_runs", "Normal")])
    assert got[:2] == [7.0, 3.0] and np.isnan(got[2])
