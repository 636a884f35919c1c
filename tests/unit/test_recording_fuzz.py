"""Hostile and broken recordings: every case ends in one clear PvrecError or a skipped frame.

Frame files, array contents and the frame index get seeded hypothesis runs (derandomize);
header.json gets a table: every key the Header reads (and its zone and node entries) set to
a value of every JSON type. Never another exception, never code execution, never a frame that
inflates beyond what its page count could need. Each case rewrites one file of one working
copy (and puts it back), so a case costs what reading the recording costs.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pvrec.errors import PvrecError
from pvrec.metrics import frame_metrics, zones_of
from pvrec.recording.header import Header
from pvrec.recording.reader import open_recording
from pvrec.recording.writer import Writer
from pvrec.render.raster import MapLayout
from tests.conftest import synthetic_flags

PAGES = 3000
FUZZ = settings(max_examples=250, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A version-1 recording (its arrays are what test_hostile_arrays replaces; version 2's
    packed streams get theirs in test_codec_fuzz.py)."""
    path = tmp_path_factory.mktemp("pristine") / "rec"
    w = Writer(path, {"pfn_count": PAGES}, key_every=2, format_version=1)
    for seed in range(4):
        w.add_frame(synthetic_flags(PAGES, seed=seed), seed * 1.0)
    w.close({"reason": "test"})
    return path


@pytest.fixture
def work(pristine, tmp_path):
    """A working copy of the pristine recording; `with work.replaced(name, data)` puts one of
    its files back after the case, so every hypothesis example starts from the pristine one."""
    path = tmp_path / "rec"
    shutil.copytree(pristine, path)
    return Workdir(path)


class Workdir:
    def __init__(self, path):
        self.path = path

    @contextmanager
    def replaced(self, name: str, data: bytes) -> Iterator[None]:
        file = self.path / name
        saved = file.read_bytes()
        file.write_bytes(data)
        try:
            yield
        finally:
            file.write_bytes(saved)

    def peak_reading(self, name: str, data: bytes) -> int:
        """The peak bytes Python allocates reading everything with file `name` replaced."""
        with self.replaced(name, data):
            tracemalloc.start()
            try:
                read_everything(self.path)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()


def read_everything(path) -> int:
    """Open and read every frame the way render/info do; return frames read (-1: refused)."""
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
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) < 400, str(exc)
        return -1


# -- frame files

@FUZZ
@given(data=st.data())
def test_mutated_frame_bytes(work, data):
    name = f"frames/00000{data.draw(st.integers(0, 3))}.npz"
    raw = bytearray((work.path / name).read_bytes())
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
    with work.replaced(name, bytes(raw)):
        assert read_everything(work.path) <= 4


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
def test_hostile_arrays(work, name, data):
    frame = f"frames/00000{data.draw(st.integers(0, 3))}.npz"
    with np.load(work.path / frame, allow_pickle=False) as z:
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
    assert work.peak_reading(frame, buf.getvalue()) < 32 << 20
    assert not os.path.exists("/tmp/pvrec-fuzz-pwned")


# -- header.json: every key the Header reads, every JSON type

# One value of each JSON type, and the edges of the types the keys have.
JSON_VALUES = [None, True, False, 0, -1, 7, 2**70, -(2**70), 0.5, -0.5, float("nan"),
               float("inf"), "", "x", "pvrec", [], [0], [[0, 10]], [[10, 0]], [["a", "b"]],
               [[0, 2**70]], ["flags"], ["flags", "cgroup"], ["flags", "flags"],
               ["flags", "newer"], [None], [{}], {}, {"a": 1}, {"1": "/x"}, {"1": 2}]
HEADER_KEYS = [f.name for f in fields(Header) if f.name not in ("unknown", "skipped_channels")]
ZONE = {"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": PAGES, "present": PAGES}
NODE = {"node": 0, "ranges": [[0, PAGES]]}


def header_cases() -> list[tuple[str, dict]]:
    """(what, header changes): every key x every value, every zone and node entry key x every
    value and deleted, and a few entry lists."""
    cases = [(f"{k}={v!r}", {k: v}) for k in [*HEADER_KEYS, "newer_key"] for v in JSON_VALUES]
    cases += [(f"delete {k}", {k: ...}) for k in HEADER_KEYS]
    for key, entry in (("zones", ZONE), ("nodes", NODE)):
        for sub in entry:
            cases += [(f"{key}[0].{sub}={v!r}", {key: [{**entry, sub: v}]}) for v in JSON_VALUES]
            cases.append((f"{key}[0] without {sub}",
                          {key: [{k: v for k, v in entry.items() if k != sub}]}))
        cases += [(f"{key}=[entry, {v!r}]", {key: [entry, v]}) for v in JSON_VALUES]
    return cases


def check_consumers(path) -> None:
    """What opens must also be drawable and measurable: the Header's values are what the
    metrics and the renderer take without another check."""
    rec = open_recording(path)
    zones = {z for z, _ in zones_of(rec.header)}
    if len(rec):  # pfn_count changed: every frame has another page count and is skipped
        assert zones == set(frame_metrics(rec.read_runs(-1), rec.header))
    lay = MapLayout.build(rec.header)
    assert lay.ram_pages == rec.header.ram_pages
    json.dumps(rec.header.to_dict())


def test_hostile_header_values(pristine, tmp_path):
    work = tmp_path / "rec"
    shutil.copytree(pristine, work)
    good = json.loads((pristine / "header.json").read_text())
    outcomes = {"refused": 0, "opened": 0}
    for what, changes in header_cases():
        header = {**good, **changes}
        header = {k: v for k, v in header.items() if v is not ...}
        (work / "header.json").write_text(json.dumps(header))
        try:
            n = read_everything(work)
            if n >= 0:
                check_consumers(work)
        except Exception as exc:  # the failure names the case
            pytest.fail(f"header {what}: {type(exc).__name__}: {exc}")
        outcomes["refused" if n < 0 else "opened"] += 1
    # Both ends are reached: the table is not all refusals, nor all accepted.
    assert outcomes["refused"] > 500 and outcomes["opened"] > 100, outcomes


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@FUZZ
@given(changes=st.dictionaries(st.sampled_from([*HEADER_KEYS, "newer_key"]), json_values,
                               min_size=1, max_size=4))
def test_hostile_header_value_mixes(work, changes):
    """Several keys wrong at once, nested values included."""
    header = {**json.loads((work.path / "header.json").read_text()), **changes}
    with work.replaced("header.json", json.dumps(header).encode()):
        if read_everything(work.path) >= 0:
            check_consumers(work.path)


# -- the frame index

@FUZZ
@given(lines=st.lists(st.one_of(
    st.text(max_size=60),
    st.builds(lambda d: json.dumps(d), st.dictionaries(
        st.sampled_from(["index", "t", "file", "kind", "bytes"]), json_values, max_size=5)),
    st.sampled_from(['{"index":0,"t":0,"file":"frames/000000.npz","kind":"delta"}',
                     '{"index":1,"t":1,"file":"frames/000009.npz","kind":"key"}',
                     '{"index":1,"t":1e308,"file":"frames/000001.npz","kind":"key"}']),
), max_size=8))
def test_hostile_frame_index(work, lines):
    with work.replaced("frames.jsonl", "\n".join(lines).encode()):
        read_everything(work.path)


def test_whole_files_that_are_garbage(tmp_path):
    for name, content in (("header.json", b"\xff\xfe"), ("header.json", b"[1, 2]"),
                          ("header.json", b'{"format": "pvrec"}')):
        d = tmp_path / f"{name}-{len(content)}"
        d.mkdir()
        (d / name).write_bytes(content)
        with pytest.raises(PvrecError):
            open_recording(d)
