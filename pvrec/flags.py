"""The KPF bit table of /proc/kpageflags with page-types' names and letters, and its bits-spec.

Names, letters and the filtering rules follow the kernel's tools/mm/page-types.c (upstream
table: bit 34 is owner_2, there is no slob_free), so that what pvrec prints reads like what
page-types prints for the same data.
"""

from __future__ import annotations

import re

import numpy as np

from pvrec.errors import PvrecError

# Stable bits (include/uapi/linux/kernel-page-flags.h).
LOCKED, ERROR, REFERENCED, UPTODATE, DIRTY, LRU, ACTIVE, SLAB = range(8)
WRITEBACK, RECLAIM, BUDDY, MMAP, ANON, SWAPCACHE, SWAPBACKED = range(8, 15)
COMPOUND_HEAD, COMPOUND_TAIL, HUGE, UNEVICTABLE, HWPOISON, NOPAGE = range(15, 21)
KSM, THP, OFFLINE, ZERO_PAGE, IDLE, PGTABLE = 21, 22, 23, 24, 25, 26
# Kernel-hacking bits (raw mode only).
RESERVED, MLOCKED, OWNER_2, PRIVATE, PRIVATE_2, OWNER_PRIVATE = 32, 33, 34, 35, 36, 37
ARCH, UNCACHED, SOFTDIRTY, ARCH_2 = 38, 39, 40, 41
# page-types' own slots for expanded overloaded flags (not kernel ABI).
ANON_EXCLUSIVE, READAHEAD, SLUB_FROZEN, SLUB_DEBUG = 47, 48, 50, 51
FILE, SWAP, MMAP_EXCLUSIVE = 61, 62, 63

# bit -> "letter:name", in page-types' order (which is bit order).
FLAG_NAMES: dict[int, str] = {
    LOCKED: "L:locked",
    ERROR: "E:error",
    REFERENCED: "R:referenced",
    UPTODATE: "U:uptodate",
    DIRTY: "D:dirty",
    LRU: "l:lru",
    ACTIVE: "A:active",
    SLAB: "S:slab",
    WRITEBACK: "W:writeback",
    RECLAIM: "I:reclaim",
    BUDDY: "B:buddy",
    MMAP: "M:mmap",
    ANON: "a:anonymous",
    SWAPCACHE: "s:swapcache",
    SWAPBACKED: "b:swapbacked",
    COMPOUND_HEAD: "H:compound_head",
    COMPOUND_TAIL: "T:compound_tail",
    HUGE: "G:huge",
    UNEVICTABLE: "u:unevictable",
    HWPOISON: "X:hwpoison",
    NOPAGE: "n:nopage",
    KSM: "x:ksm",
    THP: "t:thp",
    OFFLINE: "o:offline",
    ZERO_PAGE: "z:zero_page",
    IDLE: "i:idle_page",
    PGTABLE: "g:pgtable",
    RESERVED: "r:reserved",
    MLOCKED: "m:mlocked",
    OWNER_2: "d:owner_2",
    PRIVATE: "P:private",
    PRIVATE_2: "p:private_2",
    OWNER_PRIVATE: "O:owner_private",
    ARCH: "h:arch",
    UNCACHED: "c:uncached",
    SOFTDIRTY: "f:softdirty",
    ARCH_2: "H:arch_2",
    ANON_EXCLUSIVE: "d:anon_exclusive",
    READAHEAD: "I:readahead",
    SLUB_FROZEN: "A:slub_frozen",
    SLUB_DEBUG: "E:slub_debug",
    FILE: "F:file",
    SWAP: "w:swap",
    MMAP_EXCLUSIVE: "1:mmap_exclusive",
}
FLAG_NAMES = dict(sorted(FLAG_NAMES.items()))

ALL_BITS = (1 << 64) - 1
HACKERS_BITS = 0xFFFF << 32
COMPOUND_BITS = (1 << COMPOUND_HEAD) | (1 << COMPOUND_TAIL)
KNOWN_BITS = sum(1 << b for b in FLAG_NAMES)
_BIT_INDEX = np.array(list(FLAG_NAMES), dtype=np.uint64)
_LETTERS = np.frombuffer("".join(e[0] for e in FLAG_NAMES.values()).encode(), dtype=np.uint8)


def bit(n: int) -> int:
    """The mask of KPF bit n."""
    return 1 << n


def name_of(b: int) -> str:
    """The long name of bit b ('anonymous'), or 'bitN' for a bit page-types has no name for."""
    entry = FLAG_NAMES.get(b)
    return entry[2:] if entry else f"bit{b}"


def symbolic(flags: int) -> str:
    """page-types' symbolic string: one letter per named bit, '_' where it is clear."""
    return "".join(e[0] if (flags >> b) & 1 else "_" for b, e in FLAG_NAMES.items())


def long_symbolic(flags: int) -> str:
    """page-types' long-symbolic string: the names of the set bits, comma separated."""
    return ",".join(e[2:] for b, e in FLAG_NAMES.items() if (flags >> b) & 1)


def unknown_bits(flags: int) -> int:
    """The set bits page-types has no name for (it refuses such data)."""
    return flags & ~KNOWN_BITS & ALL_BITS


def check_known(values: np.ndarray) -> None:
    """Raise PvrecError for a flag word with a bit page-types has no name for, as it does."""
    values = np.asarray(values, dtype=np.uint64)
    bad = values & np.uint64(~KNOWN_BITS & ALL_BITS)
    if values.size and bad.any():
        word = int(np.bitwise_or.reduce(bad))
        b = (word & -word).bit_length() - 1
        raise PvrecError(
            f"unknown flag bit {b} (page-types has no name for it and refuses it too); "
            f"a newer kernel than pvrec's flag table?"
        )


def symbolic_table(values: np.ndarray) -> np.ndarray:
    """symbolic() of many words at once: a uint8 array [len(values), len(FLAG_NAMES)] of ASCII."""
    values = np.asarray(values, dtype=np.uint64).reshape(-1, 1)
    set_ = ((values >> _BIT_INDEX) & np.uint64(1)).astype(bool)
    return np.where(set_, _LETTERS, np.uint8(ord("_")))


def well_known(flags: np.ndarray) -> np.ndarray:
    """page-types' default view: hide kernel-hacking bits and compound bits of non-hugetlb pages."""
    f = flags & np.uint64(~HACKERS_BITS & ALL_BITS)
    compound_not_huge = ((f & np.uint64(COMPOUND_BITS)) != 0) & ((f & np.uint64(bit(HUGE))) == 0)
    return np.where(compound_not_huge, f & np.uint64(~COMPOUND_BITS & ALL_BITS), f)


def expand_overloaded(flags: np.ndarray) -> np.ndarray:
    """page-types' raw view (no pid): split the overloaded bits into their meanings."""
    f = flags.copy()
    u = np.uint64

    def has(x: np.ndarray, b: int) -> np.ndarray:
        return (x & u(bit(b))) != 0

    swap = has(f, ANON) & has(f, OWNER_2)
    f[swap] ^= u(bit(OWNER_2) | bit(ANON_EXCLUSIVE))
    slab = has(f, SLAB)
    m = slab & has(f, ACTIVE)
    f[m] ^= u(bit(ACTIVE) | bit(SLUB_FROZEN))
    m = slab & has(f, ERROR)
    f[m] ^= u(bit(ERROR) | bit(SLUB_DEBUG))
    m = (f & u(bit(RECLAIM) | bit(WRITEBACK))) == u(bit(RECLAIM))
    f[m] ^= u(bit(RECLAIM) | bit(READAHEAD))
    return f


def valid_names() -> str:
    """The names a bits-spec accepts, as one comma-separated line (for error messages)."""
    return ", ".join(["compound"] + [e[2:] for e in FLAG_NAMES.values()])


_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def parse_number(text: str) -> int | None:
    """A number as page-types' strtoull(text, 0) reads it (0x hex, 0 octal, decimal), else None.

    Stricter than strtoull: trailing garbage and signs are refused instead of ignored.
    """
    t = text.strip()
    if not _NUMBER.fullmatch(t):
        return None
    if t[:2] in ("0x", "0X"):
        return int(t[2:], 16)
    return int(t, 8) if t.startswith("0") else int(t)


def _parse_flag_name(name: str) -> int:
    """A flag name (a prefix is enough, first match in bit order, as page-types) or a number."""
    if not name:
        return 0
    if len(name) <= 8 and "compound".startswith(name):
        return COMPOUND_BITS
    for b, entry in FLAG_NAMES.items():
        if entry[2:].startswith(name):
            return bit(b)
    value = parse_number(name)
    if value is None:
        raise PvrecError(f"unknown flag name or number {name!r}; valid names: {valid_names()}")
    if value > ALL_BITS:
        raise PvrecError(f"flag number {name!r} does not fit in 64 bits")
    return value


def _parse_flag_names(text: str, include_negated: bool) -> int:
    """OR of a comma-separated list; `~name` items count only when include_negated."""
    flags = 0
    for item in text.split(","):
        if item.startswith("~"):
            if include_negated:
                flags |= _parse_flag_name(item[1:])
        else:
            flags |= _parse_flag_name(item)
    return flags


def parse_flags(text: str) -> int:
    """The flag word of a comma-separated list of names or numbers, as page-types' --describe."""
    # page-types stops at '=' and skips ~negated items here; so do we.
    return _parse_flag_names(text.split("=", 1)[0], False)


def parse_bits_spec(spec: str) -> tuple[int, int]:
    """page-types' bits-spec -> (mask, bits); bits == ALL_BITS means 'any of mask is set'.

    `a,b` any of a, b set; `a,b=a` or `a,~b` exactly a of a|b; `=a,b` flags equal a|b.
    """
    spec = spec.strip()
    if not spec:
        raise PvrecError("empty bits-spec; e.g. 'thp', 'anonymous,~thp', '=lru,active'")
    if spec.count("=") > 1:
        raise PvrecError(f"bits-spec {spec!r} has more than one '='")
    if "=" in spec:
        left, right = spec.split("=")
        mask = ALL_BITS if left == "" else _parse_flag_names(left, False)
        return mask, _parse_flag_names(right, False)
    if "~" in spec:
        return _parse_flag_names(spec, True), _parse_flag_names(spec, False)
    return _parse_flag_names(spec, False), ALL_BITS


def match_bits(flags: np.ndarray, mask: int, bits: int) -> np.ndarray:
    """Boolean array: which flag words pass one (mask, bits) filter, as page-types' bit_mask_ok."""
    masked = flags & np.uint64(mask)
    if bits == ALL_BITS:
        return masked != 0
    return masked == np.uint64(bits)
