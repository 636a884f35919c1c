"""The synthetic recordings of tests/helpers.py cover what the render tests rely on: every class
of the default scheme present, each CLASS_FLAGS word named as its class, reproducible frames."""

from __future__ import annotations

import numpy as np

from pvrec.classes import default_scheme
from tests.helpers import CLASS_FLAGS, make_recording, synthetic_frame  # noqa: E402


def test_every_default_class_is_present():
    scheme = default_scheme()
    cls = scheme.classify_values(synthetic_frame())
    present = {scheme.classes[c].name for c in np.unique(cls)}
    assert present == set(scheme.names)


def test_class_flags_name_each_class():
    scheme = default_scheme()
    for name, value in CLASS_FLAGS.items():
        got = scheme.classify_values(np.array([value], dtype=np.uint64))[0]
        assert scheme.classes[got].name == name, (name, hex(value))


def test_recordings_are_reproducible(tmp_path):
    from pvrec.recording.reader import open_recording

    a = open_recording(make_recording(tmp_path / "a", 3, seed=5))
    b = open_recording(make_recording(tmp_path / "b", 3, seed=5))
    assert len(a) == len(b) == 3
    for i in range(3):
        assert np.array_equal(a.read(i), b.read(i))
    assert not np.array_equal(a.read(0), a.read(1))
