"""What the commands that read a recording say about a damaged one: one `pvrec: warning:` line
per damaged frame (never Python's warning text), and one `pvrec:` line for a bad header."""

from __future__ import annotations

import json

import pytest

from pvrec.recording.writer import Writer
from tests.conftest import run_pvrec, synthetic_flags
from tests.helpers import pvrec_main


def damaged_recording(tmp_path, damaged: int):
    """4 frames of 3000 pages (a key frame every 2), frame `damaged` overwritten with garbage."""
    path = tmp_path / "rec"
    w = Writer(path, {"pfn_count": 3000}, key_every=2)
    for i in range(4):
        w.add_frame(synthetic_flags(3000, seed=i), float(i))
    w.close({"reason": "test"})
    (path / "frames" / f"{damaged:06d}.npz").write_bytes(b"not a zip")
    return path


@pytest.mark.parametrize("argv", [
    ["metrics", "{rec}"],
    ["export", "{rec}", "-n", "0", "-o", "{tmp}/out.kpf"],
    ["stats", "{rec}@0"],
    ["list", "{rec}@0"],
])
def test_a_damaged_last_frame_is_one_pvrec_warning_line(tmp_path, argv):
    rec = damaged_recording(tmp_path, damaged=3)
    r = run_pvrec(*(a.format(rec=rec, tmp=tmp_path) for a in argv))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("pvrec: wrote")]
    assert lines == [f"pvrec: warning: {rec}: last frame 3 is incomplete (File is not a zip "
                     f"file); skipped"]


def test_a_damaged_middle_frame_met_while_reading_is_one_warning_line(tmp_path):
    rec = damaged_recording(tmp_path, damaged=1)
    r = run_pvrec("metrics", rec, "-m", "free_pages")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"pvrec: warning: {rec}: frame 1 (frames/000001.npz) is damaged (File is not a zip "
        f"file); skipped up to the next key frame"]
    assert [row.split(",")[0] for row in r.stdout.splitlines()[1:]] == ["0", "2", "3"]


@pytest.mark.parametrize("argv", [["metrics"], ["info", "--json"], ["info"], ["stats"]])
def test_a_zone_without_start_pfn_is_one_line_naming_the_key(tmp_path, argv):
    rec = damaged_recording(tmp_path, damaged=3)
    h = json.loads((rec / "header.json").read_text())
    h["zones"] = [{"node": 0, "name": "Normal", "end_pfn": 3000}]
    (rec / "header.json").write_text(json.dumps(h))
    r = run_pvrec(argv[0], rec, *argv[1:])
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"pvrec: {rec}/header.json: zone 0 has no start_pfn\n"


def test_render_tells_a_damaged_frame_once_when_it_meets_it(tmp_path):
    """render_recording hands each warning to its warn callback as the reader finds it (the
    damaged delta frame 1 is met while streaming) and lists them in the summary."""
    from pvrec.render.pipeline import render_recording

    rec = damaged_recording(tmp_path, damaged=1)
    told: list[str] = []
    summary = render_recording(rec, tmp_path / "out.gif", warn=told.append)
    assert told == [f"{rec}: frame 1 (frames/000001.npz) is damaged (File is not a zip file); "
                    f"skipped up to the next key frame"]
    assert summary.warnings == told and summary.rendered == 3


@pytest.mark.parametrize("buddyinfo", [{"0/DMA": ["x", 1]}, ["not", "a", "table"],
                                       {"0/DMA": list(range(60))}, {"0/DMA": [-1, 2]}])
def test_a_malformed_buddyinfo_in_the_index_is_one_warning_not_a_traceback(tmp_path, buddyinfo):
    # GIVEN a recording whose index carries a buddyinfo of the wrong shape
    path = tmp_path / "rec"
    w = Writer(path, {"pfn_count": 3000, "zones": [{"node": 0, "name": "DMA", "start_pfn": 0,
                                                    "end_pfn": 3000}]})
    w.add_frame(synthetic_flags(3000, seed=1), 0.0, {"buddyinfo": buddyinfo})
    w.close({"reason": "test"})
    # WHEN pvrec metrics reads it
    code, out, err = pvrec_main("metrics", path)
    # THEN the value is ignored with one warning line and the CSV has no kernel_ columns
    assert code == 0, err
    assert err.splitlines() == [f"pvrec: warning: {path}: index line 1 has a malformed "
                                f"buddyinfo; ignored"]
    assert "DMA.free_pages" in out and "kernel_" not in out
