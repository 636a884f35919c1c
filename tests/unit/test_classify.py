"""Page classes: the built-in scheme, the article's flag-combination scheme, user TOML classes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvrec import flags as F
from pvrec.classes import (
    HOLE,
    FlagsScheme,
    ValueClassifier,
    default_scheme,
    make_scheme,
    parse_color,
)
from pvrec.classes_toml import load_toml_scheme
from pvrec.errors import PvrecError
from tests.helpers import CLASS_FLAGS

B = F.bit


def classify_one(scheme, value: int) -> str:
    return scheme.classes[scheme.classify_values(np.array([value], np.uint64))[0]].name


def test_default_scheme_lists_the_design_classes_in_priority_order():
    names = default_scheme().names
    assert names[HOLE] == "hole"
    assert names == ["hole", "hwpoison", "offline", "free", "hugetlb", "THP", "slab",
                     "page table", "zero/KSM", "mlocked", "anonymous", "shmem", "page cache",
                     "reserved", "other kernel", "no flags"]


@pytest.mark.parametrize("name", list(CLASS_FLAGS))
def test_each_class_from_typical_flags(name):
    assert classify_one(default_scheme(), CLASS_FLAGS[name]) == name


@pytest.mark.parametrize("value, name", [
    (B(F.BUDDY) | B(F.HWPOISON), "hwpoison"),  # priority: poison before free
    (B(F.THP) | B(F.ANON) | B(F.LRU), "THP"),  # THP before anonymous
    (B(F.MLOCKED) | B(F.ANON) | B(F.LRU), "mlocked"),  # locked pages show at all
    (B(F.SWAPBACKED) | B(F.LRU) | B(F.UNEVICTABLE), "mlocked"),
    (B(F.HUGE) | B(F.COMPOUND_HEAD), "hugetlb"),
    (B(F.LRU) | B(F.ACTIVE) | B(F.OWNER_2), "page cache"),  # real kbuild page cache word
    (0x40000002C, "page cache"),
    (0x402415828, "THP"),  # the fixtures' THP anon word
    (0x20204483C, "mlocked"),
    (0x100000000, "reserved"),
    (0x10000, "other kernel"),  # a bare compound tail: kernel-owned
    (B(F.IDLE), "other kernel"),
    (B(F.NOPAGE) | B(F.BUDDY), "hole"),
])
def test_priority(value, name):
    assert classify_one(default_scheme(), value) == name


def test_colours_distinct_and_stable():
    for theme in ("light", "dark"):
        cols = [tuple(c) for c in default_scheme().colors(theme)[1:]]  # hole is the background
        assert len(set(cols)) == len(cols), theme
    s = default_scheme()
    # Stable across runs and releases: a class keeps its colour (blog posts compare videos).
    assert s.classes[s.index("free")].light == (0xDC, 0xDC, 0xDC)
    assert s.classes[s.index("anonymous")].light == (0xE6, 0x9F, 0x00)
    assert s.classes[s.index("page cache")].light == (0x56, 0xB4, 0xE9)
    assert s.classes[s.index("THP")].light == (0xD5, 0x5E, 0x00)
    assert default_scheme().colors("light").tolist() == s.colors("light").tolist()


def test_neutral_classes_differ_in_lightness():
    """free, no flags and reserved are greys: told apart by lightness alone (colour-blind)."""
    s = default_scheme()
    for theme in ("light", "dark"):
        greys = sorted(sum(s.classes[s.index(n)].color(theme)) for n in
                       ("free", "no flags", "reserved"))
        assert greys[1] - greys[0] > 90 and greys[2] - greys[1] > 90, theme


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50), st.integers(0, 3))
def test_value_classifier_matches_the_scheme(values, repeat):
    scheme = default_scheme()
    vc = ValueClassifier(scheme)
    arr = np.array(values * (repeat + 1), dtype=np.uint64)
    for _ in range(2):  # learning, then the cached table
        assert np.array_equal(vc(arr), scheme.classify_values(arr))
    assert np.array_equal(vc(arr[:1]), scheme.classify_values(arr[:1]))


def test_value_classifier_with_many_distinct_values_uses_a_sorted_table():
    scheme = default_scheme()
    vc = ValueClassifier(scheme)
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2**63, size=5000, dtype=np.int64).astype(np.uint64)
    assert np.array_equal(vc(values), scheme.classify_values(values))
    assert vc._table_v is None  # too many for a collision-free table of bounded size
    more = np.concatenate((values[:100], np.array([0, B(F.BUDDY)], np.uint64)))
    assert np.array_equal(vc(more), scheme.classify_values(more))
    assert vc(np.zeros(0, np.uint64)).size == 0


def test_flags_scheme_most_common_first_and_other():
    s = FlagsScheme(max_states=3)
    lru_ref = B(F.LRU) | B(F.REFERENCED) | B(F.UPTODATE)
    values = np.array([B(F.BUDDY), lru_ref, B(F.LRU), B(F.SLAB), B(F.ANON), B(F.NOPAGE)],
                      np.uint64)
    pages = np.array([100, 50, 70, 30, 5, 1000], np.float64)
    s.fit(values, pages)
    # referenced and uptodate are noise: lru_ref and lru are one state of 120 pages.
    assert s.names == ["hole", "lru", "buddy", "slab", "other"]
    got = [s.classes[c].name for c in s.classify_values(values)]
    assert got == ["buddy", "lru", "lru", "slab", "other", "hole"]
    # A state keeps its semantic class's colour: page cache blue, free grey.
    d = default_scheme()
    assert s.classes[1].light == d.classes[d.index("page cache")].light
    assert s.classes[2].light == d.classes[d.index("free")].light


def test_flags_scheme_ignore_flags_and_page_types_view():
    s = FlagsScheme(ignore="")
    v = np.array([B(F.LRU) | B(F.REFERENCED), B(F.LRU), B(F.LRU) | B(F.OWNER_2)], np.uint64)
    s.fit(v, np.array([1, 2, 3], np.float64))
    # referenced now counts; owner_2 is a kernel-hacking bit, hidden as page-types hides it.
    assert sorted(s.names[1:-1]) == ["lru", "referenced,lru"]
    with pytest.raises(PvrecError, match="flag names"):
        FlagsScheme(ignore="~lru")
    with pytest.raises(PvrecError, match="unknown flag"):
        FlagsScheme(ignore="lru,nosuch")


def test_shaded_states_of_one_class_differ():
    s = FlagsScheme()
    vals = np.array([B(F.LRU), B(F.LRU) | B(F.ACTIVE), B(F.LRU) | B(F.DIRTY)], np.uint64)
    s.fit(vals, np.array([3, 2, 1], np.float64))
    cols = {s.classes[i].light for i in range(1, 4)}
    assert len(cols) == 3


def test_parse_color():
    assert parse_color("#56B4E9") == (0x56, 0xB4, 0xE9)
    assert parse_color("#fff") == (255, 255, 255)
    assert parse_color("orange") == (255, 165, 0)
    assert parse_color("rgb(1, 2, 3)") == (1, 2, 3)
    for bad in ("#12345", "notacolour", 12, "#gg0000"):
        with pytest.raises(PvrecError, match="colour"):
            parse_color(bad)


GOOD_TOML = """\
# my classes
[[class]]
name = "THP"
bits = "thp"
color = "#D55E00"
dark = "#FF8800"

[[class]]
name = "small anon"
bits = "anonymous,~thp"
color = "orange"
description = "4 KiB anonymous pages"

[[class]]
name = "exact lru"
bits = ["=lru", "=lru,active"]
color = "#56B4E9"

[other]
color = "#444"
"""


def test_toml_scheme(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(GOOD_TOML)
    s = make_scheme(str(p))
    assert s.names == ["hole", "THP", "small anon", "exact lru", "other"]
    v = np.array([B(F.THP) | B(F.ANON), B(F.ANON), B(F.LRU), B(F.LRU) | B(F.ACTIVE),
                  B(F.LRU) | B(F.REFERENCED), B(F.NOPAGE)], np.uint64)
    assert [s.classes[c].name for c in s.classify_values(v)] == \
        ["THP", "small anon", "exact lru", "exact lru", "other", "hole"]
    assert s.classes[1].dark == (0xFF, 0x88, 0x00)
    assert s.classes[2].light == s.classes[2].dark == (255, 165, 0)
    assert s.classes[-1].light == (0x44, 0x44, 0x44)


@pytest.mark.parametrize("text, message", [
    ('[[class]]\nname = "a"\nbits = "thp"\ncolor = "#12345"\n', r"line 4: colour"),
    ('[[class]]\nname = "a"\nbits = "thp"\ncolor = "#123456"\n\n[[class]]\nname = "b"\n'
     'bits = "nosuch"\ncolor = "red"\n', r"line 8: unknown flag name"),
    ('[[class]]\nname = "a"\nbits = "thp"\ncolor = "red"\nshape = 1\n', r"line 5: unknown key"),
    ('[[class]]\nname = "a"\nbits = "thp"\n', r"line 1: class 'a' needs color"),
    ('[[class]]\nname = "a"\nbits = 3\ncolor = "red"\n', r"line 3: class 'a' needs bits"),
    ('[[class]]\nbits = "thp"\ncolor = "red"\n', r"line 1: class needs a name"),
    ('[[class]]\nname = "a"\nbits = "thp"\ncolor = "red"\n[[class]]\nname = "a"\n'
     'bits = "lru"\ncolor = "red"\n', r"line 6: class 'a' is defined twice"),
    ('[[class]\nname = "a"\n', r"not valid TOML: .*line 1"),
    ('title = "x"\n', r"no \[\[class\]\] tables"),
    ('[[class]]\nname = "a"\nbits = "thp"\ncolor = "red"\n[foo]\nx = 1\n', r"unknown key 'foo'"),
])
def test_toml_errors_say_which_line(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(PvrecError, match=message):
        load_toml_scheme(p)


def test_make_scheme_errors(tmp_path):
    with pytest.raises(PvrecError, match="use default, flags"):
        make_scheme("nope")
    with pytest.raises(PvrecError, match="does not exist"):
        make_scheme(str(tmp_path / "missing.toml"))
    with pytest.raises(PvrecError, match="--classes flags only"):
        make_scheme("default", "lru")
    assert make_scheme("flags", "").ignore == 0
