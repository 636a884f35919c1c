"""The KPF table, views and bits-spec parser of pvrec.flags, against page-types' rules."""

from __future__ import annotations

import numpy as np
import pytest

from pvrec import flags as kpf
from pvrec.errors import PvrecError

ANON, LRU, ACTIVE, THP = 1 << 12, 1 << 5, 1 << 6, 1 << 22
HEAD, TAIL, HUGE = 1 << 15, 1 << 16, 1 << 17
ALL = kpf.ALL_BITS


def test_table_is_upstream_page_types():
    assert len(kpf.FLAG_NAMES) == 44
    assert kpf.FLAG_NAMES[34] == "d:owner_2"
    assert 49 not in kpf.FLAG_NAMES  # slob_free went with SLOB
    assert list(kpf.FLAG_NAMES) == sorted(kpf.FLAG_NAMES)
    assert kpf.symbolic(0) == "_" * 44


def test_symbolic_and_long_names():
    assert kpf.symbolic(0x1020) == "_____l______a" + "_" * 31
    assert kpf.long_symbolic(0x1020) == "lru,anonymous"
    assert kpf.long_symbolic(0) == ""
    raw = 1 << kpf.SLUB_FROZEN | 1 << kpf.READAHEAD
    assert kpf.long_symbolic(raw) == "readahead,slub_frozen"
    assert kpf.symbolic(raw).endswith("_IA____")


def test_symbolic_table_is_symbolic_of_each_value():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 1 << 63, size=300, dtype=np.uint64) & np.uint64(kpf.KNOWN_BITS)
    table = kpf.symbolic_table(values)
    assert table.shape == (300, 44)
    for v, row in zip(values, table, strict=True):
        assert row.tobytes().decode() == kpf.symbolic(int(v))


def test_unknown_bits_are_refused_as_page_types_does():
    kpf.check_known(np.array([0x1020, 1 << 63], dtype=np.uint64))
    with pytest.raises(PvrecError, match="unknown flag bit 27"):
        kpf.check_known(np.array([0x28, 1 << 27 | 1 << 30], dtype=np.uint64))
    with pytest.raises(PvrecError, match="unknown flag bit 49"):
        kpf.check_known(np.array([1 << 49], dtype=np.uint64))
    assert kpf.unknown_bits(1 << 27 | 0x28) == 1 << 27


@pytest.mark.parametrize(
    "spec, mask, bits",
    [
        ("thp", THP, ALL),
        ("anonymous,~thp", ANON | THP, ANON),
        ("lru,active=lru", LRU | ACTIVE, LRU),
        ("=lru,active", ALL, LRU | ACTIVE),
        ("compound", HEAD | TAIL, ALL),
        ("c", HEAD | TAIL, ALL),  # page-types tries "compound" first: c is not uncached
        ("compound_head", HEAD, ALL),
        ("0x400", 0x400, ALL),
        ("010", 8, ALL),  # strtoull base 0: octal
        ("anon", ANON, ALL),  # a prefix is enough
        ("owner", 1 << 34, ALL),  # first match in bit order: owner_2 before owner_private
        ("huge,~compound_tail", HUGE | TAIL, HUGE),
        ("lru,~active=lru", LRU, LRU),  # with '=', ~items count for neither side
    ],
)
def test_bits_spec(spec, mask, bits):
    assert kpf.parse_bits_spec(spec) == (mask, bits)


@pytest.mark.parametrize("spec", ["anonymos", "lru,nosuch", "=0xzz", "thp=bogus"])
def test_bits_spec_with_an_unknown_name_lists_the_valid_ones(spec):
    with pytest.raises(PvrecError) as err:
        kpf.parse_bits_spec(spec)
    assert "valid names" in err.value.message and "anonymous" in err.value.message
    assert "\n" not in err.value.message


@pytest.mark.parametrize("spec", ["", "a=b=c", "0x10000000000000000"])
def test_bad_bits_spec(spec):
    with pytest.raises(PvrecError):
        kpf.parse_bits_spec(spec)


def test_match_bits_is_bit_mask_ok():
    flags = np.array([0, LRU, ACTIVE, LRU | ACTIVE, LRU | ANON], dtype=np.uint64)
    assert kpf.match_bits(flags, *kpf.parse_bits_spec("lru,active")).tolist() == [
        False, True, True, True, True]
    assert kpf.match_bits(flags, *kpf.parse_bits_spec("lru,active=lru")).tolist() == [
        False, True, False, False, True]
    assert kpf.match_bits(flags, *kpf.parse_bits_spec("=lru,active")).tolist() == [
        False, False, False, True, False]
    assert kpf.match_bits(flags, *kpf.parse_bits_spec("lru,~anonymous")).tolist() == [
        False, True, False, True, False]


def test_parse_flags_as_describe():
    assert kpf.parse_flags("anonymous,lru") == ANON | LRU
    assert kpf.parse_flags("thp,~lru") == THP
    assert kpf.parse_flags("lru=active") == LRU


@pytest.mark.parametrize(
    "text, value",
    [("0x10", 16), ("0X1f", 31), ("010", 8), ("10", 10), ("0", 0), (" 7 ", 7),
     ("1a", None), ("-1", None), ("", None), ("0x", None), ("08", None), ("+3", None)],
)
def test_parse_number(text, value):
    assert kpf.parse_number(text) == value


def test_well_known_view():
    reserved, mlocked = 1 << 32, 1 << 33
    flags = np.array([
        reserved | LRU,        # hacker bits hidden
        HEAD | THP | ANON,     # compound of a THP hidden
        TAIL | HUGE,           # compound of hugetlb kept
        1 << 48 | LRU,         # bits above the hacker range are not hidden
        mlocked,
    ], dtype=np.uint64)
    assert kpf.well_known(flags).tolist() == [LRU, THP | ANON, TAIL | HUGE, 1 << 48 | LRU, 0]


def test_expand_overloaded_view():
    slab, error, reclaim, writeback = 1 << 7, 1 << 1, 1 << 9, 1 << 8
    owner_2, private = 1 << 34, 1 << 35
    b = kpf.bit
    flags = np.array([
        ANON | owner_2,              # anon_exclusive
        owner_2,                     # owner_2 stays without anon
        slab | ACTIVE | error,       # slub_frozen, slub_debug
        ACTIVE | error,              # not slab: unchanged
        reclaim,                     # readahead
        reclaim | writeback,         # real reclaim
        slab | private,              # upstream has no slob_free: private stays
        HEAD | THP,                  # raw mode keeps compound bits
    ], dtype=np.uint64)
    assert kpf.expand_overloaded(flags).tolist() == [
        ANON | b(kpf.ANON_EXCLUSIVE),
        owner_2,
        slab | b(kpf.SLUB_FROZEN) | b(kpf.SLUB_DEBUG),
        ACTIVE | error,
        b(kpf.READAHEAD),
        reclaim | writeback,
        slab | private,
        HEAD | THP,
    ]
