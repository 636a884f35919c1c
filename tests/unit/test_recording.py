"""The recording format: codec round trips, key/delta chains, and a lenient but safe reader."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pvrec.errors import PvrecError
from pvrec.recording.format import FORMAT_VERSION
from pvrec.recording.reader import open_recording
from pvrec.recording.writer import Writer
from pvrec.runs import encode_flags, join_pieces, xor_runs
from tests.conftest import synthetic_flags
from tests.helpers import make_recording

flag_arrays = arrays(np.uint64, st.integers(1, 300),
                     elements=st.sampled_from([0, 1, 0x400, 0x68, 1 << 63, 0x828]))


@given(flag_arrays)
def test_encode_expand_round_trip(flags):
    runs = encode_flags(flags)
    assert np.array_equal(runs.expand(), flags)
    assert runs.pfn_count == flags.size
    assert np.all(runs.values[1:] != runs.values[:-1])


@given(flag_arrays, st.data())
def test_xor_runs_is_pagewise_xor(a, data):
    from pvrec.runs import _xor_merge

    b = data.draw(arrays(np.uint64, a.size, elements=st.sampled_from([0, 2, 0x400, 7])))
    for x in (xor_runs(encode_flags(a), encode_flags(b)),  # runs this dense: page by page
              _xor_merge(encode_flags(a), encode_flags(b))):  # the merge of boundaries
        assert np.array_equal(x.expand(), a ^ b)
        assert np.all(x.values[1:] != x.values[:-1])


@given(st.integers(200, 2000), st.lists(st.tuples(st.integers(0, 1999), st.integers(1, 40),
                                               st.sampled_from([1, 2, 3])), max_size=6),
       st.integers(0, 2**32 - 1))
def test_xor_runs_with_a_sparse_delta_is_pagewise_xor(n, changes, seed):
    """A delta of a few changed ranges over a frame of many runs (the cut-and-flip path, not
    the merge): touching ranges, ranges at either end of memory, values made equal to a
    neighbour."""
    import pvrec.runs

    a = np.random.default_rng(seed).integers(0, 4, n).astype(np.uint64)
    b = np.zeros(n, np.uint64)
    for start, length, v in changes:
        b[min(start, n - 1):start + length] = v
    dense = pvrec.runs._xor_dense
    pvrec.runs._xor_dense = None  # the sparse path only: calling this would fail
    try:
        x = xor_runs(encode_flags(a), encode_flags(b))
    finally:
        pvrec.runs._xor_dense = dense
    assert np.array_equal(x.expand(), a ^ b)
    assert np.all(x.values[1:] != x.values[:-1]) and np.all(x.lengths > 0)


def as_mask(ranges, n):
    m = np.zeros(n, bool)
    for s, e in zip(*ranges, strict=True):
        m[s:e] = True
    return m


page_ranges = st.lists(st.tuples(st.integers(0, 99), st.integers(1, 20)), max_size=8)


def disjoint(rs, n=100):
    """Sorted disjoint ranges of the pages some (start, length) pairs cover."""
    m = np.zeros(n, np.int8)
    for s, ln in rs:
        m[s:s + ln] = 1
    edges = np.flatnonzero(np.diff(np.concatenate(([0], m, [0]))))
    return edges[0::2].astype(np.int64), edges[1::2].astype(np.int64)


@given(page_ranges, page_ranges, st.lists(st.tuples(st.integers(0, 99), st.integers(1, 30)),
                                          max_size=3))
def test_page_range_algebra_is_that_of_page_sets(a, b, keep):
    """nonzero_ranges, union_ranges, clip_ranges, slice_ranges and spans against sets of
    pages."""
    from pvrec.runs import clip_ranges, nonzero_ranges, slice_ranges, spans, union_ranges

    ra, rb = disjoint(a), disjoint(b)
    ma, mb = as_mask(ra, 100), as_mask(rb, 100)
    assert np.array_equal(as_mask(union_ranges(ra, rb), 100), ma | mb)
    k = [(int(s), int(e)) for s, e in zip(*disjoint(keep), strict=True)]
    assert np.array_equal(as_mask(clip_ranges(ra, k), 100), ma & as_mask(
        (np.array([s for s, _ in k], np.int64), np.array([e for _, e in k], np.int64)), 100))
    flags = np.arange(100, dtype=np.uint64) // 7
    ln, values = slice_ranges(encode_flags(flags), *ra)
    assert np.array_equal(np.repeat(values, ln), flags[ma])
    assert np.array_equal(as_mask(nonzero_ranges(encode_flags(ma.astype(np.uint64))), 100), ma)
    assert np.array_equal(spans(ra[0], ra[1] - ra[0]), np.flatnonzero(ma))


@given(flag_arrays, st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_joined_pieces_of_chunks_are_the_encoding_of_the_whole(flags, cuts):
    bounds = np.unique(np.clip(np.cumsum(cuts), 0, flags.size))
    parts = [encode_flags(p) for p in np.split(flags, bounds) if p.size]
    before = [(p.lengths.copy(), p.values.copy()) for p in parts]
    joined = join_pieces(parts)
    whole = encode_flags(flags)
    assert np.array_equal(np.concatenate([p.lengths for p in joined]), whole.lengths)
    assert np.array_equal(np.concatenate([p.values for p in joined]), whole.values)
    # the pieces themselves are left untouched: they may be the frame the writer keeps
    assert all(np.array_equal(p.lengths, a) and np.array_equal(p.values, b)
               for p, (a, b) in zip(parts, before, strict=True))


def write(tmp_path, frames, key_every=3, version=FORMAT_VERSION, **header):
    w = Writer(tmp_path / "rec", {"pfn_count": frames[0].size, **header}, key_every=key_every,
               format_version=version)
    for i, f in enumerate(frames):
        w.add_frame(f, t=i * 0.5, context={"note": i})
    w.close({"reason": "test"})
    return tmp_path / "rec"


def test_writer_reader_round_trip_with_key_and_delta_frames(tmp_path):
    frames = [synthetic_flags(5000, seed=s) for s in (1, 1, 2, 3, 3, 4, 5)]
    path = write(tmp_path, frames)
    rec = open_recording(path)
    assert len(rec) == 7 and rec.complete
    assert [f.kind for f in rec.frames] == ["key", "delta", "delta"] * 2 + ["key"]
    assert [f.t for f in rec.frames] == [i * 0.5 for i in range(7)]
    assert rec.frames[3].context["note"] == 3
    for i in (6, 0, 4, 5, 2, -1):  # random access, in any order
        assert np.array_equal(rec.read(i), frames[i])
    streamed = [flags for _info, flags in rec.iter_frames()]
    assert all(np.array_equal(a, b) for a, b in zip(streamed, frames, strict=True))
    assert [i.index for i, _ in rec.iter_frames(1, 7, 2)] == [1, 3, 5]


def test_unchanged_frame_is_a_tiny_delta(tmp_path):
    f = synthetic_flags(400_000, runs=40_000)
    rec = open_recording(write(tmp_path, [f, f]))
    assert rec.frames[1].context["bytes"] < min(1024, rec.frames[0].context["bytes"] / 20)


@pytest.mark.parametrize(("version", "kinds"), [
    (1, {"meta": "i", "lengths": "u", "palette": "u", "codes": "u"}),
    (2, {"meta": "i", "frame": "u"}),  # every stream packed in one (codec.py)
])
def test_frames_load_with_allow_pickle_false_and_plain_dtypes(tmp_path, version, kinds):
    rec = open_recording(write(tmp_path, [synthetic_flags(3000)], version=version))
    with np.load(rec.path / rec.frames[0].file, allow_pickle=False) as z:
        assert {k: z[k].dtype.kind for k in z.files} == kinds


def test_not_a_recording(tmp_path):
    with pytest.raises(PvrecError, match="not a pvrec recording"):
        open_recording(tmp_path)
    with pytest.raises(PvrecError, match="not a directory"):
        open_recording(tmp_path / "missing")


def test_newer_format_version_says_upgrade(tmp_path):
    path = write(tmp_path, [synthetic_flags(100)])
    header = json.loads((path / "header.json").read_text())
    header["format_version"] = FORMAT_VERSION + 1
    (path / "header.json").write_text(json.dumps(header))
    with pytest.raises(PvrecError, match="upgrade pvrec"):
        open_recording(path)


def test_frame_out_of_range(tmp_path):
    rec = open_recording(write(tmp_path, [synthetic_flags(100)] * 2))
    with pytest.raises(PvrecError, match=r"frame 2 is out of range: .* has 2 frames \(0..1\)"):
        rec.read(2)
    with pytest.raises(PvrecError, match="out of range"):
        rec.read(-3)


def test_cut_index_line_and_missing_last_frame_are_skipped_with_warning(tmp_path):
    frames = [synthetic_flags(2000, seed=s) for s in range(4)]
    path = write(tmp_path, frames)
    index = (path / "frames.jsonl").read_text().splitlines()
    (path / "frames.jsonl").write_text("\n".join(index[:3]) + "\n" + index[3][:20])
    told = []
    rec = open_recording(path, told.append)
    assert len(rec) == 3
    assert len(told) == 1 and "the last index line is cut short" in told[0]
    assert rec.warnings == told
    assert np.array_equal(rec.read(-1), frames[2])


def test_truncated_last_frame_file_is_skipped(tmp_path):
    frames = [synthetic_flags(2000, seed=s) for s in range(3)]
    path = write(tmp_path, frames)
    last = path / "frames" / "000002.npz"
    last.write_bytes(last.read_bytes()[:40])
    rec = open_recording(path)
    assert len(rec) == 2
    assert len(rec.warnings) == 1 and "last frame 2 is incomplete" in rec.warnings[0]


def test_damaged_middle_frame_skips_to_next_key_frame(tmp_path):
    frames = [synthetic_flags(2000, seed=s) for s in range(7)]
    path = write(tmp_path, frames, key_every=3)
    (path / "frames" / "000001.npz").write_bytes(b"garbage")
    told = []
    rec = open_recording(path, told.append)
    got = [(i.index, flags) for i, flags in rec.iter_frames()]
    assert [i for i, _ in got] == [0, 3, 4, 5, 6]
    assert len(told) == 1 and "frame 1 (frames/000001.npz) is damaged" in told[0]
    assert all(np.array_equal(f, frames[i]) for i, f in got)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "frames/../../x.npz",
                                  "frames/1.npz.tmp", 7])
def test_frame_names_escaping_the_recording_are_refused(tmp_path, name):
    path = write(tmp_path, [synthetic_flags(100)] * 2)
    lines = (path / "frames.jsonl").read_text().splitlines()
    bad = json.loads(lines[1])
    bad["file"] = name
    (path / "frames.jsonl").write_text(lines[0] + "\n" + json.dumps(bad) + "\n")
    rec = open_recording(path)
    assert len(rec) == 1
    assert len(rec.warnings) == 1 and "frame skipped" in rec.warnings[0]


def test_symlinked_frame_file_is_refused(tmp_path):
    path = write(tmp_path, [synthetic_flags(100)] * 2, key_every=1)
    target = path / "frames" / "000001.npz"
    outside = tmp_path / "outside.npz"
    target.rename(outside)
    target.symlink_to(outside)
    rec = open_recording(path)
    assert len(rec) == 1
    assert len(rec.warnings) == 1 and "frames/000001.npz is missing" in rec.warnings[0]


def _replace_frame(path, arrays_by_name, raw_members=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, arr in arrays_by_name.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, arr, allow_pickle=True)
            zf.writestr(name + ".npy", b.getvalue())
        for name, data in (raw_members or {}).items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("case", ["object", "float", "2d", "bad_sum", "code_range", "bomb"])
def test_hostile_frame_files_are_refused_not_trusted(tmp_path, case):
    # version 1's arrays (version 2's streams: test_codec_fuzz.py)
    path = write(tmp_path, [synthetic_flags(1000)], key_every=1, version=1)
    frame = path / "frames" / "000000.npz"
    good = dict(np.load(frame, allow_pickle=False))
    if case == "object":
        good["codes"] = np.array([{"x": 1}], dtype=object)
    elif case == "float":
        good["lengths"] = good["lengths"].astype(np.float64)
    elif case == "2d":
        good["palette"] = good["palette"].reshape(1, -1)
    elif case == "bad_sum":
        good["lengths"] = good["lengths"].copy()
        good["lengths"][0] += 1
    elif case == "code_range":
        good["codes"] = np.full_like(good["codes"], 250)
    raw = {}
    if case == "bomb":  # declares (and inflates to) far more than 1000 pages could need
        del good["codes"]
        raw = {"codes.npy": b"\0" * (64 << 20)}
    _replace_frame(frame, good, raw)
    rec = open_recording(path)
    assert len(rec) == 0 and len(rec.warnings) == 1


def test_writer_refuses_non_empty_directory_unless_force(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "notes.txt").write_text("mine")
    with pytest.raises(PvrecError, match="not empty"):
        Writer(tmp_path / "rec", {"pfn_count": 10})
    with pytest.raises(PvrecError, match="does not hold a pvrec recording; choose another -o"):
        Writer(tmp_path / "rec", {"pfn_count": 10}, force=True)
    (tmp_path / "other").mkdir()
    path = write(tmp_path / "other", [synthetic_flags(100)] * 3)
    w = Writer(path, {"pfn_count": 50}, force=True)
    w.add_frame(np.zeros(50, np.uint64), 0.0)
    w.close({})
    assert len(open_recording(path)) == 1


def test_output_path_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(PvrecError, match="exists and is not a directory"):
        Writer(tmp_path / "f", {"pfn_count": 10})


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.integers(1, 4))
def test_any_chain_of_frames_reads_back(tmp_path_factory, seeds, key_every):
    tmp = tmp_path_factory.mktemp("chain")
    frames = [synthetic_flags(700, seed=s, runs=20) for s in seeds]
    rec = open_recording(write(tmp, frames, key_every=key_every))
    for i in reversed(range(len(frames))):
        assert np.array_equal(rec.read(i), frames[i])


def test_cgroup_channel_and_workload_pages_round_trip(tmp_path):
    flags = [synthetic_flags(4000, seed=s) for s in range(4)]
    cgroups = [np.repeat(np.array([0, 17, 4242, 17], np.uint64), 1000)]
    cgroups += [np.roll(cgroups[0], 7 * s) for s in range(1, 4)]
    pfns = [np.array([], np.int64), np.array([5, 6, 7, 3999]), np.arange(100, 900, 3),
            np.array([0])]
    w = Writer(tmp_path / "rec", {"pfn_count": 4000}, key_every=3,
               channels=("flags", "cgroup", "workload"))
    for i in range(4):
        w.add_frame(flags[i], i, cgroup=cgroups[i], workload=pfns[i])
    w.close({})
    rec = open_recording(tmp_path / "rec")
    assert rec.channels == ("flags", "cgroup", "workload")
    for i in (3, 1, 0, 2):
        frame = rec.read_frame(i)
        assert np.array_equal(frame.flags.expand(), flags[i])
        assert np.array_equal(frame.cgroup.expand(), cgroups[i])
        assert np.array_equal(np.flatnonzero(frame.workload.expand()), pfns[i])
    with pytest.raises(PvrecError, match="stores cgroup: every frame needs it"):
        Writer(tmp_path / "r2", {"pfn_count": 10}, channels=("flags", "cgroup")).add_frame(
            np.zeros(10, np.uint64), 0)


@given(st.sets(st.integers(0, 199)))
def test_pfns_to_runs(pfns):
    from pvrec.runs import pfns_to_runs

    runs = pfns_to_runs(np.array(sorted(pfns), dtype=np.int64), 200)
    expected = np.zeros(200, np.uint64)
    expected[list(pfns)] = 1
    assert np.array_equal(runs.expand(), expected)
    assert np.all(runs.values[1:] != runs.values[:-1])


@given(st.lists(st.tuples(st.integers(0, 1999), st.integers(1, 40), st.sampled_from([1, 4, 0x400])),
                max_size=12), st.integers(0, 3))
def test_sparse_xor_matches_pagewise_xor(changes, seed):
    a = synthetic_flags(2000, seed=seed, runs=300)
    b = np.zeros(2000, np.uint64)
    for start, n, x in changes:
        b[start:start + n] ^= np.uint64(x)
    for x, y in ((a, b), (b, a)):
        out = xor_runs(encode_flags(x), encode_flags(y))
        assert np.array_equal(out.expand(), a ^ b)
        assert np.all(out.values[1:] != out.values[:-1])


def test_values_at_pfns_follow_every_frame_without_decoding_it(tmp_path):
    # GIVEN a recording of key and delta frames (3% of the pages change a frame)
    rec = open_recording(make_recording(tmp_path / "r", 9, key_every=4))
    pfns = np.array([0, 1, 517, 2047, rec.pfn_count - 1], dtype=np.int64)
    # THEN the flags it gives at those PFNs are the decoded frames', frame for frame
    got = list(rec.values_at(pfns))
    assert [pos for pos, _ in got] == list(range(9))
    for pos, values in got:
        assert values.tolist() == rec.read(pos)[pfns].tolist(), pos
    assert [pos for pos, _ in rec.values_at(pfns, 3)] == [0, 1, 2]
