"""--region SPEC: the part of physical memory a render, snapshot or `metrics` looks at.

A region is a PFN window [start, end) of whole huge-page rows (a row is one huge page, so THP
and hugetlb blocks stay whole). The spec is one of:

    4G-8G  4G+512M  0x100000000-0x200000000    physical addresses (K, M, G, T: binary units)
    Normal  DMA32  Normal@1                    a zone (NAME@NODE on a NUMA machine)
    node1                                      a NUMA node
    changed                                    the pages whose class changed in the frames
                                               looked at (the caller knows which: `changed`)

Parsing is pure: the header says what the zones, nodes and RAM are. Every bad spec is one
PvrecError line naming what is valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pvrec.errors import PvrecError
from pvrec.recording.header import Header

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_ADDRESS = re.compile(r"\s*(0x[0-9a-f]+|[0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", re.I)


@dataclass(frozen=True)
class Region:
    """A PFN window [start, end) of whole huge-page rows, and what the user called it."""

    start: int
    end: int
    spec: str

    @property
    def pages(self) -> int:
        return self.end - self.start


def whole(header: Header) -> Region:
    """All of the recording's page frames."""
    return Region(0, header.pfn_count, "all")


def parse_address(text: str) -> int:
    """'4G', '512M', '0x100000000', '1.5G' -> bytes; ValueError if it is none of these."""
    m = _ADDRESS.fullmatch(text)
    if not m:
        raise ValueError(text)
    number, unit = m.group(1), m.group(2).lower()
    value = int(number, 16) if number.lower().startswith("0x") else float(number)
    if unit == "" and isinstance(value, float) and not value.is_integer():
        raise ValueError(text)
    return int(value * _UNITS[unit])


def zone_names(header: Header) -> list[str]:
    """The zone names a spec may give: NAME, and NAME@NODE on a machine of several nodes."""
    names = list(dict.fromkeys(z.name for z in header.zones))
    if len({z.node for z in header.zones}) > 1:
        names += [f"{z.name}@{z.node}" for z in header.zones]
    return names


def parse_region(spec: str, header: Header,
                 changed: Callable[[], tuple[int, int] | None] | None = None) -> Region:
    """The Region of a spec (see the module docstring); changed() gives the [lo, hi) PFNs
    holding every page that changed class (None: nothing changed)."""
    text = spec.strip()
    span = _span(text, header, changed)
    row = header.hpage_pages
    start = max(0, span[0] - span[0] % row)
    end = min(header.pfn_count, -(-span[1] // row) * row)
    if start >= end:
        raise PvrecError(f"--region {spec}: {_ram_span(header)}; the region is empty there")
    if not any(s < end and start < e for s, e in header.ram_or_all):
        raise PvrecError(f"--region {spec} holds no RAM: {_ram_span(header)}")
    return Region(start, end, text)


def _span(text: str, header: Header,
          changed: Callable[[], tuple[int, int] | None] | None) -> tuple[int, int]:
    """[first, end) PFNs the spec names, before rounding to rows."""
    ps = header.page_size
    if text.lower() == "changed" and changed is not None:
        got = changed()
        if got is None:
            raise PvrecError("--region changed: no page changed class in the frames rendered; "
                             "give an address range or a zone instead")
        return got
    if text.lower().startswith("node") and text[4:].isdigit():
        nodes = [nd for nd in header.nodes if nd.node == int(text[4:]) and nd.ranges]
        if nodes:
            return nodes[0].ranges[0][0], nodes[0].ranges[-1][1]
        raise PvrecError(f"--region {text}: this recording has no memory on {text.lower()}; "
                         f"use {_named(header)}or an address range")
    zones = _zones_named(text, header)
    if zones:
        return min(z.start_pfn for z in zones), max(z.end_pfn for z in zones)
    if "@" in text and _zones_named(text.partition("@")[0], header):
        raise PvrecError(f"--region {text}: no such zone on that node; "
                         f"use {_named(header)}or an address range")
    m = re.fullmatch(r"(.+?)([-+])(.+)", text)
    if m:
        try:
            a, b = parse_address(m.group(1)), parse_address(m.group(3))
        except ValueError:
            pass
        else:
            end = a + b if m.group(2) == "+" else b
            if end <= a:
                raise PvrecError(f"--region {text}: the end is not after the start")
            if a >= header.pfn_count * ps:
                raise PvrecError(f"--region {text} starts beyond the memory: "
                                 f"{_ram_span(header)}")
            return a // ps, -(-end // ps)
    raise PvrecError(f"--region {text!r}: use an address range (4G-8G, 4G+512M, "
                     f"0x100000000-0x200000000), {_named(header)}or changed; "
                     f"{_ram_span(header)}")


def _zones_named(text: str, header: Header) -> list:
    name, _, node = text.partition("@")
    return [z for z in header.zones if z.name.lower() == name.lower()
            and (not node or (node.isdigit() and z.node == int(node)))]


def _named(header: Header) -> str:
    """'a zone (DMA, DMA32, Normal), a node (node0, node1), ' as far as the header knows."""
    out = ""
    if header.zones:
        out += f"a zone ({', '.join(zone_names(header))}), "
    nodes = [f"node{nd.node}" for nd in header.nodes if nd.ranges]
    if nodes:
        out += f"a node ({', '.join(nodes)}), "
    return out


def _ram_span(header: Header) -> str:
    from pvrec.units import format_bytes

    ram = header.ram_or_all
    lo, hi = ram[0][0] * header.page_size, ram[-1][1] * header.page_size
    return f"RAM spans {format_bytes(lo)} - {format_bytes(hi)} ({lo:#x}-{hi:#x})"
