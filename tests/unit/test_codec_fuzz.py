"""Hostile and broken version-2 and 3 frames: every case is a skipped frame or one clear PvrecError,
never another exception, a huge allocation or a stream inflating past its bound.

As test_recording_fuzz.py does for version 1 (its helpers are used here): seeded hypothesis
runs over the frame file's bytes, and over the packed streams (codec.pack): each stream
replaced by other bytes (deflate or LZMA), declared larger than it is, dropped, or made a
deflate or LZMA bomb.
"""

from __future__ import annotations

import functools
import io
import lzma
import shutil
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvrec.recording.codec import DEFLATE, LZMA, LZMA_FILTERS, unpack, varint_encode
from pvrec.recording.writer import Writer
from tests.conftest import synthetic_flags
from tests.unit.test_recording_fuzz import FUZZ, PAGES, Workdir, npy_bytes, read_everything


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("pristine2") / "rec"
    w = Writer(path, {"pfn_count": PAGES}, key_every=2, channels=("flags", "workload"))
    for seed in range(4):
        flags = synthetic_flags(PAGES, seed=seed)
        w.add_frame(flags, seed * 1.0, workload=np.flatnonzero(flags & np.uint64(32)))
    w.close({"reason": "test"})
    return path


@pytest.fixture
def work(pristine, tmp_path):
    path = tmp_path / "rec"
    shutil.copytree(pristine, path)
    return Workdir(path)


@FUZZ
@given(data=st.data())
def test_mutated_version_2_frame_bytes(work, data):
    name = f"frames/00000{data.draw(st.integers(0, 3))}.npz"
    raw = bytearray((work.path / name).read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == "flip":
        for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    else:
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    with work.replaced(name, bytes(raw)):
        assert read_everything(work.path) <= 4


def raw_pack(entries: list[tuple[str, int, int, bytes, int]]) -> np.ndarray:
    """A pack as codec.pack lays it out, from (name, codec, item size, blob, declared raw size)
    entries that need not be true."""
    head = [len(entries)]
    for name, how, itemsize, blob, size in entries:
        head += [len(name), *name.encode(), how, itemsize, len(blob), size]
    h = varint_encode(np.array(head, dtype=np.uint64))
    return np.frombuffer(varint_encode(np.array([h.size])).tobytes() + h.tobytes()
                         + b"".join(e[3] for e in entries), np.uint8)


def deflate(data: bytes) -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush()


@functools.cache
def bomb() -> bytes:
    return deflate(bytes(64 << 20))


@functools.cache
def lzma_bomb() -> bytes:
    return lzma.compress(bytes(64 << 20), lzma.FORMAT_RAW, filters=LZMA_FILTERS)


STREAMS = ["gaps", "lengths", "palette", "codes", "workload.gaps", "workload.lengths",
           "workload.palette", "workload.codes"]


@FUZZ
@given(name=st.sampled_from(STREAMS), data=st.data())
def test_hostile_streams(work, name, data):
    frame = f"frames/00000{data.draw(st.integers(0, 3))}.npz"
    with np.load(work.path / frame, allow_pickle=False) as z:
        meta = z["meta"]
        names = [s for s in STREAMS if meta[1] == 1 or "gaps" not in s]
        streams = unpack(z["frame"], names, 1 << 20)
    entries = [(k, DEFLATE, v.dtype.itemsize, deflate(v.tobytes()), v.nbytes)
               for k, v in streams.items()]
    at = next((i for i, e in enumerate(entries) if e[0] == name), 0)
    kind = data.draw(st.sampled_from(["bytes", "declared", "drop", "bomb", "itemsize",
                                      "directory", "lzma", "lzma bomb"]))
    packed = None
    if kind == "bytes":  # other content, any length, any item size
        blob = data.draw(st.binary(max_size=300))
        size = data.draw(st.sampled_from([1, 2, 4, 8]))
        blob = blob[:len(blob) // size * size]
        entries[at] = (entries[at][0], DEFLATE, size, deflate(blob), len(blob))
    elif kind == "declared":  # a size other than what inflates
        e = entries[at]
        entries[at] = (*e[:4], data.draw(st.sampled_from([0, e[4] + 1, max(e[4] - 1, 0),
                                                         1 << 40, 2**62])))
    elif kind == "drop":
        del entries[at]
    elif kind == "bomb":  # 64 MiB of zeros in 64 KB, declared small or true
        entries[at] = (entries[at][0], DEFLATE, 1, bomb(),
                       data.draw(st.sampled_from([10, 64 << 20])))
    elif kind == "lzma":  # an LZMA stream of other bytes, or bytes that are not LZMA at all
        blob = data.draw(st.binary(max_size=300))
        raw = lzma.compress(blob, lzma.FORMAT_RAW, filters=LZMA_FILTERS)
        entries[at] = (entries[at][0], LZMA, 1, data.draw(st.sampled_from([raw, blob])),
                       data.draw(st.sampled_from([len(blob), len(blob) + 1, 1 << 40])))
    elif kind == "lzma bomb":
        entries[at] = (entries[at][0], LZMA, 1, lzma_bomb(),
                       data.draw(st.sampled_from([10, 64 << 20])))
    elif kind == "itemsize":
        e = entries[at]
        entries[at] = (e[0], data.draw(st.sampled_from([0, 2, 3, 16])), *e[2:])
    else:  # the directory itself: random bytes
        packed = np.frombuffer(data.draw(st.binary(max_size=200)), np.uint8)
    packed = raw_pack(entries) if packed is None else packed
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.npy", npy_bytes(meta))
        zf.writestr("frame.npy", npy_bytes(packed))
    assert work.peak_reading(frame, buf.getvalue()) < 32 << 20
