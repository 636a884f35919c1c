"""A live display on the terminal's bottom row: the recorder's status line, the render progress bar.

The workload writes to the same terminal as pvrec, so pvrec cannot order its lines among the
workload's. Instead, as apt does for its progress bar, it reserves the bottom row with a scroll
region (DECSTBM): the workload's output and pvrec's own messages scroll in the rows above, and
into the terminal's history whole, while the display is redrawn on the bottom row in a single
write() (save cursor, go to the bottom row, draw, restore cursor) that the tty does not
interleave with another process's write. The region is set again when the terminal is resized
(SIGWINCH) and reset on every way out of the block: the end, an error, Ctrl-C. Only on a
terminal with room for it; elsewhere nothing is drawn and no control sequence is written.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import ExitStack

from pvrec.messages import printing_through

SAVE, RESTORE = "\x1b7", "\x1b8"  # DECSC / DECRC: cursor position and attributes
INDEX, UP = "\x1bD", "\x1b[1A"  # IND: down one line (scrolling at the margin) keeping the column


def _bottom_row(rows: int) -> str:
    return f"\x1b[{rows};1H\x1b[2K"  # go to the bottom row and clear it


def reserve_bottom_row(rows: int) -> str:
    """Sequence that makes rows 1..rows-1 the scroll region and leaves the cursor where it was.

    The index first scrolls once if the cursor is on the bottom row (which the region is about
    to leave out); moving up again returns it to the same line and column.
    """
    return f"{INDEX}{SAVE}\x1b[1;{rows - 1}r{RESTORE}{UP}"


def release_bottom_row(rows: int) -> str:
    """Sequence that clears the bottom row and gives the whole screen back to scrolling."""
    return f"{SAVE}{_bottom_row(rows)}\x1b[r{RESTORE}"


class LiveDisplay:
    """Base of the live displays: the bottom row shows the subclass's __rich__(), 4 times a second.

    make(console) may build a helper kept in self.live (render's rich Progress); self.live is
    None when nothing is drawn (not a terminal, disabled, or a terminal under 3 rows).
    """

    refresh_per_second = 4

    def __init__(self, enabled: bool):
        self.live = None
        self.console = None
        self._fd = sys.stderr.fileno() if enabled and sys.stderr.isatty() else -1
        self._rows = 0  # the terminal height the scroll region was set for (0: none set)
        self._lock = threading.RLock()  # one writer at a time: the redraw thread, messages
        self._wake = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None
        self._stack = ExitStack()
        if self._fd >= 0 and self._size()[0] >= 3:
            from rich.console import Console

            self.console = Console(stderr=True)
            self.live = self.make(self.console) or True

    def make(self, console):
        """A rich object to keep in self.live while the display is on (default: none)."""
        return None

    def __rich__(self):
        raise NotImplementedError

    def _size(self) -> tuple[int, int]:
        try:
            cols, rows = os.get_terminal_size(self._fd)
        except OSError:
            return 0, 0
        return rows, cols

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                os.write(self._fd, text.encode("utf-8", "replace"))
            except OSError:  # the terminal went away: draw no more
                self._running = False

    def _line(self, cols: int) -> str:
        """The display rendered as one line of cols-1 cells (the last cell would wrap)."""
        assert self.console is not None
        self.console.width = max(1, cols - 1)
        with self.console.capture() as captured:
            self.console.print(self, end="", no_wrap=True, overflow="ellipsis", crop=True,
                               soft_wrap=False)
        return captured.get().split("\n", 1)[0]

    def refresh(self) -> None:
        """Redraw now (from any thread); the region follows the terminal's size."""
        if not self._running:
            return
        with self._lock:
            rows, cols = self._size()
            if rows != self._rows:  # first draw, or resized (the terminal reset the region)
                self._rows = rows if rows >= 3 else 0
                if self._rows:
                    self._write(reserve_bottom_row(rows))
            if self._rows:
                self._write(f"{SAVE}{_bottom_row(rows)}{self._line(cols)}\x1b[0m{RESTORE}")

    def print(self, line: str) -> None:
        """One line in the scrolling rows above the display."""
        self._write(line + "\n")

    def _redraw_loop(self) -> None:
        while self._running:
            self._wake.wait(1 / self.refresh_per_second)
            self._wake.clear()
            self.refresh()

    def __enter__(self):
        if self.live:
            self._running = True
            self._stack.callback(self._close)
            self.refresh()
            if threading.current_thread() is threading.main_thread():
                old = signal.signal(signal.SIGWINCH, lambda *_: self._wake.set())
                self._stack.callback(signal.signal, signal.SIGWINCH, old)
            self._thread = threading.Thread(target=self._redraw_loop, name="pvrec-display",
                                            daemon=True)
            self._thread.start()
            self._stack.enter_context(printing_through(self.print))
        return self

    def _close(self) -> None:
        """Stop redrawing, clear the bottom row and reset the scroll region."""
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._rows:
                rows = self._size()[0] or self._rows
                self._write(release_bottom_row(rows))
                self._rows = 0

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)
