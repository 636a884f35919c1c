"""Format versions 2 and 3's frame encoding (pvrec/recording/codec.py): varints, the key and
delta streams, and versions 1, 2 and 3 of the same frames decoding to the same pages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvrec.recording.codec import CODECS, CodecError, unpack, varint_decode, varint_encode
from pvrec.recording.format import FORMAT_VERSION, FrameError, load_frame
from pvrec.recording.reader import open_recording
from pvrec.recording.writer import Writer
from pvrec.runs import CHUNK_PAGES
from tests.conftest import synthetic_flags


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(0, 2**63 - 1), max_size=300))
def test_varints_round_trip(values):
    data = varint_encode(np.array(values, dtype=np.uint64))
    assert data.dtype == np.uint8
    assert varint_decode(data, 2**63 - 1).tolist() == values


def test_a_varint_is_one_byte_below_128_and_seven_bits_a_byte_above():
    assert varint_encode(np.array([0, 127, 128, 300, 2**21])).tolist() == [
        0, 127, 0x80, 1, 0xAC, 2, 0x80, 0x80, 0x80, 1]


@pytest.mark.parametrize(("data", "limit", "message"), [
    ([0x80], 10, "varint stream is cut short"),
    ([5, 0x81], 10, "varint stream is cut short"),
    ([0xFF] * 9 + [1], 2**63, "varint longer than 9 bytes"),
    ([11], 10, "varint value out of range"),
    ([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7F], 2**40, "varint value out of range"),
])
def test_a_damaged_varint_stream_is_refused(data, limit, message):
    with pytest.raises(CodecError, match=message):
        varint_decode(np.array(data, dtype=np.uint8), limit)


def write(path, frames, version, key_every=4, **channels):
    w = Writer(path, {"pfn_count": frames[0].size}, key_every=key_every, format_version=version,
               channels=("flags", *channels))
    for i, f in enumerate(frames):
        w.add_frame(f, t=i * 1.0, **{c: v[i] for c, v in channels.items()})
    w.close({"reason": "test"})
    return open_recording(path)


def changed(base, rng, spots):
    """base with a few stretches changed: a flag flipped, runs split, a page at each end."""
    f = base.copy()
    for _ in range(spots):
        s = int(rng.integers(0, f.size - 40))
        f[s:s + int(rng.integers(1, 40))] ^= np.uint64(1 << int(rng.integers(0, 26)))
    f[0] ^= np.uint64(4)
    f[-1] ^= np.uint64(8)
    return f


@pytest.fixture
def frames():
    rng = np.random.default_rng(5)
    base = synthetic_flags(20_000, seed=1, runs=400)
    out = [base, base.copy()]  # the second is unchanged: a delta of one zero run
    for _ in range(6):
        out.append(changed(out[-1], rng, 30))
    return out


def test_versions_1_2_and_3_of_the_same_frames_decode_to_them(tmp_path, frames):
    # GIVEN the same frames written in versions 1, 2 and 3, with a cgroup and a workload
    # channel
    cgroup = [np.where(f & np.uint64(32), np.uint64(17), np.uint64(0)) for f in frames]
    workload = [np.flatnonzero(f & np.uint64(1 << 11)) for f in frames]
    recs = [write(tmp_path / f"v{v}", frames, v, cgroup=cgroup, workload=workload)
            for v in (1, 2, 3)]
    # THEN both read back every page of every channel, with the same kinds
    for rec in recs:
        assert len(rec) == len(frames) and rec.warnings == []
        for i, (info, fr) in enumerate(rec.iter_decoded()):
            assert info.kind == ("key" if i % 4 == 0 else "delta")
            assert np.array_equal(fr.flags.expand(), frames[i])
            assert np.array_equal(fr.cgroup.expand(), cgroup[i])
            assert np.array_equal(np.flatnonzero(fr.workload.expand()), workload[i])
    assert [r.header.format_version for r in recs] == [1, 2, 3] and FORMAT_VERSION == 3
    # AND versions 2 and 3 normalise to version 1's arrays: the same XOR runs, value for value
    for i in range(len(frames)):
        a = load_frame(recs[0].path / f"frames/{i:06d}.npz", 20_000, recs[0].channels, 1)
        for v in (2, 3):
            b = load_frame(recs[v - 1].path / f"frames/{i:06d}.npz", 20_000, recs[v - 1].channels, v)
            for p in ("", "cgroup.", "workload."):
                assert np.array_equal(a[p + "lengths"], b[p + "lengths"]), (i, p)
                assert np.array_equal(a[p + "palette"][a[p + "codes"]],
                                      b[p + "palette"][b[p + "codes"]]), (i, p)
    # AND version 2 is smaller
    assert sum(i.context["bytes"] for i in recs[1].frames) < \
        sum(i.context["bytes"] for i in recs[0].frames)


def streams_of(path, names, codecs=CODECS[3]):
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["frame", "meta"]  # every stream packed in one member
        return unpack(z["frame"], names, 1 << 20, codecs)


@pytest.mark.parametrize("version", [2, 3])
def test_a_delta_stores_only_the_changed_runs(tmp_path, frames, version):
    rec = write(tmp_path / "r", frames, version)
    names = ["gaps", "lengths", "palette", "codes"]
    # an unchanged frame: no changed run, so four empty streams
    assert [a.size for a in streams_of(rec.path / "frames/000001.npz", names).values()] == \
        [0, 0, 0, 0]
    # a changed one: a gap, a length and a code per run of the XOR that is not zero
    s = streams_of(rec.path / "frames/000002.npz", names)
    xor = frames[2] ^ frames[1]
    starts = np.flatnonzero(np.diff(np.r_[np.uint64(0), xor]) != 0)
    changed_runs = int(np.count_nonzero(xor[starts]))
    assert s["codes"].size == changed_runs and s["gaps"][0] == 0  # page 0 changed
    assert varint_decode(s["gaps"], 20_000).size == changed_runs
    assert s["palette"].tolist() == np.unique(xor[xor != 0]).tolist()


def test_changes_across_chunk_boundaries_round_trip(tmp_path):
    # GIVEN a machine of more than two writer chunks, with changes that straddle the chunk
    # boundaries and a chunk that does not change at all
    n = 2 * CHUNK_PAGES + 1000
    base = np.repeat(np.array([0x28, 0x400, 0x68], np.uint64), [CHUNK_PAGES - 3, 700, n])[:n]
    second = base.copy()
    for at in (CHUNK_PAGES - 2, 2 * CHUNK_PAGES - 1, n - 1):
        second[at:at + 5] ^= np.uint64(1 << 25)
    third = second.copy()
    third[:CHUNK_PAGES + 10] = 0x400
    rec = write(tmp_path / "r", [base, second, third], 2)
    assert [np.array_equal(rec.read(i), f) for i, f in enumerate([base, second, third])] == \
        [True, True, True]


def test_a_version_3_delta_is_lzma_where_it_is_large_and_smaller_than_version_2(tmp_path):
    # GIVEN frames of 400,000 pages whose deltas change ~4,000 stretches (streams of KBs)
    rng = np.random.default_rng(9)
    base = synthetic_flags(400_000, seed=3, runs=20_000)
    frames = [base, changed(base, rng, 4000)]
    frames.append(changed(frames[-1], rng, 4000))
    recs = {v: write(tmp_path / f"v{v}", frames, v) for v in (2, 3)}
    names = ["gaps", "lengths", "palette", "codes"]
    for i in (1, 2):
        name = f"frames/{i:06d}.npz"
        # THEN version 3's delta streams are the same as version 2's, value for value
        v2, v3 = (streams_of(recs[v].path / name, names) for v in (2, 3))
        assert [np.array_equal(v2[n], v3[n]) for n in names] == [True] * 4
        # AND they are LZMA (which a version-2 reader refuses) where version 2's are deflate
        streams_of(recs[2].path / name, names, CODECS[2])
        with pytest.raises(CodecError, match="'gaps': bad stream entry"):
            streams_of(recs[3].path / name, names, CODECS[2])
        with pytest.raises(FrameError, match="frame is format version 3, its header says 2"):
            load_frame(recs[3].path / name, 400_000, ("flags",), 2)
        # AND smaller; the key frame is the same bytes but its version in meta
        b2, b3 = (recs[v].frames[i].context["bytes"] for v in (2, 3))
        assert b3 < 0.97 * b2, (b2, b3)
    key2, key3 = (streams_of(recs[v].path / "frames/000000.npz", ["lengths", "palette", "codes"])
                  for v in (2, 3))
    assert [np.array_equal(key2[n], key3[n]) for n in key2] == [True] * 3
    assert [np.array_equal(r.read(i), f) for r in recs.values() for i, f in enumerate(frames)] \
        == [True] * 6
