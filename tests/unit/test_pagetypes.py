"""pvrec.inspect.pagetypes on small hand-made arrays: exact text, and a page-by-page reference.

The reference at the bottom is a line-by-line transliteration of page-types.c's walk
(walk_pfn, add_page, bit_mask_ok, show_page_range, hash_slot, show_summary): the vectorised
run-length core must print exactly what it prints for random arrays, filters and ranges.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvrec import flags as kpf
from pvrec.errors import PvrecError
from pvrec.inspect import pagetypes as pt

HDR = pt.SUMMARY_HEADER
BUDDY, UPTODATE_LRU, RESERVED = 0x400, 0x28, 1 << 32
U = "_"


def sym(value: int) -> str:
    return kpf.symbolic(value)


def render(flags, *, raw=False, bits=(), addr=(), list_mode=0, summary=True, page_size=4096):
    lengths, values = pt.runs_of(np.asarray(flags, dtype=np.uint64))
    w = pt.walk(lengths, values, raw=raw, filters=[kpf.parse_bits_spec(b) for b in bits],
                ranges=[pt.parse_addr_spec(a) for a in addr])
    return b"".join(bytes(c) for c in pt.render(
        w, list_mode=list_mode, show_summary=summary, page_size=page_size)).decode()


# -- exact text


def test_summary_text_is_page_types_printf():
    flags = [BUDDY] * 3 + [0] * 2 + [UPTODATE_LRU] + [RESERVED]
    assert render(flags) == (
        HDR
        + f"0x0000000000000000\t         3        0  {U * 44}\t\n"
        + f"0x0000000000000028\t         1        0  ___U_l{U * 38}\tuptodate,lru\n"
        + f"0x0000000000000400\t         3        0  __________B{U * 33}\tbuddy\n"
        + "             total\t         7        0\n"
    )


def test_raw_mode_shows_kernel_hacking_bits():
    out = render([BUDDY] * 3 + [0] * 2 + [RESERVED], raw=True)
    assert "0x0000000100000000\t         1        0  " + sym(RESERVED) + "\treserved\n" in out


def test_mb_column_is_pages_times_page_size_shifted():
    out = render([BUDDY] * 1000, page_size=4096)
    assert out.splitlines()[1] == f"0x0000000000000400\t      1000        3  {sym(BUDDY)}\tbuddy"
    assert out.splitlines()[-1] == "             total\t      1000        3"
    out = render([BUDDY] * 1000, page_size=65536)
    assert out.splitlines()[-1] == "             total\t      1000       62"


def test_empty_walk_prints_header_and_zero_total():
    assert render([BUDDY] * 4, bits=["thp"]) == HDR + "             total\t         0        0\n"
    assert render([BUDDY] * 4, addr=["100"]) == HDR + "             total\t         0        0\n"


def test_no_summary_no_list_prints_nothing():
    assert render([BUDDY] * 4, summary=False) == ""


def test_list_then_summary_separated_by_two_newlines():
    out = render([0] * 2 + [BUDDY] * 3, list_mode=pt.LIST_RANGES)
    assert out == (
        "offset\tlen\tflags\n"
        f"0\t2\t{sym(0)}\n"
        f"2\t3\t{sym(BUDDY)}\n"
        "\n\n" + HDR
        + f"0x0000000000000000\t         2        0  {sym(0)}\t\n"
        + f"0x0000000000000400\t         3        0  {sym(BUDDY)}\tbuddy\n"
        + "             total\t         5        0\n"
    )


def test_list_each_prints_one_line_per_page():
    out = render([0] * 2 + [BUDDY] * 3 + [0], list_mode=pt.LIST_EACH, summary=False,
                 bits=["buddy"])
    assert out == f"offset\tflags\n2\t{sym(BUDDY)}\n3\t{sym(BUDDY)}\n4\t{sym(BUDDY)}\n"


def test_filtered_out_pages_break_ranges_and_view_merges_them():
    # Reserved is hidden in the default view: pages 0-3 are all 0x28 there.
    flags = [UPTODATE_LRU, UPTODATE_LRU | RESERVED, UPTODATE_LRU, UPTODATE_LRU, BUDDY,
             UPTODATE_LRU, UPTODATE_LRU]
    assert render(flags, list_mode=1, summary=False, bits=["lru"]) == (
        f"offset\tlen\tflags\n0\t4\t{sym(0x28)}\n5\t2\t{sym(0x28)}\n"
    )
    assert render(flags, list_mode=1, summary=False, bits=["lru"], raw=True) == (
        f"offset\tlen\tflags\n0\t1\t{sym(0x28)}\n1\t1\t{sym(0x28 | RESERVED)}\n"
        f"2\t2\t{sym(0x28)}\n5\t2\t{sym(0x28)}\n"
    )


def test_list_breaks_at_page_types_read_batches():
    # page-types reads 65536 pages at a time from the start of each range and never joins
    # pages of two batches into one -l line.
    zeros = np.zeros(70000, dtype=np.uint64)
    z = sym(0)
    assert render(zeros, list_mode=1, summary=False) == (
        f"offset\tlen\tflags\n0\t10000\t{z}\n10000\t1170\t{z}\n")
    assert render(zeros, list_mode=1, summary=False, addr=["5,0x10010"]) == (
        f"offset\tlen\tflags\n5\t10000\t{z}\n10005\tb\t{z}\n")


def test_adjacent_ranges_join_and_repeated_ranges_count_twice():
    flags = [UPTODATE_LRU] * 64
    z = sym(0x28)
    assert render(flags, list_mode=1, summary=False, addr=["0,10", "10,20"]) == (
        f"offset\tlen\tflags\n0\t14\t{z}\n")
    out = render(flags, list_mode=1, addr=["3", "3", "0x20+4"])
    assert out.startswith(f"offset\tlen\tflags\n3\t1\t{z}\n3\t1\t{z}\n20\t4\t{z}\n\n\n")
    assert out.endswith("             total\t         6        0\n")


def test_addr_ranges_past_the_end_are_clipped():
    out = render([BUDDY] * 10, addr=["8,", ",3", "9+100"])
    assert out.endswith("             total\t         6        0\n")


def test_describe_line():
    assert pt.format_describe(kpf.parse_flags("anonymous,lru")) == (
        f"0x0000000000001020\t{sym(0x1020)}\tlru,anonymous\n")
    with pytest.raises(PvrecError, match="unknown flag bit 27"):
        pt.format_describe(1 << 27)


def test_unknown_bit_is_refused_only_when_printed():
    flags = [BUDDY] * 3 + [1 << 27]
    with pytest.raises(PvrecError, match="bit 27"):
        render(flags)
    assert "buddy" in render(flags, bits=["buddy"])
    assert render(flags, summary=False) == ""


# -- the hash table order of the summary rows


def test_hash_slots_probe_linearly_and_wrap_to_one():
    assert pt.hash_slots([0x2000, 0x1, 0x400068, 0x68, 0]) == [1, 2, 0x68, 0x69, 0]
    assert pt.hash_slots([0x1FFF, 0x3FFF]) == [0x1FFF, 1]
    full = pt.hash_slots(range(1, pt.HASH_SIZE + 1))
    assert full[-1] == pt.HASH_SIZE  # page-types dies here; we put it after the rest


def test_summary_rows_in_hash_order_of_first_appearance():
    thp_active = 0x400068
    flags = [0x68] * 4 + [thp_active] * 4
    rows = [line.split("\t")[0] for line in render(flags).splitlines()[1:-1]]
    assert rows == ["0x0000000000000068", "0x0000000000400068"]
    # Walked from page 4 first, the THP value takes slot 0x68 and 0x68 moves to 0x69.
    rows = [line.split("\t")[0] for line in render(flags, addr=["4,8", "0,4"]).splitlines()[1:-1]]
    assert rows == ["0x0000000000400068", "0x0000000000000068"]


# -- addr-spec


@pytest.mark.parametrize(
    "spec, expected",
    [("5", (5, 1)), ("1000+500", (1000, 500)), ("0x10,0x20", (16, 16)),
     ("0x600000,", (0x600000, pt.ULONG_MAX - 0x600000)), (",0x10000", (0, 0x10000)),
     ("+8", (0, 8)), ("7+", (7, pt.ULONG_MAX - 7)), ("3,3", (3, 0))],
)
def test_addr_spec(spec, expected):
    assert pt.parse_addr_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", ",", "x", "5,3", "1+2,5", "0x1g", "-1", "1,,2"])
def test_malformed_addr_spec(spec):
    with pytest.raises(PvrecError, match="addr-spec"):
        pt.parse_addr_spec(spec)


# -- formatting matches Python's own %x for any numbers


def test_range_lines_match_printf_for_wide_numbers():
    rng = np.random.default_rng(5)
    offsets = np.concatenate(([0, 1, 15, 16, 255, 256, (1 << 40) + 3, (1 << 63) + 5],
                              rng.integers(0, 1 << 50, size=500))).astype(np.uint64)
    lengths = rng.integers(1, 1 << 36, size=offsets.size).astype(np.uint64)
    values = rng.choice(np.array([0, 0x28, BUDDY, 1 << 63, 0x400068], dtype=np.uint64),
                        size=offsets.size)
    expected = "".join(f"{int(o):x}\t{int(n):x}\t{sym(int(v))}\n"
                       for o, n, v in zip(offsets, lengths, values, strict=True))
    assert pt.format_ranges(offsets, lengths, values).decode() == expected
    expected = "".join(f"{int(o):x}\t{sym(int(v))}\n"
                       for o, v in zip(offsets, values, strict=True))
    assert pt.format_pages(offsets, values).decode() == expected


def test_list_each_in_chunks_is_the_same_as_at_once():
    flags = np.repeat(np.array([0, 0x28, BUDDY], dtype=np.uint64), [700, 300, 1000])
    w = pt.walk(*pt.runs_of(flags), ranges=[(1500, 400), (10, 900)])
    whole = list(pt.iter_pages(w))
    chunked = list(pt.iter_pages(w, chunk=97))
    assert np.array_equal(whole[0][0], np.concatenate([p for p, _ in chunked]))
    assert np.array_equal(whole[0][1], np.concatenate([v for _, v in chunked]))
    assert whole[0][0][:3].tolist() == [1500, 1501, 1502]
    assert whole[0][0][400:403].tolist() == [10, 11, 12]


# -- JSON: the same numbers


def test_json_has_the_numbers_of_the_text():
    flags = np.repeat(np.array([0, 0x28, BUDDY, 0x28], dtype=np.uint64), [5, 3, 7, 2])
    w = pt.walk(*pt.runs_of(flags))
    doc = json.loads(json.dumps(pt.summary_json(w, 4096)))
    assert [(r["flags"], r["pages"]) for r in doc["summary"]] == [
        ("0x0000000000000000", 5), ("0x0000000000000028", 5), ("0x0000000000000400", 7)]
    assert doc["summary"][1]["names"] == ["uptodate", "lru"]
    assert doc["summary"][1]["symbolic"] == sym(0x28)
    assert doc["total"] == {"pages": 17, "mb": 0}
    ranges = pt.ranges_json(w)
    assert ranges["ranges"] == {"offset": [0, 5, 8, 15], "length": [5, 3, 7, 2],
                                "flags": ["0x0000000000000000", "0x0000000000000028",
                                          "0x0000000000000400", "0x0000000000000028"]}
    assert ranges["legend"]["0x0000000000000400"]["names"] == ["buddy"]
    pages = pt.pages_json(pt.walk(*pt.runs_of(flags), filters=[kpf.parse_bits_spec("buddy")]))
    assert pages["pages"]["offset"] == list(range(8, 15))


# -- against a page-by-page transliteration of page-types.c


def reference_page_types(flags, raw, filters, ranges, list_mode, batch):
    """page-types -F on `flags`, one page at a time, as page-types.c does it."""
    n = len(flags)
    shown = pt.view(np.asarray(flags, dtype=np.uint64), raw).tolist()
    out = []
    st8 = {"flags0": 0, "voff": 0, "index": 0, "count": 0}
    table, nr_pages = [0] * pt.HASH_SIZE, [0] * pt.HASH_SIZE
    total = 0

    def show_page_range(voffset, offset, size, f):
        s = st8
        if (f == s["flags0"] and offset == s["index"] + s["count"] and size
                and voffset == s["voff"] + s["count"]):
            s["count"] += size
            return
        if s["count"]:
            out.append(f"{s['index']:x}\t{s['count']:x}\t{sym(s['flags0'])}\n")
        s.update(flags0=f, index=offset, voff=voffset, count=size)

    def hash_slot(f):
        if f == 0:
            return 0
        k = f & (pt.HASH_SIZE - 1)
        for _ in range(1, pt.HASH_SIZE):
            if not k or k >= pt.HASH_SIZE:
                k = 1
            if table[k] == 0:
                table[k] = f
                return k
            if table[k] == f:
                return k
            k += 1
        raise AssertionError("hash table full")

    def bit_mask_ok(f):
        for mask, bits in filters:
            if bits == kpf.ALL_BITS:
                if f & mask == 0:
                    return False
            elif f & mask != bits:
                return False
        return True

    if list_mode == 1:
        out.append("offset\tlen\tflags\n")
    for offset, size in ranges or [(0, pt.ULONG_MAX)]:
        voffset, index, count = offset, offset, size  # walk_pfn(offset, offset, size)
        while count:
            pages = max(0, min(count, batch, n - index))
            if pages == 0:
                break
            for i in range(pages):
                f = shown[index + i]
                if not bit_mask_ok(f):
                    continue
                if list_mode == 1:
                    show_page_range(voffset + i, index + i, 1, f)
                nr_pages[hash_slot(f)] += 1
                total += 1
            index += pages
            count -= pages
    if list_mode == 1:
        show_page_range(0, 0, 0, 0)
        out.append("\n\n")
    out.append(HDR)
    for slot in range(pt.HASH_SIZE):
        if nr_pages[slot]:
            f = table[slot]
            out.append(f"0x{f:016x}\t{nr_pages[slot]:10d} {nr_pages[slot] * 4096 >> 20:8d}  "
                       f"{sym(f)}\t{kpf.long_symbolic(f)}\n")
    out.append(f"             total\t{total:10d} {total * 4096 >> 20:8d}\n")
    return "".join(out)


VALUES = [0, 0x28, 0x68, 0x400068, BUDDY, 0x1000 | 0x28 | 1 << 34, 0x8000 | 0x400000,
          0x10000 | 0x20000, RESERVED | 0x28, 0x2000, 0x80 | 0x40 | 0x2, 0x200]
SPECS = ["lru", "thp", "anonymous,~thp", "=lru,uptodate", "lru,active=lru", "compound",
         "0x400", "reserved", "~lru", "slub_frozen"]


@settings(max_examples=150, deadline=None)
@given(
    runs=st.lists(st.tuples(st.sampled_from(VALUES), st.integers(1, 40)), min_size=1,
                  max_size=30),
    raw=st.booleans(),
    specs=st.lists(st.sampled_from(SPECS), max_size=2),
    ranges=st.lists(st.tuples(st.integers(0, 700), st.integers(0, 300)), max_size=4),
    list_mode=st.sampled_from([0, 1]),
)
def test_matches_a_page_by_page_page_types(runs, raw, specs, ranges, list_mode):
    # A read batch of 37 pages instead of 65536, so that small arrays span several.
    flags = np.repeat(np.array([v for v, _ in runs], dtype=np.uint64), [n for _, n in runs])
    filters = [kpf.parse_bits_spec(s) for s in specs]
    w = pt.walk(*pt.runs_of(flags), raw=raw, filters=filters, ranges=ranges, batch=37)
    got = b"".join(bytes(c) for c in pt.render(w, list_mode=list_mode)).decode()
    assert got == reference_page_types(flags.tolist(), raw, filters, ranges, list_mode, 37)


def test_walk_without_batches_gives_the_same_summary():
    flags = np.repeat(np.array([0, 0x28, BUDDY], dtype=np.uint64), [70000, 3, 200000])
    ranges = [(5, 200000), (0, 10)]
    a = pt.walk(*pt.runs_of(flags), ranges=ranges)
    b = pt.walk(*pt.runs_of(flags), ranges=ranges, batch=0)
    assert pt.summary(a) == pt.summary(b) == [(0, 70005), (0x28, 3), (BUDDY, 130002)]
    assert a.values.size > b.values.size and not b.batches.any()
