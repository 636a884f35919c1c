"""The kernel's events and the workload's markers: parsing tracefs text and pagetypeinfo,
bounding a frame's events, storing them in frame files that older readers still open,
markers over a real socket, the figures they give, and their marks on the map."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pvrec.errors import PvrecError
from pvrec.kernel import pagetypeinfo, tracefs
from pvrec.metrics import check_metric_names, context_metrics
from pvrec.recorder.events import FrameEvents
from pvrec.recorder.markers import MarkerSocket, send_mark
from pvrec.recording.events import COLUMNS, event_arrays, fallback_kind, load_events
from pvrec.recording.format import FrameError, clean_context, load_frame
from pvrec.recording.reader import open_recording
from pvrec.recording.writer import Writer
from pvrec.render.events import (
    DEFAULT_COUNTERS,
    FADE,
    EventOverlay,
    parse_timeline_events,
    scanner_positions,
)
from pvrec.render.palette import Palette
from pvrec.render.raster import MapLayout
from pvrec.sources import RecordingSource
from tests.helpers import HEADER, synthetic_frame

DATA = Path(__file__).resolve().parents[1] / "data" / "events"


def fixture_events() -> list:
    """Every line of the recorded trace_pipe text, parsed."""
    return [tracefs.parse_line(line) for line in (DATA / "trace_pipe.txt").read_bytes()
            .splitlines()]


def test_trace_pipe_text_parses_into_each_events_fields():
    got = fixture_events()
    kinds = [g[0] if isinstance(g, tuple) else g for g in got]
    assert kinds.count("extfrag") == 7 and kinds.count("compaction_begin") == 4
    assert kinds.count("compaction_end") == 2 and kinds.count("isolate_migratepages") == 9
    assert kinds[-2:] == [42, None]  # 'CPU:1 [LOST 42 EVENTS]' counts; '# tracer' is nothing
    first = next(g for g in got if isinstance(g, tuple) and g[0] == "compaction_begin")
    # "243.748141: mm_compaction_begin: zone_start=0x1 migrate_pfn=0x1 free_pfn=0xe00
    #  zone_end=0x1000, mode=sync"
    assert first == ("compaction_begin", 243_748_141_000, (1, 1, 0xE00, 0x1000, 1))
    end = next(g for g in got if isinstance(g, tuple) and g[0] == "compaction_end")
    assert end[2] == (1, 0xE00, 0xE00, 0x1000, 1, tracefs.COMPACT_STATUS["complete"])
    claimed = [g for g in got if isinstance(g, tuple) and g[0] == "extfrag"][4]
    # "pfn=0x1c1cc0 alloc_order=2 fallback_order=8 pageblock_order=9 alloc_migratetype=0
    #  fallback_migratetype=2 fragmenting=1 change_ownership=1"
    assert claimed[2] == (0x1C1CC0, 2, 8, 0, 2, 1, 1)


def test_a_line_of_another_shape_is_not_guessed_at():
    assert tracefs.parse_line(b"bash-1 [001] ..... 1.000001: mm_compaction_begin: garbage") \
        is None
    assert tracefs.parse_line(b"bash-1 [001] ..... 1.000001: sched_switch: prev=a") is None


def test_frame_events_keep_at_most_n_of_each_type_and_count_the_rest():
    fe = FrameEvents(max_per_frame=2)
    for i in range(5):
        fe.add("extfrag", i, (512 * i, 0, 3, 0, 1, 1, i % 2))  # fragmenting; claimed if odd
    fe.add("isolate_freepages", 9, (0, 512, 100, 7))
    context, arrays = fe.result(lost=3)
    ev = context["events"]
    assert ev["extfrag"] == 5 and ev["dropped"] == 3 and ev["lost"] == 3
    assert (ev["extfrag_claimed"], ev["extfrag_polluting"], ev["extfrag_fragmenting"]) == (2, 3, 5)
    assert ev["compaction_scanned"] == 100 and ev["isolate_freepages_taken"] == 7
    assert arrays["events.extfrag"].reshape(-1, len(COLUMNS["extfrag"]))[:, 1].tolist() == \
        [0, 512]
    assert ev["bytes"] == sum(a.nbytes for a in arrays.values())


def test_fallback_kinds():
    kind = fallback_kind(np.array([0, 1, 1]), np.array([1, 1, 0]))
    assert kind.tolist() == [0, 1, 2]  # stolen, claimed, polluting


def test_pagetypeinfo_counts_blocks_and_free_lists_per_zone():
    got = pagetypeinfo.parse((DATA / "pagetypeinfo.txt").read_text())
    assert got["blocks"]["0/Normal"] == {"Unmovable": 162, "Movable": 1847, "Reclaimable": 231,
                                         "HighAtomic": 0, "Isolate": 0}
    assert got["free"]["0/DMA32"]["Movable"] == [2, 2, 3, 1, 2, 2, 1, 4, 4, 2, 752]
    assert clean_context({"pagetypeinfo": got}) == []


def test_unusable_index_of_debugfs():
    got = pagetypeinfo.parse_unusable("Node 0, zone   Normal 0.000 0.010 0.500 1.000\n")
    assert got == {"0/Normal": [0.0, 0.01, 0.5, 1.0]}


def test_context_metrics_read_the_kernels_own_figures():
    ctx = {"pagetypeinfo": {"blocks": {"0/Normal": {"Unmovable": 3, "Movable": 9}}},
           "events": {"extfrag": 4, "extfrag_fragmenting": 2, "compaction_runs": 1,
                      "compaction_scanned": 1024},
           "unusable_index": {"0/Normal": [0.0] * 9 + [0.25, 0.5]}}
    assert context_metrics(ctx, "Normal", 512) == {
        "unmovable_blocks": 3, "movable_blocks": 9, "extfrag_events": 4,
        "extfrag_fragmenting": 2, "compaction_runs": 1, "compaction_scanned": 1024,
        "kernel_unusable_index": 0.25}
    assert context_metrics({}, "Normal") == {}
    check_metric_names(["unmovable_blocks", "extfrag_events"])
    with pytest.raises(PvrecError, match="unknown metric 'blocks'"):
        check_metric_names(["blocks"])


def test_malformed_event_context_is_dropped_by_the_reader():
    ctx = {"events": {"extfrag": "many"}, "markers": [{"t": "x", "text": 3}],
           "pagetypeinfo": {"blocks": {"0/Normal": {"Movable": -1}}}}
    assert sorted(clean_context(ctx)) == ["events", "markers", "pagetypeinfo"]
    assert ctx == {}


# -- the recording

PAGES = 4096


def events_recording(path: Path, rows: dict[str, list[tuple]], frames: int = 3) -> Path:
    """A recording with the given events stored in frame 1 (and none in the others)."""
    header = {**HEADER, "pfn_count": PAGES,
              "events": {"max_per_frame": 10, "columns": {k: list(c) for k, c in COLUMNS.items()}}}
    w = Writer(path, header, durable=False)
    for i in range(frames):
        extra = event_arrays(rows) if i == 1 else {}
        ctx = {"events": FrameEvents(10).result(0)[0]["events"]}
        if i == 1:
            ctx["markers"] = [{"t": 0.5, "text": "phase <2>"}]
        w.add_frame(synthetic_frame(i, PAGES), float(i), ctx, extra=extra)
    w.close({"reason": "test"})
    return path


ROWS = {"extfrag": [(10, 1024 + 7, 0, 3, 0, 1, 1, 0), (11, 2048, 0, 3, 0, 1, 1, 1),
                    (12, 3072, 9, 9, 1, 0, 0, 1)],
        "compaction_begin": [(20, 1, 1, 4000, 4096, 1)],
        "compaction_end": [(30, 1, 2560, 2560, 4096, 1, 5)],
        "isolate_migratepages": [(21, 1, 512, 511, 0), (22, 512, 1024, 512, 3)],
        "isolate_freepages": [(23, 3584, 4096, 300, 20)]}


def test_events_live_in_the_frame_file_and_older_readers_ignore_them(tmp_path):
    rec = open_recording(events_recording(tmp_path / "r", ROWS))
    got = rec.events_of(1)
    assert got["extfrag"].tolist() == [list(r) for r in ROWS["extfrag"]]
    assert set(got) == set(ROWS) and rec.events_of(0) == {}
    # a version-1 reader loads the arrays it names: the frame reads as before
    arrays = load_frame(tmp_path / "r" / "frames" / "000001.npz", PAGES)
    assert "events.extfrag" not in arrays and arrays["lengths"].sum() == PAGES
    assert rec.frames[1].context["markers"] == [{"t": 0.5, "text": "phase <2>"}]


def test_a_damaged_events_array_is_skipped_with_a_warning(tmp_path):
    path = events_recording(tmp_path / "r", ROWS)
    frame = path / "frames" / "000001.npz"
    with zipfile.ZipFile(frame) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["events.extfrag.npy"] = members["events.extfrag.npy"][:-8]  # one value short
    with zipfile.ZipFile(frame, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(FrameError):
        load_events(frame, PAGES)
    rec = open_recording(path)
    assert rec.events_of(1) == {} and "events skipped" in rec.warnings[-1]
    assert len(rec.read_frame(1).flags.lengths)  # the page flags still read


def test_the_writer_refuses_an_extra_array_that_shadows_a_channel(tmp_path):
    w = Writer(tmp_path / "r", {**HEADER, "pfn_count": PAGES}, durable=False)
    with pytest.raises(PvrecError, match="shadow"):
        w.add_frame(synthetic_frame(0, PAGES), 0.0, {}, extra={"lengths": np.zeros(1)})


# -- markers

def test_a_marker_reaches_the_frame_being_recorded(tmp_path):
    sock = MarkerSocket(t0=100.0)
    try:
        send_mark("build starts \x1b[31m\n<b>", str(sock.path))
        assert send_mark("second", str(sock.path)) is False
        assert send_mark("x" * 130, str(sock.path)) is True  # cut: the caller warns
        context, arrays = sock.frame_data(began=1e9)
        assert arrays == {}
        texts = [m["text"] for m in context["markers"]]
        assert texts == ["build starts  [31m <b>", "second", "x" * 120]  # control chars blanked
        assert sock.frame_data(began=1e9) == ({}, {})
    finally:
        sock.close()
    assert not sock.dir.exists()
    with pytest.raises(PvrecError, match="has ended"):
        send_mark("late", str(sock.path))


def test_mark_outside_a_recording_says_so(monkeypatch):
    monkeypatch.delenv("PVREC_MARK", raising=False)
    with pytest.raises(PvrecError, match="not inside a pvrec recording") as exc:
        send_mark("hello")
    assert exc.value.exit_code == 2


# -- rendering

def test_timeline_events_names_are_checked_once():
    assert parse_timeline_events("") == list(DEFAULT_COUNTERS)
    assert parse_timeline_events("compact_stall, oom_kill") == ["compact_stall", "oom_kill"]
    assert parse_timeline_events(None) is None
    with pytest.raises(PvrecError, match="'rss'.*default set is compact_stall"):
        parse_timeline_events("compact_stall,rss")


def test_scanner_positions_of_a_finished_pass_are_where_they_met():
    ev = {k: np.array(v, np.int64) for k, v in ROWS.items()}
    assert scanner_positions(ev, PAGES) == [(2560, 2560)]
    del ev["compaction_end"]  # still running: the furthest ranges isolated
    assert scanner_positions(ev, PAGES) == [(1024, 3584)]


def test_fallbacks_paint_their_page_block_through_the_layout(tmp_path):
    source = RecordingSource(events_recording(tmp_path / "r", ROWS))
    overlay = EventOverlay(source, True, None)
    lay = MapLayout.build(source.header, kind="rows", width=64)  # a row is a page block
    pal = Palette.make(source_scheme(), "light", extra=overlay.colors("light"))
    canvas = np.zeros((lay.height, lay.width), np.uint8)
    overlay.draw_map(canvas, lay, 0, 0, 1, pal)
    stolen, claimed, polluting = (overlay._fallback(pal, k, 0) for k in range(3))
    assert (canvas[16] == polluting).all()  # pfn 1031: its block 1024-1087 is row 16
    assert (canvas[32] == claimed).all()  # pfn 2048
    assert (canvas[48] == stolen).all()  # pfn 3072, a whole block taken
    migrate, free = overlay._scanner(pal, 0), overlay._scanner(pal, 1)
    assert (canvas[40] == free).all() and (canvas[39] == migrate).all()  # met at 2560: row 40
    # isolated by the migrate scanner, PFNs 1-1023: outlined (its top row from pfn 1 on)
    assert (canvas[0, 1:] == migrate).all() and canvas[0, 0] == 0
    assert canvas[8, 0] == migrate and canvas[8, 30] == 0 and canvas[8, 63] == migrate
    # a frame later the fallbacks have faded; FADE frames later they are gone
    canvas[:] = 0
    overlay.draw_map(canvas, lay, 0, 0, 2, pal)
    assert (canvas[16] == overlay._fallback(pal, 2, 1)).all()
    canvas[:] = 0
    overlay.draw_map(canvas, lay, 0, 0, 1 + FADE, pal)
    assert not canvas.any()


def source_scheme():
    from pvrec.classes import default_scheme

    return default_scheme()


def test_a_marker_is_the_headers_latest(tmp_path):
    source = RecordingSource(events_recording(tmp_path / "r", ROWS))
    overlay = EventOverlay(source, False, ["compact_stall"])
    assert overlay.marker_text(0) is None
    assert overlay.marker_text(2) == "mark 1: phase <2>"
    assert json.dumps(overlay.markers) == json.dumps([[0.5, "phase <2>", 1]])
    assert os.path.basename(source.name) == "r"


def test_no_tracefs_or_a_missing_tracepoint_is_one_line(tmp_path):
    if os.geteuid() != 0:
        with pytest.raises(PvrecError, match="--events needs root"):
            tracefs.ensure_mounted(tmp_path / "nope")
    else:
        with pytest.raises(PvrecError, match=r"this kernel has no tracefs \(.*nope does not"):
            tracefs.ensure_mounted(tmp_path / "nope")
    (tmp_path / "events" / "kmem").mkdir(parents=True)
    with pytest.raises(PvrecError, match="no tracepoint kmem:mm_page_alloc_extfrag"):
        tracefs.check_events(tmp_path)


def test_only_the_instances_of_dead_pvrecs_are_stale(tmp_path):
    inst = tmp_path / "instances"
    for name in (f"pvrec-{os.getpid()}", "pvrec-999999999", "someone-else", "pvrec-x"):
        (inst / name).mkdir(parents=True)
    assert tracefs.remove_stale(tmp_path) == ["pvrec-999999999"]
    assert sorted(p.name for p in inst.iterdir()) == [f"pvrec-{os.getpid()}", "pvrec-x",
                                                      "someone-else"]
