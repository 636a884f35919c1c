"""The multi-size THP counters of each frame's context: read from a sysfs tree, kept in
frames.jsonl, and dropped by the reader when an index line carries them in the wrong shape."""

from __future__ import annotations

import pytest

from pvrec.kernel.procstat import read_context
from pvrec.recording import Writer
from pvrec.recording.format import clean_context
from pvrec.recording.reader import open_recording
from tests.helpers import synthetic_flags


def fake_thp(root, sizes: dict[str, dict[str, str]]):
    """A transparent_hugepage directory with hugepages-<size>/stats/<counter> files."""
    for size, counters in sizes.items():
        stats = root / f"hugepages-{size}" / "stats"
        stats.mkdir(parents=True)
        for name, text in counters.items():
            (stats / name).write_text(text)
    return root


def test_read_context_keeps_each_sizes_counters_smallest_size_first(tmp_path):
    thp = fake_thp(tmp_path / "thp", {
        "2048kB": {"nr_anon": "29\n", "split": "0\n", "zswpout": "5\n"},
        "64kB": {"nr_anon": "512\n", "anon_fault_alloc": "1024\n", "nr_anon_partially_mapped":
                 "2\n", "anon_fault_fallback": "3\n", "split": "4\n"},
        "8kB": {"split": "junk\n"},  # unreadable: the size is left out
    })
    ctx = read_context(tmp_path / "no-proc", thp)
    assert list(ctx["mthp"]) == ["64kB", "2048kB"]
    assert ctx["mthp"]["64kB"] == {"nr_anon": 512, "nr_anon_partially_mapped": 2,
                                   "anon_fault_alloc": 1024, "anon_fault_fallback": 3,
                                   "split": 4}
    assert ctx["mthp"]["2048kB"] == {"nr_anon": 29, "split": 0}  # zswpout is not kept


def test_a_kernel_without_mthp_leaves_the_key_out(tmp_path):
    assert "mthp" not in read_context(tmp_path / "no-proc", tmp_path / "no-thp")


def test_the_counters_survive_the_recording(tmp_path):
    mthp = {"64kB": {"nr_anon": 512, "split": 0}}
    w = Writer(tmp_path / "rec", {"pfn_count": 3000})
    w.add_frame(synthetic_flags(3000, seed=1), 0.0, {"mthp": mthp})
    w.close({"reason": "test"})
    assert open_recording(tmp_path / "rec").frames[0].context["mthp"] == mthp


@pytest.mark.parametrize("bad", [[1, 2], {"64kB": [512]}, {"64kB": {"nr_anon": "512"}},
                                 {"64kB": {"nr_anon": True}}, {"64kB": None}])
def test_a_malformed_mthp_table_is_dropped(bad):
    ctx = {"mthp": bad, "late": 0.1}
    assert clean_context(ctx) == ["mthp"]
    assert ctx == {"late": 0.1}
