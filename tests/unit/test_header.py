"""header.json read once into a Header: defaults, the key named in every refusal, the
compatibility rule (a reader of version N reads 1..N, frames checked against their header's
version, an unknown channel skipped with one warning), and PvrecError's errno."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

import pvrec.recording.format as fmt
from pvrec.errors import PvrecError
from pvrec.kernel.kpageflags import read_kpageflags
from pvrec.recording.header import Header, Node, Zone
from pvrec.recording.reader import open_recording
from pvrec.recording.writer import Writer
from tests.conftest import synthetic_flags

ZONE = {"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": 100, "present": 90}


def recording(tmp_path, frames: int = 2, version: int = fmt.FORMAT_VERSION, **header):
    path = tmp_path / f"rec{'' if version == fmt.FORMAT_VERSION else version}"
    w = Writer(path, {"pfn_count": 100, **header}, key_every=2, format_version=version)
    for i in range(frames):
        w.add_frame(synthetic_flags(100, seed=i), float(i))
    w.close({"reason": "test"})
    return path


def edit_header(path, **changes):
    h = json.loads((path / "header.json").read_text())
    h.update(changes)
    (path / "header.json").write_text(json.dumps(h))


def test_absent_and_null_keys_take_their_defaults():
    h = Header.from_dict({"pfn_count": 100, "hostname": None, "page_size": 16384})
    assert (h.page_size, h.hpage_pages, h.ram_ranges, h.zones, h.command, h.channels) == \
        (16384, 128, [], [], [], ("flags",))
    assert h.hostname is None and h.interval is None and h.cgroup_names == {}
    assert h.ram_pages == 100 and h.ram_or_all == [[0, 100]]  # [] = unknown: all RAM


def test_typed_entries_and_a_round_trip_through_to_dict():
    raw = {"pfn_count": 4096, "ram_ranges": [[2048, 5000], [0, 1024], [1000, 1100]],
           "zones": [ZONE], "nodes": [{"node": 0, "ranges": [[0, 4096]]}],
           "cgroup_names": {"17": "/system.slice"}, "interval": 1, "newer_key": [1]}
    h = Header.from_dict(raw)
    assert h.ram_ranges == [[0, 1100], [2048, 4096]]  # clipped to pfn_count, merged
    assert h.ram_pages == 1100 + 2048
    assert h.zones == [Zone(0, "Normal", 0, 100, 90)] and h.nodes == [Node(0, [[0, 4096]])]
    assert h.cgroup_names == {17: "/system.slice"} and h.interval == 1
    d = h.to_dict()
    assert list(d)[:4] == ["format", "format_version", "pvrec_version", "pfn_count"]
    assert d["zones"] == [ZONE] and d["cgroup_names"] == {"17": "/system.slice"}
    assert d["newer_key"] == [1]  # kept, not used
    assert Header.parse(json.loads(json.dumps(d))) == h


def test_malformed_range_entries_are_left_out_as_the_renderer_always_did():
    h = Header.from_dict({"pfn_count": 100, "ram_ranges": [[0, 50], "junk", [60, 1000],
                                                           [True, 3], [70, 70]]})
    assert h.ram_ranges == [[0, 50], [60, 100]]


@pytest.mark.parametrize(("change", "message"), [
    ({"zones": [ZONE, {**ZONE, "name": "DMA"}, {"node": 0, "name": "X", "end_pfn": 9}]},
     "header.json: zone 2 has no start_pfn"),
    ({"zones": [{**ZONE, "end_pfn": "9"}]}, "header.json: zone 0 end_pfn must be a whole number"),
    ({"zones": [{**ZONE, "start_pfn": 50, "end_pfn": 10}]}, "header.json: zone 0 ends"),
    ({"zones": ["DMA"]}, "header.json: zone 0 is not an object"),
    ({"zones": {"Normal": 1}}, "header.json: zones must be a list"),
    ({"nodes": [{"ranges": []}]}, "header.json: node 0 has no node number"),
    ({"ram_ranges": "0-100"}, "header.json: ram_ranges must be a list"),
    ({"page_size": 0}, "header.json: page_size must be a whole number from 1 to 1073741824"),
    ({"hpage_pages": 2**70}, "header.json: hpage_pages must be a whole number from 1 to"),
    ({"hpage_pages": 2.5}, "header.json: hpage_pages must be a whole number"),
    ({"interval": float("nan")}, "header.json: interval must be a number"),
    ({"command": "make -j8"}, "header.json: command must be a list of strings"),
    ({"command": ["x" * 500, 1]}, "command must be a list of strings, not ['xxxxx"),
    ({"hostname": 7}, "header.json: hostname must be a string"),
    ({"cgroup_names": {"root": "/"}}, "header.json: cgroup_names entry 'root'"),
    ({"pfn_count": "100"}, "header.json: pfn_count is missing"),
    ({"pfn_count": 1 << 40}, "header has an impossible page count"),
    ({"format_version": 0}, "header.json: unknown format version 0"),
    ({"channels": ["cgroup", "flags"]}, "header lists unknown channels"),
])
def test_a_bad_value_is_one_line_naming_the_key(tmp_path, change, message):
    path = recording(tmp_path)
    edit_header(path, **change)
    with pytest.raises(PvrecError) as e:
        open_recording(path)
    assert message in str(e.value) and "\n" not in str(e.value) and e.value.exit_code == 2
    assert len(str(e.value)) < 200 + len(str(path))


def test_a_reader_of_the_current_version_reads_version_1_frames(tmp_path):
    """A version-1 recording reads as it always did: frames are checked against their header's
    version, not the reader's, and decode to the same flags as the same frames in the current
    version."""
    old, new = recording(tmp_path, frames=3, version=1), recording(tmp_path, frames=3)
    rec, rec2 = open_recording(old), open_recording(new)
    assert (rec.header.format_version, rec2.header.format_version) == (1, fmt.FORMAT_VERSION)
    assert len(rec) == 3 and rec.warnings == []
    assert [np.load(old / f"frames/00000{i}.npz", allow_pickle=False)["meta"][0] for i in range(3)] == [1, 1, 1]
    assert all(np.array_equal(rec.read(i), rec2.read(i)) for i in range(3))
    assert all(np.array_equal(rec.read(i), synthetic_flags(100, seed=i)) for i in range(3))


def test_a_frame_of_another_version_than_its_header_is_damaged(tmp_path):
    path = recording(tmp_path, frames=2, version=1)
    edit_header(path, format_version=2)
    rec = open_recording(path)
    assert len(rec) == 0
    assert rec.warnings == [f"{path}: the last 2 frames (0..1) are unreadable (frame is format "
                            f"version 1, its header says 2); skipped"]


def test_a_newer_version_says_upgrade(tmp_path):
    path = recording(tmp_path)
    edit_header(path, format_version=fmt.FORMAT_VERSION + 1)
    with pytest.raises(PvrecError, match=rf"is recording format version {fmt.FORMAT_VERSION + 1}; "
                                         rf"this pvrec .* reads up to version "
                                         rf"{fmt.FORMAT_VERSION}: upgrade pvrec"):
        open_recording(path)


def test_an_unknown_optional_channel_is_skipped_with_one_warning(tmp_path):
    path = recording(tmp_path, frames=2)
    edit_header(path, channels=["flags", "numa_distance"])
    told = []
    rec = open_recording(path, told.append)
    assert told == [f"{path}: channel 'numa_distance' is newer than this pvrec; skipped"]
    assert rec.channels == ("flags",) and len(rec) == 2 and rec.read(1).size == 100


def test_frames_still_validate_the_channels_they_are_read_for(tmp_path):
    """The header says cgroup, the frames have none: every frame is refused, not guessed."""
    path = recording(tmp_path, frames=2)
    edit_header(path, channels=["flags", "cgroup"])
    rec = open_recording(path)
    assert len(rec) == 0 and "missing array 'cgroup.lengths'" in rec.warnings[0]


def test_the_writer_refuses_a_header_every_reader_would_refuse(tmp_path):
    with pytest.raises(PvrecError, match="header: zone 0 has no end_pfn"):
        Writer(tmp_path / "rec", {"pfn_count": 10, "zones": [{"name": "N", "start_pfn": 0}]})
    assert not (tmp_path / "rec").exists()


def test_the_written_header_is_the_normalized_one(tmp_path):
    path = recording(tmp_path, zones=[{"node": 0, "name": "N", "start_pfn": 0, "end_pfn": 100}])
    written = json.loads((path / "header.json").read_text())
    assert written == open_recording(path).header.to_dict()
    assert written["zones"][0]["present"] == 0 and written["channels"] == ["flags"]


def test_pvrec_error_carries_the_errno(tmp_path):
    assert PvrecError("x").errno is None
    with pytest.raises(PvrecError) as e:
        read_kpageflags(str(tmp_path / "missing.kpf"))
    assert e.value.errno == errno.ENOENT
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "header.json").mkdir()
    with pytest.raises(PvrecError, match="unreadable header") as e:
        open_recording(tmp_path / "rec")
    assert e.value.errno == errno.EISDIR
