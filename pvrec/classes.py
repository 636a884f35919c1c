"""Page classes: which named kind each page's flags say it is, and the colour that kind gets.

A scheme turns u64 flag words into small class numbers (uint8, class 0 is always the hole:
not RAM, or nopage). Three kinds: the built-in semantic scheme (one class per kind of use, by
priority), the seed article's scheme (every flag combination left after dropping noise flags
is its own state), and a user's TOML file of page-types bits-specs (classes_toml.py; pages by
memory cgroup are classes_cgroup.py's). Frames have a few hundred
distinct flag words among millions of pages, so schemes classify distinct values only and a
ValueClassifier caches them; the pages get their class by np.repeat over the runs.
Colours are fixed per class name (not per run or per position), so the same class has the same
colour in every render; they are drawn from the Okabe-Ito and Paul Tol colour-blind-safe sets,
with the neutral classes (free, no flags, reserved) told apart by lightness alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvrec import flags as F
from pvrec.errors import PvrecError
from pvrec.runs import Runs, add_pages_per_value

RGB = tuple[int, int, int]
HOLE = 0  # class number of "not RAM / nopage" in every scheme
MAX_CLASSES = 200  # the rest of the 256-entry palette is the picture's own colours
THEMES = ("light", "dark")


@dataclass(frozen=True)
class PageClass:
    """One class: its name, the rule that selects it, and its colour in each theme."""

    name: str
    light: RGB
    dark: RGB
    rule: str = ""  # bits-spec(s) as the user would write them, for `pvrec classes`
    description: str = ""

    def color(self, theme: str) -> RGB:
        return self.dark if theme == "dark" else self.light


def parse_color(text: object, what: str = "colour") -> RGB:
    """'#rrggbb', '#rgb', 'rgb(r,g,b)' or a CSS colour name -> (r, g, b)."""
    if not isinstance(text, str):
        raise PvrecError(f"{what} {text!r} is not a colour; use e.g. \"#56B4E9\"")
    t = text.strip()
    m = re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", t)
    if m and (t.startswith("#") or len(t) == 6):
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    try:
        from PIL import ImageColor

        rgb = ImageColor.getrgb(t)
    except (ValueError, ImportError):
        raise PvrecError(
            f"{what} {text!r} does not parse; use #rrggbb, #rgb or a CSS name like 'orange'"
        ) from None
    return tuple(rgb[:3])  # type: ignore[return-value]


def hex_color(rgb: RGB) -> str:
    """(r, g, b) -> '#RRGGBB'."""
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def colors_of(light: str, dark: str | None = None) -> tuple[RGB, RGB]:
    """A class's (light, dark) colours; the dark one defaults to the light one."""
    lc = parse_color(light)
    return lc, parse_color(dark) if dark else lc


# The built-in semantic scheme, in priority order: a page is the first class whose bits-spec
# matches its flags. mlocked/unevictable comes before anonymous/shmem/page cache so that
# locked pages show at all (they are always also anon or file).
# (name, bits-specs (any matches), light colour, dark colour, description)
_DEFAULT_TABLE: list[tuple[str, tuple[str, ...], str, str | None, str]] = [
    ("hole", ("nopage",), "#FFFFFF", "#101010", "not RAM (a hole in the layout), or nopage"),
    ("hwpoison", ("hwpoison",), "#EE3377", None, "hardware memory error, taken out of use"),
    ("offline", ("offline",), "#AA4499", "#CC66BB", "logically offline (balloon, hotplug)"),
    ("free", ("buddy",), "#DCDCDC", "#303030", "free: in the buddy allocator"),
    ("hugetlb", ("huge",), "#332288", "#7766DD", "hugetlbfs huge pages (reserved or in use)"),
    # The kernel sets thp on every large folio on an LRU, file ones included: those are page
    # cache (below), or the page cache of a busy machine would be drawn as THP.
    ("THP", ("thp,anonymous=thp,anonymous",), "#D55E00", None,
     "anonymous transparent huge pages"),
    ("slab", ("slab",), "#009E73", None, "kernel slab caches"),
    ("page table", ("pgtable",), "#F0E442", None, "page tables"),
    ("zero/KSM", ("zero_page,ksm",), "#999933", "#BBBB55", "the zero page and KSM-merged pages"),
    ("mlocked", ("mlocked,unevictable",), "#882255", "#BB4477", "mlocked or unevictable"),
    ("anonymous", ("anonymous",), "#E69F00", None, "anonymous memory (heap, stack)"),
    ("shmem", ("swapbacked",), "#CC79A7", None, "shared memory and tmpfs"),
    ("page cache", ("lru,mmap,uptodate,dirty,writeback",), "#56B4E9", None,
     "file pages: page cache (large folios too), mapped files"),
    ("reserved", ("reserved",), "#5E5E5E", "#B0B0B0", "reserved at boot (kernel image, memmap)"),
    ("other kernel", ("",), "#0072B2", None, "flags set, but none of the above"),
    ("no flags", ("=",), "#9E9E9E", "#646464", "no flags: kernel-owned or untracked"),
]

# Colours for data-driven and user classes that do not name one: Okabe-Ito, then Tol muted.
SERIES_COLORS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
                 "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
                 "#882255", "#AA4499"]
OTHER_COLOR = colors_of("#BBBBBB", "#555555")

# The article's noise flags, dropped by --classes flags unless --ignore-flags says otherwise.
DEFAULT_IGNORE = "referenced,uptodate"


def compile_spec(spec: str) -> tuple[int, int]:
    """A bits-spec of a rule; '' means any flag set, '=' means no flag at all."""
    if spec == "":
        return F.ALL_BITS, F.ALL_BITS
    return F.parse_bits_spec(spec)


class Scheme:
    """An ordered list of classes and the function from flag values to class numbers."""

    name = "scheme"
    needs_data = False  # True: fit() must see the recording's values before classify()
    by_runs = False  # True: a page's class depends on its neighbours (classify_runs)

    def __init__(self, classes: list[PageClass]):
        if len(classes) > MAX_CLASSES:
            raise PvrecError(f"too many classes ({len(classes)}); at most {MAX_CLASSES}")
        self.classes = classes

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def index(self, name: str) -> int:
        """The class number of a class name (KeyError if absent)."""
        for i, c in enumerate(self.classes):
            if c.name == name:
                return i
        raise KeyError(name)

    def colors(self, theme: str = "light") -> np.ndarray:
        """(n, 3) uint8 colours of the classes in this theme."""
        return np.array([c.color(theme) for c in self.classes], dtype=np.uint8).reshape(-1, 3)

    def classify_values(self, values: np.ndarray) -> np.ndarray:
        """uint8 class number of each flag value (no position involved)."""
        raise NotImplementedError

    def fit(self, values: np.ndarray, pages: np.ndarray) -> None:
        """See the recording's distinct values and their page counts (data-driven schemes)."""

    def classify_runs(self, values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """uint8 class number of each run of a frame (by_runs schemes: folio sizes)."""
        raise NotImplementedError

    def class_counts(self) -> np.ndarray | None:
        """A number per class of the frame classified last, for the legend (folios), or None."""
        return None


class RuleScheme(Scheme):
    """First matching rule wins; each class has one or more page-types bits-specs."""

    def __init__(self, name: str, classes: list[PageClass], rules: list[list[tuple[int, int]]],
                 fallback: int):
        super().__init__(classes)
        self.name = name
        self.rules = rules  # per class, its (mask, bits) filters; [] = never by rule
        self.fallback = fallback

    def classify_values(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.uint64)
        out = np.full(values.shape, self.fallback, dtype=np.uint8)
        left = np.ones(values.shape, dtype=bool)
        for cls, filters in enumerate(self.rules):
            for mask, bits in filters:
                m = F.match_bits(values, mask, bits) & left
                out[m] = cls
                left &= ~m
        return out


def default_scheme() -> RuleScheme:
    """The built-in semantic scheme of DESIGN.md."""
    classes, rules = [], []
    for name, specs, light, dark, desc in _DEFAULT_TABLE:
        lc, dc = colors_of(light, dark)
        classes.append(PageClass(name, lc, dc, " | ".join(s or "any flag" for s in specs), desc))
        rules.append([compile_spec(s) for s in specs])
    return RuleScheme("default", classes, rules, fallback=len(classes) - 1)


def _shade(rgb: RGB, k: int) -> RGB:
    """The k-th variant of a colour: alternately lighter and darker, further each step."""
    if k == 0:
        return rgb
    step = (k + 1) // 2
    f = min(0.2 * step, 0.8)
    target = 255 if k % 2 else 0
    return tuple(int(round(c + (target - c) * f)) for c in rgb)  # type: ignore[return-value]


class FlagsScheme(Scheme):
    """The seed article's scheme: each flag combination (noise flags dropped) is one state.

    Values are first put in page-types' default view (kernel-hacking bits and the compound bits
    of non-hugetlb pages hidden), then the ignored bits are cleared. The most common states of
    the recording (seen through fit()) get their own class, most common first; the rest are
    "other". Each state takes the colour of its semantic class, shaded when a semantic class
    has several states, so colours keep their meaning across renders.
    """

    name = "flags"
    needs_data = True

    def __init__(self, ignore: str = DEFAULT_IGNORE, max_states: int = 16):
        mask = 0
        if ignore.strip():
            for item in ignore.split(","):
                item = item.strip()
                if item.startswith("~") or "=" in item:
                    raise PvrecError(f"--ignore-flags takes flag names, not {item!r}")
                mask |= F.parse_bits_spec(item)[0]
        self.ignore = mask
        self.keep_mask = np.uint64(~mask & F.ALL_BITS)
        self.max_states = max_states
        self.semantic = default_scheme()
        self.states = np.zeros(0, dtype=np.uint64)  # sorted
        self.state_class = np.zeros(0, dtype=np.uint8)
        super().__init__(self._classes([]))

    def view(self, values: np.ndarray) -> np.ndarray:
        """The state of each flag value: page-types view, noise flags cleared."""
        return F.well_known(np.asarray(values, dtype=np.uint64)) & self.keep_mask

    def fit(self, values: np.ndarray, pages: np.ndarray) -> None:
        states = self.view(values)
        nopage = (states & np.uint64(F.bit(F.NOPAGE))) != 0
        uniq, inv = np.unique(states[~nopage], return_inverse=True)
        counts = np.bincount(inv.reshape(-1), weights=np.asarray(pages)[~nopage],
                             minlength=uniq.size)
        order = np.lexsort((uniq, -counts))  # most pages first, ties by value: deterministic
        chosen = uniq[order[: self.max_states]]
        self.classes = self._classes([int(v) for v in chosen])
        sorter = np.argsort(chosen)
        self.states = chosen[sorter]
        self.state_class = (sorter + 1).astype(np.uint8)

    def _classes(self, chosen: list[int]) -> list[PageClass]:
        hole = self.semantic.classes[HOLE]
        out = [hole]
        seen: dict[int, int] = {}
        sem = self.semantic.classify_values(np.array(chosen, dtype=np.uint64)) if chosen else []
        for value, s in zip(chosen, sem, strict=True):
            base = self.semantic.classes[int(s)]
            k = seen.get(int(s), 0)
            seen[int(s)] = k + 1
            name = F.long_symbolic(value) or "(no flags)"
            out.append(PageClass(name, _shade(base.light, k), _shade(base.dark, k),
                                 f"={name}" if value else "=", f"a state of: {base.name}"))
        out.append(PageClass("other", *OTHER_COLOR, "any other combination",
                             "the less common flag combinations"))
        return out

    def classify_values(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.uint64)
        states = self.view(values)
        out = np.full(values.shape, len(self.classes) - 1, dtype=np.uint8)
        if self.states.size:
            pos = np.minimum(np.searchsorted(self.states, states), self.states.size - 1)
            hit = self.states[pos] == states
            out[hit] = self.state_class[pos[hit]]
        out[(values & np.uint64(F.bit(F.NOPAGE))) != 0] = HOLE
        return out


def make_scheme(spec: str | None = None, ignore_flags: str | None = None) -> Scheme:
    """--classes default | flags | folio | FILE.toml -> a scheme (flags still needs fit())."""
    spec = spec or "default"
    if ignore_flags is not None and spec != "flags":
        raise PvrecError("--ignore-flags applies to --classes flags only")
    if spec == "default":
        return default_scheme()
    if spec == "flags":
        return FlagsScheme(DEFAULT_IGNORE if ignore_flags is None else ignore_flags)
    if spec == "folio":
        from pvrec.classes_folio import FolioScheme

        return FolioScheme()
    if spec.endswith(".toml") or Path(spec).is_file():
        from pvrec.classes_toml import load_toml_scheme  # only when a file is named

        return load_toml_scheme(spec)
    raise PvrecError(f"--classes {spec!r}: use default, flags, folio, or a FILE.toml of your "
                     "own classes")


class ValueClassifier:
    """Class numbers of flag values, cached: frames repeat the same few hundred values.

    Lookup is a hash table (multiply-shift) checked for an exact match, a few ns a value;
    values not seen before are classified by the scheme and the table is rebuilt.
    """

    _MULT = np.uint64(0x9E3779B97F4A7C15)
    MAX_BITS = 18  # 256 Ki slots (2.3 MB); beyond that a sorted table and binary search

    def __init__(self, scheme: Scheme):
        self.scheme = scheme
        self.known = np.zeros(0, dtype=np.uint64)
        self.known_class = np.zeros(0, dtype=np.uint8)
        self._shift = np.uint64(60)
        self._table_v: np.ndarray | None = None
        self._table_c = np.zeros(16, dtype=np.uint8)

    def __call__(self, values: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Class of each run's value; a by_runs scheme needs the runs' lengths too."""
        if self.scheme.by_runs:
            if lengths is None:
                raise ValueError(f"the {self.scheme.name} scheme classifies runs, not values")
            return self.scheme.classify_runs(values, lengths)
        values = np.asarray(values, dtype=np.uint64)
        if values.size == 0:
            return np.zeros(0, dtype=np.uint8)
        got = self._lookup(values)
        if got is None:
            self._learn(self._unknown(values))
            got = self._lookup(values)
            assert got is not None
        return got

    def _unknown(self, values: np.ndarray) -> np.ndarray:
        """The values not in the table (a few new ones among 300k, usually)."""
        if self._table_v is not None:
            return values[self._table_v[self._slots(values)] != values]
        if self.known.size == 0:
            return values
        pos = np.minimum(np.searchsorted(self.known, values), self.known.size - 1)
        return values[self.known[pos] != values]

    def _slots(self, values: np.ndarray) -> np.ndarray:
        h = values * self._MULT
        h >>= self._shift
        return h.astype(np.intp)

    def _lookup(self, values: np.ndarray) -> np.ndarray | None:
        if self._table_v is not None:  # hash table
            slot = self._slots(values)
            if np.array_equal(self._table_v[slot], values):
                return self._table_c[slot]
            return None
        if self.known.size == 0:
            return None
        pos = np.searchsorted(self.known, values)  # sorted table (many distinct values)
        np.minimum(pos, self.known.size - 1, out=pos)
        if not np.array_equal(self.known[pos], values):
            return None
        return self.known_class[pos]

    def _learn(self, values: np.ndarray) -> None:
        new = np.setdiff1d(np.unique(values), self.known, assume_unique=True)
        known = np.concatenate((self.known, new))
        classes = np.concatenate((self.known_class, self.scheme.classify_values(new)))
        order = np.argsort(known, kind="stable")
        self.known, self.known_class = known[order], classes[order]
        self._table_v = None
        bits = max(4, int(self.known.size).bit_length() + 4)
        while bits <= self.MAX_BITS:  # a table where no two known values share a slot
            self._shift = np.uint64(64 - bits)
            slot = self._slots(self.known)
            if np.unique(slot).size == slot.size:
                # An empty slot holds a known value: that value hashes elsewhere, so no
                # lookup that lands on the empty slot can match it.
                self._table_v = np.full(1 << bits, self.known[0], dtype=np.uint64)
                self._table_c = np.zeros(1 << bits, dtype=np.uint8)
                self._table_v[slot] = self.known
                self._table_c[slot] = self.known_class
                return
            bits += 1


def fit_scheme(scheme: Scheme, frames: Iterable[Runs]) -> None:
    """Show a data-driven scheme the flag runs of some frames, then fit it."""
    if not scheme.needs_data:
        return
    acc: dict[int, int] = {}
    for runs in frames:
        add_pages_per_value(runs, acc)
    vals = np.array(list(acc), dtype=np.uint64)
    scheme.fit(vals, np.array(list(acc.values()), dtype=np.float64))


__all__ = ["HOLE", "PageClass", "Scheme", "RuleScheme", "FlagsScheme", "ValueClassifier",
           "default_scheme", "make_scheme", "parse_color", "fit_scheme", "THEMES", "hex_color"]
