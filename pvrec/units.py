"""Parsing and printing durations and sizes the way the command line shows them."""

from __future__ import annotations

import math
import re

from pvrec.errors import PvrecError

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|min|h)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str, what: str = "duration", allow_zero: bool = False) -> float:
    """'250ms', '1s', '1.5s', '2m', '1h' or a bare number of seconds -> seconds."""
    m = _DURATION.match(str(text))
    seconds = float(m.group(1)) * UNIT_SECONDS[m.group(2)] if m else math.nan
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "a duration of 0 or more, such as 0s or 5s" if allow_zero else \
            "a positive duration such as 1s or 500ms"
        raise PvrecError(f"{what} must be {kind}, not {text}")
    return seconds


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as free -h and page sizes)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def format_duration(seconds: float) -> str:
    """75.3 -> '1m15.3s', 4.25 -> '4.2s'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{int(m)}m{s:04.1f}s"
    h, m = divmod(m, 60)
    return f"{int(h)}h{int(m):02d}m{int(s):02d}s"
