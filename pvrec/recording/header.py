"""header.json as a typed Header, parsed and checked once, so no reader trusts a raw dict.

One definition serves both directions: the writer builds its header.json through
`Header.from_dict(...).to_dict()`, every reader opens a recording through `Header.parse`. A
missing or malformed value that the code needs is a PvrecError naming the key; optional keys
that are absent (or null) take their default; keys this pvrec does not know are kept but not
used (a newer recorder may add some). docs/recording-format.md is the prose of this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.layout import flat_layout, merge_ranges
from pvrec.recording import format as fmt

MAX_PFN_COUNT = 1 << 40  # 4 PiB of 4 KiB pages: anything larger is a damaged header
MAX_PAGE = 1 << 30  # bytes per page, and pages per huge page: bounds, not expectations


@dataclass(frozen=True)
class Zone:
    """A zone of /proc/zoneinfo: its PFN span [start_pfn, end_pfn) on its NUMA node."""

    node: int
    name: str
    start_pfn: int
    end_pfn: int
    present: int = 0


@dataclass(frozen=True)
class Node:
    """A NUMA node and the PFN ranges of its memory blocks."""

    node: int
    ranges: list[list[int]]


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _shown(v: object) -> str:
    """A value for a one-line message: its repr, cut short (a header may hold anything)."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    """Checks the values of one header, naming where each bad one is (`header.json: zone 2 ...`)."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, what: str) -> PvrecError:
        return PvrecError(f"{self.where}: {what}")

    def integer(self, key: str, v: object, low: int = 0, high: int = MAX_PFN_COUNT) -> int:
        if not _is_int(v) or not low <= v <= high:
            raise self.fail(f"{key} must be a whole number from {low} to {high}, not {_shown(v)}")
        return v

    def number(self, key: str, v: object) -> float:
        if not (_is_int(v) or isinstance(v, float)) or not math.isfinite(v) or v < 0:
            raise self.fail(f"{key} must be a number of at least 0, not {_shown(v)}")
        return v

    def text(self, key: str, v: object) -> str:
        if not isinstance(v, str):
            raise self.fail(f"{key} must be a string, not {_shown(v)}")
        return v

    def ranges(self, key: str, v: object, limit: int) -> list[list[int]]:
        """[[start, end), ...] clipped to [0, limit), sorted and merged. Entries that are not two
        whole numbers are left out, as the renderer always did: a range list is a best effort of
        the recorder (an empty list means "unknown: all RAM")."""
        if not isinstance(v, list):
            raise self.fail(f"{key} must be a list of [start, end] PFN ranges, not {_shown(v)}")
        clipped = ([max(0, r[0]), min(limit, r[1])] for r in v
                   if isinstance(r, list) and len(r) == 2 and all(map(_is_int, r)))
        return merge_ranges([r for r in clipped if r[0] < r[1]])

    def entries(self, key: str, what: str, v: object) -> list[dict]:
        if not isinstance(v, list):
            raise self.fail(f"{key} must be a list, not {_shown(v)}")
        for i, entry in enumerate(v):
            if not isinstance(entry, dict):
                raise self.fail(f"{what} {i} is not an object: {_shown(entry)}")
        return v

    def zones(self, v: object) -> list[Zone]:
        out = []
        for i, z in enumerate(self.entries("zones", "zone", v)):
            for key in ("name", "start_pfn", "end_pfn"):
                if z.get(key) is None:
                    raise self.fail(f"zone {i} has no {key}")
            here = f"zone {i} {{}}"
            start = self.integer(here.format("start_pfn"), z["start_pfn"])
            end = self.integer(here.format("end_pfn"), z["end_pfn"])
            if end < start:
                raise self.fail(f"zone {i} ends (end_pfn {end}) before it starts ({start})")
            out.append(Zone(self.integer(here.format("node"), z.get("node", 0)),
                            self.text(here.format("name"), z["name"]), start, end,
                            self.integer(here.format("present"), z.get("present", 0))))
        return out

    def nodes(self, v: object, pfn_count: int) -> list[Node]:
        out = []
        for i, nd in enumerate(self.entries("nodes", "node", v)):
            if nd.get("node") is None:
                raise self.fail(f"node {i} has no node number")
            out.append(Node(self.integer(f"node {i} node", nd["node"]),
                            self.ranges(f"node {i} ranges", nd.get("ranges", []), pfn_count)))
        return out

    def command(self, v: object) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise self.fail(f"command must be a list of strings, not {_shown(v)}")
        return list(v)

    def cgroup_names(self, v: object) -> dict[int, str]:
        if not isinstance(v, dict):
            raise self.fail(f"cgroup_names must be an object of inode: path, not {_shown(v)}")
        out = {}
        for k, path in v.items():
            if not (str(k).isdigit() and str(k).isascii()) or not isinstance(path, str):
                raise self.fail(f"cgroup_names entry {_shown(k)}: {_shown(path)} is not inode: path")
            out[int(k)] = path
        return out


def _optional_text(r: _Reader, key: str, v: object, _n: int) -> str:
    return r.text(key, v)


# How each key is read (after format, format_version and pfn_count, which open the header).
# The order is the order of header.json.
_PARSERS: dict[str, Callable[[_Reader, str, object, int], object]] = {
    "pvrec_version": _optional_text,
    "page_size": lambda r, k, v, n: r.integer(k, v, 1, MAX_PAGE),
    "hpage_pages": lambda r, k, v, n: r.integer(k, v, 1, MAX_PAGE),
    "ram_ranges": lambda r, k, v, n: r.ranges(k, v, n),
    "zones": lambda r, k, v, n: r.zones(v),
    "nodes": lambda r, k, v, n: r.nodes(v, n),
    "layout_source": _optional_text,
    "hostname": _optional_text,
    "kernel": _optional_text,
    "machine": _optional_text,
    "interval": lambda r, k, v, n: r.number(k, v),
    "command": lambda r, k, v, n: r.command(v),
    "source": _optional_text,
    "start_wall": _optional_text,
    "start_unix": lambda r, k, v, n: r.number(k, v),
    "key_every": lambda r, k, v, n: r.integer(k, v, 1, 1 << 31),
    "user": _optional_text,
    "channels": None,  # read in Header.parse: an unknown one is skipped with a warning
    "cgroup_names": lambda r, k, v, n: r.cgroup_names(v),
}


@dataclass
class Header:
    """The header of a recording (docs/recording-format.md), every value checked."""

    pfn_count: int
    format: str = fmt.FORMAT_NAME
    format_version: int = fmt.FORMAT_VERSION
    pvrec_version: str | None = None
    page_size: int = 4096
    hpage_pages: int = 512  # default: one 2 MiB huge page in pages of page_size
    ram_ranges: list[list[int]] = field(default_factory=list)  # [] = unknown: all RAM
    zones: list[Zone] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    layout_source: str | None = None
    hostname: str | None = None
    kernel: str | None = None
    machine: str | None = None
    interval: float | None = None
    command: list[str] = field(default_factory=list)
    source: str | None = None
    start_wall: str | None = None
    start_unix: float | None = None
    key_every: int = 30  # what the writers of headers without the key wrote (not the default now)
    user: str | None = None
    channels: tuple[str, ...] = ("flags",)
    cgroup_names: dict[int, str] = field(default_factory=dict)
    # Not keys of the table: what this pvrec keeps but does not use.
    unknown: dict = field(default_factory=dict, repr=False)  # keys of a newer recorder
    skipped_channels: tuple[str, ...] = ()  # channels of a newer recorder, not read

    # -- reading

    @classmethod
    def parse(cls, raw: object, recording: Path | None = None) -> Header:
        """The Header of a header.json's content; PvrecError naming the key that is wrong.

        recording is the directory, for the messages (None: a header being written).
        """
        where = str(recording / "header.json") if recording is not None else "header"
        r = _Reader(where)
        if not isinstance(raw, dict) or raw.get("format") != fmt.FORMAT_NAME:
            raise PvrecError(f"{recording or 'header'} is not a pvrec recording (header format "
                             f"is not 'pvrec')")
        version = raw.get("format_version")
        if type(version) is not int:
            raise r.fail("format_version is missing")
        fmt.check_readable(version, recording or "header")
        n = raw.get("pfn_count")
        if type(n) is not int:
            raise r.fail("pfn_count is missing")
        if not 0 < n < MAX_PFN_COUNT:
            raise PvrecError(f"{recording or 'header'}: header has an impossible page count")
        values: dict = {"pfn_count": n, "format_version": version}
        for key, parse in _PARSERS.items():
            if parse is not None and raw.get(key) is not None:
                values[key] = parse(r, key, raw[key], n)
        # Without hpage_pages: one 2 MiB huge page (512 pages of 4 KiB), as the renderer did.
        values.setdefault("hpage_pages", max(1, (2 << 20) // values.get("page_size", 4096)))
        channels, skipped = fmt.check_channels(raw.get("channels", ["flags"]),
                                               recording or "header")
        values["channels"], values["skipped_channels"] = channels, skipped
        known = {"format", "format_version", "pfn_count", *_PARSERS}
        values["unknown"] = {k: v for k, v in raw.items() if k not in known}
        return cls(**values)

    @classmethod
    def from_dict(cls, raw: dict) -> Header:
        """A header the program built (the recorder's, a dump's): the same checks."""
        return cls.parse({"format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION,
                          **raw})

    @classmethod
    def for_dump(cls, pfn_count: int, **identity) -> Header:
        """A raw kpageflags dump of an unknown machine: every PFN RAM, no zones or nodes."""
        return cls.from_dict({**flat_layout(pfn_count), **identity, "pfn_count": pfn_count})

    @classmethod
    def live(cls, layout: dict, pfn_count: int, **identity) -> Header:
        """This machine now: its layout (pvrec.kernel.layout) and identity."""
        return cls.from_dict({**layout, **identity, "pfn_count": pfn_count})

    # -- derived figures

    @property
    def ram_pages(self) -> int:
        """Pages that are RAM: in ram_ranges, or every PFN when the ranges are unknown."""
        return sum(e - s for s, e in self.ram_ranges) if self.ram_ranges else self.pfn_count

    @property
    def ram_or_all(self) -> list[list[int]]:
        """The RAM ranges, or [[0, pfn_count]] when they are unknown."""
        return self.ram_ranges or [[0, self.pfn_count]]

    # -- writing

    def to_dict(self) -> dict:
        """The header as header.json holds it: plain JSON values, every key of the table."""
        out: dict = {"format": self.format, "format_version": self.format_version,
                     "pvrec_version": self.pvrec_version}  # first, as a reader looks
        for f in fields(self):
            if f.name in ("unknown", "skipped_channels"):
                continue
            v = getattr(self, f.name)
            if f.name in ("zones", "nodes"):
                v = [_entry(x) for x in v]
            elif f.name == "channels":
                v = list(v)
            elif f.name == "cgroup_names":
                v = {str(k): p for k, p in v.items()}
            elif f.name in ("ram_ranges", "command"):
                v = [list(x) if isinstance(x, list) else x for x in v]
            out[f.name] = v
        return {**out, **self.unknown}


def _entry(x: Zone | Node) -> dict:
    if isinstance(x, Node):
        return {"node": x.node, "ranges": [list(r) for r in x.ranges]}
    return {"node": x.node, "name": x.name, "start_pfn": x.start_pfn, "end_pfn": x.end_pfn,
            "present": x.present}
