"""Every line pvrec prints to stderr goes through say() or warn(): `pvrec: ...`, `pvrec: warning: ...`.

While a live display (the recorder's status line, the render progress bar) owns the terminal,
it installs its own printer with printing_through(), so lines appear above it, not through it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


_printer: Callable[[str], None] = _stderr


def say(message: str) -> None:
    """One line for the user: 'pvrec: MESSAGE'."""
    _printer(f"pvrec: {message}")


def warn(message: str) -> None:
    """One warning line: 'pvrec: warning: MESSAGE'."""
    _printer(f"pvrec: warning: {message}")


def quote(text: str) -> None:
    """A line to copy as it is (an HTML snippet): indented, no prefix."""
    _printer(f"  {text}")


def next_step(command: str) -> None:
    """The command to run next, after a summary line ('next:  pvrec render ...')."""
    _printer(f"next:  {command}")


@contextmanager
def printing_through(printer: Callable[[str], None] | None) -> Iterator[None]:
    """Send every line to printer (a live display's console) while the block runs."""
    global _printer
    if printer is None:
        yield
        return
    old, _printer = _printer, printer
    try:
        yield
    finally:
        _printer = old
