"""The kernel's events and the workload's markers in a recording (docs/recording-format.md).

Events are stored in the frame file they fall in (the events read up to the start of that
frame's sample), one int64 array per event type, `events.<type>`, of rows of COLUMNS[type]
laid end to end: the kernel timestamp (ns, the monotonic clock of the frames' `t`), then the
tracepoint's fields. Readers that do not know them never open them (a frame's reader loads the
arrays it names), so a recording with events opens in every version-1 reader. The frame's
index line holds their counts (`events`: all of them, the stored and the dropped) and the
workload's markers (`markers`). Everything here is untrusted input and checked.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from pvrec.kernel.tracefs import EVENTS
from pvrec.recording.format import MAX_MARK_CHARS, FrameError, read_member

ARRAY_PREFIX = "events."
COLUMNS: dict[str, tuple[str, ...]] = {name: ("t_ns",) + fields
                                       for name, (_path, fields) in EVENTS.items()}
DEFAULT_MAX_PER_FRAME = 5000  # of each event type; the rest are counted as dropped
# An extfrag event is one of three fallbacks (the allocator's own words, mm/page_alloc.c):
# a whole free page block taken (not fragmenting), a block claimed for the allocation's
# migratetype, or pages of another type placed in a block that keeps its type (polluting).
FALLBACKS = ("stolen", "claimed", "polluting")


def fallback_kind(fragmenting: np.ndarray, change_ownership: np.ndarray) -> np.ndarray:
    """0 stolen, 1 claimed, 2 polluting (FALLBACKS) for extfrag rows."""
    return np.where(fragmenting == 0, 0, np.where(change_ownership != 0, 1, 2)).astype(np.int8)


def event_arrays(rows: dict[str, list[tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """The frame file's arrays of one frame's stored events (types without events left out)."""
    out = {}
    for name, got in rows.items():
        if got:
            out[ARRAY_PREFIX + name] = np.asarray(got, np.int64).reshape(-1)
    return out


def load_events(path: Path, pfn_limit: int) -> dict[str, np.ndarray]:
    """{type: (n, columns) int64} of one frame file; FrameError if an array is damaged.
    Types this pvrec does not know are skipped; a frame without events gives {}."""
    limit = 8 * pfn_limit + (1 << 20)
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                kind = name.removeprefix(ARRAY_PREFIX)
                if name == kind or kind not in COLUMNS:
                    continue
                arr = read_member(zf, info, name, limit)
                cols = len(COLUMNS[kind])
                if arr.dtype != np.int64 or arr.size % cols:
                    raise FrameError(f"array {name!r} is not rows of {cols} int64")
                out[kind] = arr.reshape(-1, cols)
    except FrameError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError,
            RuntimeError, NotImplementedError, zlib.error) as exc:
        raise FrameError(str(exc) or type(exc).__name__) from None
    return out


def column(rows: np.ndarray, kind: str, name: str) -> np.ndarray:
    """One column of a type's rows, by name."""
    return rows[:, COLUMNS[kind].index(name)]


def clean_text(text: str) -> str:
    """A marker's text as it may be drawn and printed: printable, one line, bounded."""
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:MAX_MARK_CHARS]
