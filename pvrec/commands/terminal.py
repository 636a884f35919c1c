"""A live display on the terminal (rich): the recorder's status line, the render progress bar.

Only on a terminal; while it is shown, every line pvrec prints (pvrec.messages) goes through its
console, so messages appear above it instead of being drawn through it.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack

from pvrec.messages import printing_through


class LiveDisplay:
    """Base of the live displays: make() builds the rich renderable's Live or Progress."""

    def __init__(self, enabled: bool):
        self.live = None
        self.console = None
        self._stack = ExitStack()
        if enabled and sys.stderr.isatty():
            from rich.console import Console

            self.console = Console(stderr=True)
            self.live = self.make(self.console)

    def make(self, console):
        """The rich Live (or Progress) to show; subclasses say which."""
        raise NotImplementedError

    def print(self, line: str) -> None:
        """One line above the display."""
        assert self.console is not None
        self.console.print(line, markup=False, highlight=False)

    def __enter__(self):
        if self.live:
            self._stack.enter_context(self.live)
            self._stack.enter_context(printing_through(self.print))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)
