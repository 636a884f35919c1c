"""What the kernel's tools/mm/page-types prints for kpageflags data, computed with numpy on runs.

page-types walks PFNs one at a time: it maps each flag word to its view (well-known, or raw
with the overloaded bits expanded), drops pages that fail a -b filter, prints -l ranges or
-L pages as it goes, and counts pages per distinct flag word in a 8192-slot open-addressing
hash table whose slot order is the order of the summary rows. We do the same work on the
run-length form (a busy 24 GiB machine has ~300,000 runs for 6.5 million pages), so every
step is a numpy operation over runs, and emulate the hash table over the few hundred
distinct values to get the identical row order. Text output is byte for byte page-types'
printf formats; the `*_json` functions give the same numbers for scripts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pvrec import flags as kpf
from pvrec.errors import PvrecError
from pvrec.runs import encode_flags

SUMMARY_HEADER = (
    "             flags\tpage-count       MB  symbolic-flags\t\t\tlong-symbolic-flags\n"
)
LIST_HEADER = "offset\tlen\tflags\n"
LIST_EACH_HEADER = "offset\tflags\n"
LIST_RANGES, LIST_EACH = 1, 2  # page-types' opt_list values for -l and -L

HASH_SIZE = 1 << 13  # page-types' HASH_SHIFT 13
KPAGEFLAGS_BATCH = 64 << 10  # pages page-types reads at a time
ULONG_MAX = (1 << 64) - 1
PAGES_PER_CHUNK = 1 << 16  # -L output is built this many pages at a time: small, cache-friendly

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_POW16 = np.array([16**k for k in range(1, 16)], dtype=np.uint64)


# -- input


def runs_of(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length form of a flags array: (lengths int64, values uint64), neighbours differ."""
    runs = encode_flags(flags)
    return runs.lengths.astype(np.int64), runs.values


def parse_addr_spec(spec: str) -> tuple[int, int]:
    """page-types' addr-spec (N, N+M, N,M, N,, ,M; pages, hex or decimal) -> (offset, size)."""
    text = spec.strip()

    def number(part: str) -> int:
        value = kpf.parse_number(part)
        if value is None or value > ULONG_MAX:
            raise PvrecError(
                f"malformed addr-spec {spec!r}: {part.strip()!r} is not a page number; "
                f"use N, N+M, N,M, N, or ,M (pages, hex 0x.. or decimal)"
            )
        return value

    # As page-types: the first ',' splits, else the first '+'.
    sep = "," if "," in text else "+" if "+" in text else ""
    if not sep:
        return number(text), 1
    left, right = text.split(sep, 1)
    if not left.strip():
        return 0, number(right)
    offset = number(left)
    if not right.strip():
        return offset, ULONG_MAX - offset
    end = number(right)
    if sep == "+":
        return offset, min(end, ULONG_MAX - offset)
    if end < offset:
        raise PvrecError(f"invalid range in addr-spec {spec!r}: {end:#x} is below {offset:#x}")
    return offset, end - offset


def view(values: np.ndarray, raw: bool) -> np.ndarray:
    """The flag words page-types shows: raw (overloaded bits expanded) or well-known."""
    return kpf.expand_overloaded(values) if raw else kpf.well_known(values)


@dataclass
class Walk:
    """The pages page-types visits and keeps, in its walk order, as segments of equal flags.

    Segment i is lengths[i] pages from PFN starts[i], all with flag word values[i] (the
    shown view), read in page-types' read batch batches[i] of its -a range (see walk()).
    Neighbouring segments may have equal values or be PFN-contiguous.
    """

    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64
    values: np.ndarray  # uint64
    batches: np.ndarray  # int64

    @property
    def pages(self) -> int:
        """Pages visited and kept (page-types' total_pages)."""
        return int(self.lengths.sum(dtype=np.int64))


def walk(
    lengths: np.ndarray,
    values: np.ndarray,
    *,
    raw: bool = False,
    filters: Sequence[tuple[int, int]] = (),
    ranges: Sequence[tuple[int, int]] = (),
    batch: int = KPAGEFLAGS_BATCH,
) -> Walk:
    """The pages page-types would count: -a ranges walked in the given order, -b filters ANDed.

    page-types reads each range in batches of 65536 pages and, in -l mode, never joins pages
    of different batches into one line (its walk_pfn restarts the virtual offset it compares
    at each batch), so segments are also cut at batch boundaries and carry their batch number.
    batch=0 skips that (all batch numbers 0): enough for the summary, not for -l.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    shown = view(np.asarray(values, dtype=np.uint64), raw)
    starts = np.zeros(lengths.size, dtype=np.int64)
    if lengths.size:
        np.cumsum(lengths[:-1], out=starts[1:])
    n = int(starts[-1] + lengths[-1]) if lengths.size else 0
    # Each range is walked in turn, so overlapping or repeated ranges count pages again.
    parts = []
    for offset, size in ranges or [(0, ULONG_MAX)]:
        lo, hi = min(offset, n), min(offset + size, n)
        if lo >= hi:
            continue
        i0 = int(np.searchsorted(starts, lo, side="right")) - 1
        i1 = int(np.searchsorted(starts, hi, side="left"))
        s = starts[i0:i1].copy()
        s[0] = lo
        v = shown[i0:i1]
        cuts = np.arange(lo + batch, hi, batch, dtype=np.int64) if batch else None
        if cuts is not None and cuts.size:
            # Both sorted: insert the cuts that are not run starts already (a linear merge).
            at = np.searchsorted(s, cuts)
            new = (at == s.size) | (s[np.minimum(at, s.size - 1)] != cuts)
            at, cuts = at[new], cuts[new]
            s = np.insert(s, at, cuts)
            v = np.insert(v, at, v[at - 1])
        e = np.empty_like(s)
        e[:-1] = s[1:]
        e[-1] = hi
        parts.append((s, e - s, v, (s - lo) // batch if batch else np.zeros_like(s)))
    if not parts:
        empty = np.zeros(0, np.int64)
        return Walk(empty, empty, np.zeros(0, np.uint64), empty)
    starts, lengths, shown, batches = (np.concatenate(c) if len(parts) > 1 else c[0]
                                       for c in zip(*parts, strict=True))
    if filters:
        keep = np.ones(shown.size, dtype=bool)
        for mask, bits in filters:
            keep &= kpf.match_bits(shown, mask, bits)
        starts, lengths, shown, batches = starts[keep], lengths[keep], shown[keep], batches[keep]
    return Walk(starts, lengths, shown, batches)


# -- summary


def hash_slots(values_in_first_seen_order: Iterable[int]) -> list[int]:
    """The slot page-types' hash table gives each distinct value, inserted in walk order.

    Slot 0 is flags 0; others start at flags & 8191 and probe linearly, wrapping to 1. A value
    that finds the table full (page-types dies: "hash table full") gets a slot past the end.
    """
    table = [0] * HASH_SIZE
    slots, overflow = [], HASH_SIZE
    for v in values_in_first_seen_order:
        if v == 0:
            slots.append(0)
            continue
        k = v & (HASH_SIZE - 1)
        for _ in range(1, HASH_SIZE):
            if k == 0 or k >= HASH_SIZE:
                k = 1
            if table[k] == 0:
                table[k] = v
                break
            k += 1
        else:
            k, overflow = overflow, overflow + 1
        slots.append(k)
    return slots


def summary(w: Walk) -> list[tuple[int, int]]:
    """(flags, pages) per distinct flag word, in page-types' row order."""
    if w.values.size == 0:
        return []
    # unique + searchsorted + minimum.at: a third of unique(return_index, return_inverse).
    uniq = np.unique(w.values)
    inverse = np.searchsorted(uniq, w.values)
    first = np.full(uniq.size, w.values.size, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(w.values.size, dtype=np.int64))
    # Float weights are exact: page counts stay far below 2**53.
    counts = np.bincount(inverse, weights=w.lengths, minlength=uniq.size).astype(np.int64)
    seen = np.argsort(first, kind="stable")
    slots = hash_slots(int(v) for v in uniq[seen])
    order = seen[np.argsort(np.array(slots), kind="stable")]
    return [(int(uniq[i]), int(counts[i])) for i in order]


def pages_to_mb(pages: int, page_size: int) -> int:
    """page-types' pages2mb."""
    return ((pages * page_size) & ULONG_MAX) >> 20


def format_summary(rows: list[tuple[int, int]], total: int, page_size: int) -> str:
    """The summary table exactly as page-types prints it, header and total line included."""
    kpf.check_known(np.array([f for f, _ in rows], dtype=np.uint64))
    out = [SUMMARY_HEADER]
    for value, pages in rows:
        # printf("0x%016llx\t%10lu %8lu  %s\t%s\n") of show_summary()
        out.append(
            f"0x{value:016x}\t{pages:10d} {pages_to_mb(pages, page_size):8d}  "
            f"{kpf.symbolic(value)}\t{kpf.long_symbolic(value)}\n"
        )
    out.append(f"             total\t{total:10d} {pages_to_mb(total, page_size):8d}\n")
    return "".join(out)


def format_describe(value: int) -> str:
    """page-types' --describe line for a flag word."""
    kpf.check_known(np.array([value], dtype=np.uint64))
    return f"0x{value:016x}\t{kpf.symbolic(value)}\t{kpf.long_symbolic(value)}\n"


# -- listings


def list_ranges(w: Walk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """page-types -l: (offsets, lengths, values) of maximal PFN-contiguous runs of equal flags.

    A run also ends where page-types' read batch changes (see walk()).
    """
    n = w.values.size
    if n == 0:
        return w.starts, w.lengths, w.values
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(w.values[1:], w.values[:-1], out=new[1:])
    new[1:] |= w.starts[1:] != w.starts[:-1] + w.lengths[:-1]
    new[1:] |= w.batches[1:] != w.batches[:-1]
    first = np.flatnonzero(new)
    return w.starts[first], np.add.reduceat(w.lengths, first), w.values[first]


def _hex_width(x: np.ndarray) -> np.ndarray:
    """Digits printf("%lx") uses for each number."""
    return 1 + np.searchsorted(_POW16, x, side="right")


def _symbol_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The symbolic strings of the distinct values [D, 44] and each value's row in them."""
    uniq = np.unique(values)
    kpf.check_known(uniq)
    # unique + searchsorted: much faster than unique(return_inverse=True) on 300k values.
    return kpf.symbolic_table(uniq), np.searchsorted(uniq, values)


def _hex_block(x: np.ndarray, width: int) -> np.ndarray:
    """printf("%lx") digits of x right-aligned in `width` cells: uint8 [n, width] ASCII."""
    x = x.astype(np.uint32) if width <= 8 else x.astype(np.uint64)
    block = np.empty((x.size, width), dtype=np.uint8)
    for j in range(width):  # one pass per digit over a small contiguous block
        block[:, j] = _HEX[(x >> x.dtype.type(4 * (width - 1 - j))) & x.dtype.type(15)]
    return block


def _lines(n: int, columns: list) -> np.ndarray:
    """n text lines built column by column: ("hex", x) printf %lx, ("sym", values), or bytes.

    The lines are laid out in a byte matrix [n, width] with hex numbers right-aligned in
    their widest width; a mask drops the unused leading digit cells, and a row-major
    boolean selection of the matrix is then the text (uint8), every line's bytes in order.
    """
    widths, prepared = [], []
    for col in columns:
        if isinstance(col, bytes):
            prepared.append(col)
            widths.append(len(col))
        elif col[0] == "hex":
            x = np.asarray(col[1]).astype(np.uint64)
            digits = _hex_width(x)
            prepared.append((x, digits))
            widths.append(int(digits.max()))
        else:
            table, codes = _symbol_codes(col[1])
            prepared.append((table, codes))
            widths.append(table.shape[1])
    matrix = np.empty((n, sum(widths)), dtype=np.uint8)
    used = None
    at = 0
    for col, w in zip(prepared, widths, strict=True):
        if isinstance(col, bytes):
            matrix[:, at : at + w] = np.frombuffer(col, dtype=np.uint8)
        elif col[0].dtype == np.uint64:
            x, digits = col
            matrix[:, at : at + w] = _hex_block(x, w)
            if used is None:
                used = np.ones(matrix.shape, dtype=bool)
            used[:, at : at + w] = digits[:, None] > np.arange(w - 1, -1, -1)
        else:
            table, codes = col
            matrix[:, at : at + w] = np.take(table, codes, axis=0)
        at += w
    return matrix.reshape(-1) if used is None else matrix[used]


def _range_lines(offsets: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> np.ndarray:
    if offsets.size == 0:
        return np.zeros(0, dtype=np.uint8)
    return _lines(offsets.size, [("hex", offsets), b"\t", ("hex", lengths), b"\t",
                                 ("sym", values), b"\n"])


def format_ranges(offsets: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> bytes:
    """The lines of page-types -l after its header: `offset<TAB>len<TAB>symbolic<LF>` in hex."""
    return _range_lines(offsets, lengths, values).tobytes()


def iter_pages(w: Walk, chunk: int = PAGES_PER_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(pfns, values) of every visited page in walk order, at most chunk pages at a time."""
    if w.values.size == 0:
        return
    ends = np.cumsum(w.lengths)
    begins = ends - w.lengths
    total = int(ends[-1])
    for p0 in range(0, total, chunk):
        p1 = min(p0 + chunk, total)
        i0 = int(np.searchsorted(ends, p0, side="right"))
        i1 = int(np.searchsorted(ends, p1 - 1, side="right")) + 1
        a = np.maximum(begins[i0:i1], p0)
        b = np.minimum(ends[i0:i1], p1)
        count = b - a
        # PFN of walk position p in segment j is starts[j] + (p - begins[j]).
        base = w.starts[i0:i1] - begins[i0:i1]
        pfns = np.repeat(base, count) + np.arange(p0, p1, dtype=np.int64)
        yield pfns, np.repeat(w.values[i0:i1], count)


def _page_lines(pfns: np.ndarray, values: np.ndarray) -> np.ndarray:
    if pfns.size == 0:
        return np.zeros(0, dtype=np.uint8)
    return _lines(pfns.size, [("hex", pfns), b"\t", ("sym", values), b"\n"])


def format_pages(pfns: np.ndarray, values: np.ndarray) -> bytes:
    """Lines of page-types -L after its header: `offset<TAB>symbolic<LF>`."""
    return _page_lines(pfns, values).tobytes()


# -- everything page-types prints for one set of options


def render(
    w: Walk, *, list_mode: int = 0, show_summary: bool = True, page_size: int = 4096
) -> Iterator[bytes | np.ndarray]:
    """page-types' whole output for a walk, in chunks (bytes-like): listing, summary."""
    if not (list_mode or show_summary):
        return
    # page-types dies on a bit it cannot name when it prints it; say so before printing.
    kpf.check_known(w.values)
    if list_mode == LIST_RANGES:
        yield LIST_HEADER.encode()
        yield _range_lines(*list_ranges(w))
    elif list_mode == LIST_EACH:
        yield LIST_EACH_HEADER.encode()
        for pfns, values in iter_pages(w):
            yield _page_lines(pfns, values)
    if show_summary:
        if list_mode:
            yield b"\n\n"
        yield format_summary(summary(w), w.pages, page_size).encode()


def flags_json(value: int) -> dict:
    """One flag word for scripts: hex, symbolic letters and long names."""
    return {
        "flags": f"0x{value:016x}",
        "symbolic": kpf.symbolic(value),
        "names": [kpf.name_of(b) for b in kpf.FLAG_NAMES if (value >> b) & 1],
    }


def summary_json(w: Walk, page_size: int) -> dict:
    """The summary table as data: rows in page-types' order and the total."""
    rows = summary(w)
    kpf.check_known(np.array([f for f, _ in rows], dtype=np.uint64))
    total = w.pages
    return {
        "summary": [
            {**flags_json(f), "pages": p, "mb": pages_to_mb(p, page_size)} for f, p in rows
        ],
        "total": {"pages": total, "mb": pages_to_mb(total, page_size)},
    }


def _hex_strings(values: np.ndarray) -> tuple[list[str], dict]:
    """Each value as a "0x%016x" string (looked up per distinct value) and their legend."""
    uniq, inverse = np.unique(values, return_inverse=True)
    kpf.check_known(uniq)
    names = np.array([f"0x{int(v):016x}" for v in uniq], dtype=object)
    legend = {}
    for v in uniq:
        entry = flags_json(int(v))
        legend[entry.pop("flags")] = entry
    return names[inverse.reshape(-1)].tolist(), legend


def ranges_json(w: Walk) -> dict:
    """The -l listing as columns (offset, length, flags) plus a legend of the flag words."""
    offsets, lengths, values = list_ranges(w)
    hexes, legend = _hex_strings(values)
    return {"ranges": {"offset": offsets.tolist(), "length": lengths.tolist(), "flags": hexes},
            "legend": legend}


def pages_json(w: Walk) -> dict:
    """The -L listing as columns (offset, flags) plus a legend of the flag words."""
    offsets, flag_strings, legend = [], [], {}
    for pfns, values in iter_pages(w):
        hexes, part = _hex_strings(values)
        offsets += pfns.tolist()
        flag_strings += hexes
        legend.update(part)
    return {"pages": {"offset": offsets, "flags": flag_strings}, "legend": legend}
