"""Hostile and broken recordings: every case ends in one clear PvrecError or a skipped frame.

Seeded hypothesis runs (derandomize) over frame files, array contents, headers and the frame
index; about 3,000 cases in all. Never another exception, never code execution, never a
frame that inflates beyond what its page count could need.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pvrec.errors import PvrecError
from pvrec.recording.reader import RecordingWarning, open_recording
from pvrec.recording.writer import Writer
from tests.conftest import synthetic_flags

PAGES = 3000
FUZZ = settings(max_examples=600, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("pristine") / "rec"
    w = Writer(path, {"pfn_count": PAGES}, key_every=2)
    for seed in range(4):
        w.add_frame(synthetic_flags(PAGES, seed=seed), seed * 1.0)
    w.close({"reason": "test"})
    return path


@pytest.fixture
def victim(pristine, tmp_path):
    """A fresh copy of the pristine recording for each hypothesis example (call it)."""

    def fresh():
        path = tmp_path / "rec"
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(pristine, path)
        return path

    return fresh


def read_everything(path) -> int:
    """Open and read every frame the way render/info do; return frames read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)
        try:
            rec = open_recording(path)
            n = 0
            for _info, runs in rec.iter_runs():
                assert runs.pfn_count == PAGES
                n += 1
            if len(rec):
                rec.read(-1)
            return n
        except PvrecError as exc:
            assert str(exc) and "\n" not in str(exc)
            return -1


@FUZZ
@given(data=st.data())
def test_mutated_frame_bytes(victim, data):
    victim = victim()
    frame = victim / "frames" / f"00000{data.draw(st.integers(0, 3))}.npz"
    raw = bytearray(frame.read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "splice"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == "flip":
        for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "random":
        raw = bytearray(data.draw(st.binary(max_size=2000)))
    else:
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    frame.write_bytes(bytes(raw))
    assert read_everything(victim) <= 4


def npy_bytes(arr) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array(b, arr, allow_pickle=True)
    return b.getvalue()


any_array = st.one_of(
    hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.uint32, np.uint64, np.int64, np.int8,
                                np.float64, np.bool_]),
               hnp.array_shapes(min_dims=0, max_dims=2, max_side=50)),
    st.just(np.array([{"a": 1}, None], dtype=object)),
    st.just(np.array([2**64 - 5, 5 + PAGES], dtype=np.uint64)),  # sum wraps to PAGES
    st.just(np.array([PAGES] + [0] * 10, dtype=np.uint64)),
    st.just(np.full(PAGES, 1, dtype=np.uint32)),
)


def huge_header(dtype="<u8", count=1 << 40) -> bytes:
    header = {"descr": dtype, "fortran_order": False, "shape": (count,)}
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, header)
    return b.getvalue() + b"\0" * 64


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pvrec-fuzz-pwned",))


@FUZZ
@given(name=st.sampled_from(["meta", "lengths", "palette", "codes"]), data=st.data())
def test_hostile_arrays(victim, name, data):
    victim = victim()
    frame = victim / "frames" / f"00000{data.draw(st.integers(0, 3))}.npz"
    with np.load(frame, allow_pickle=False) as z:
        members = {k: npy_bytes(z[k]) for k in z.files}
    kind = data.draw(st.sampled_from(["array", "huge", "pickle", "drop", "bomb"]))
    if kind == "array":
        members[name] = npy_bytes(data.draw(any_array))
    elif kind == "huge":
        members[name] = huge_header(data.draw(st.sampled_from(["<u8", "<u1", "|O"])))
    elif kind == "pickle":
        members[name] = pickle.dumps(Boom())
    elif kind == "drop":
        del members[name]
    else:
        members[name] = npy_bytes(np.zeros(8 * PAGES, dtype=np.uint64))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in members.items():
            zf.writestr(k + ".npy", v)
    frame.write_bytes(buf.getvalue())
    tracemalloc.start()
    try:
        read_everything(victim)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
    assert not os.path.exists("/tmp/pvrec-fuzz-pwned")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@FUZZ
@given(key=st.sampled_from(["format", "format_version", "pfn_count", "interval", "key_every",
                            "ram_ranges", "zones", "command", "channels", "new_key"]),
       value=json_values)
def test_hostile_header_values(victim, key, value):
    victim = victim()
    header = json.loads((victim / "header.json").read_text())
    header[key] = value
    (victim / "header.json").write_text(json.dumps(header))
    read_everything(victim)


@settings(max_examples=600, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.text(max_size=60),
    st.builds(lambda d: json.dumps(d), st.dictionaries(
        st.sampled_from(["index", "t", "file", "kind", "bytes"]), json_values, max_size=5)),
    st.sampled_from(['{"index":0,"t":0,"file":"frames/000000.npz","kind":"delta"}',
                     '{"index":1,"t":1,"file":"frames/000009.npz","kind":"key"}',
                     '{"index":1,"t":1e308,"file":"frames/000001.npz","kind":"key"}']),
), max_size=8))
def test_hostile_frame_index(victim, lines):
    victim = victim()
    (victim / "frames.jsonl").write_text("\n".join(lines))
    read_everything(victim)


def test_whole_files_that_are_garbage(tmp_path):
    for name, content in (("header.json", b"\xff\xfe"), ("header.json", b"[1, 2]"),
                          ("header.json", b'{"format": "pvrec"}')):
        d = tmp_path / f"{name}-{len(content)}"
        d.mkdir()
        (d / name).write_bytes(content)
        with pytest.raises(PvrecError):
            open_recording(d)
