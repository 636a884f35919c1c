"""Markers from the workload: `pvrec mark TEXT` inside a recording labels that moment.

The recorder binds a Unix datagram socket in a private directory of its own and gives the
workload its path in PVREC_MARK. `pvrec mark` sends one datagram (its monotonic time and the
text) and returns at once; the sampler collects the markers with each frame. The text is
untrusted: it is made printable and bounded here, and only ever drawn or printed as text.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.recording.events import clean_text
from pvrec.recording.format import MAX_MARK_CHARS, MAX_MARKERS_PER_FRAME

ENV = "PVREC_MARK"
MAX_DATAGRAM = 4096


class MarkerSocket:
    """The socket the workload's `pvrec mark` sends to; frame_data() drains it."""

    def __init__(self, t0: float, owner: tuple[int, int] | None = None):
        self.t0 = t0
        self.dir = Path(tempfile.mkdtemp(prefix="pvrec-mark-"))
        self.path = self.dir / "mark.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                                  | socket.SOCK_NONBLOCK)
        try:
            self.sock.bind(str(self.path))
            if owner is not None:  # the workload runs as the sudo user: it must reach us
                os.chown(self.dir, *owner)
                os.chown(self.path, *owner)
        except OSError:
            self.close()
            raise
        self.last = 0.0
        self.dropped = 0

    def frame_data(self, began: float) -> tuple[dict, dict]:
        """The markers since the previous frame, at their time (clipped into the frame's span)."""
        now = round(began - self.t0, 6)
        got = []
        while True:
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            stamp, _, text = data.decode("utf-8", "replace").partition("\n")
            try:
                t = float(stamp) - self.t0
            except ValueError:
                continue
            if t != t:  # NaN
                continue
            if len(got) >= MAX_MARKERS_PER_FRAME:
                self.dropped += 1
                continue
            got.append({"t": round(min(max(t, self.last), now), 6), "text": clean_text(text)})
        self.last = now
        return ({"markers": got} if got else {}), {}

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def send_mark(text: str, path: str | None = None) -> bool:
    """`pvrec mark`: send TEXT to the recording this process runs inside; True if it had to be
    cut to MAX_MARK_CHARS."""
    path = path if path is not None else os.environ.get(ENV)
    if not path:
        raise PvrecError(f"not inside a pvrec recording ({ENV} is not set); run "
                         "it from the workload of `pvrec record -- CMD`")
    cut = len(text.strip()) > MAX_MARK_CHARS
    text = clean_text(text)
    if not text:
        raise PvrecError("the marker text is empty")
    data = f"{time.monotonic():.6f}\n{text}".encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(data, socket.MSG_DONTWAIT, path) if hasattr(socket, "MSG_DONTWAIT") \
                else s.sendto(data, path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise PvrecError(f"the recording that set {ENV}={path} has ended") \
                from None
        except BlockingIOError:
            raise PvrecError("the recording's marker queue is full; marker "
                             "dropped") from None
        except OSError as exc:
            raise PvrecError(f"cannot reach the recording at {path}: "
                             f"{exc.strerror}", errno=exc.errno if exc.errno != errno.EPERM
                             else None) from None
    return cut
