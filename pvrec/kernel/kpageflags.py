"""Read a PFN range of /proc/kpageflags (or kpagecount, kpagecgroup, or a saved raw dump).

The kernel only answers reads that are multiples of 8 bytes, so a plain f.read() fails with
EINVAL: we pread into a preallocated numpy array in chunks of at least 1 MiB. The path is a
parameter so tests and `--kpageflags FILE` read a dump through the same code.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import numpy as np

from pvrec.errors import PvrecError
from pvrec.runs import CHUNK_PAGES

KPAGEFLAGS = "/proc/kpageflags"
KPAGECGROUP = "/proc/kpagecgroup"
READ_BYTES = 4 << 20  # per preadv call: large enough that syscall overhead vanishes
# A dump's first word is PFN 0's flags; these compressors' magic bytes as that word would be
# a combination of flags no kernel gives PFN 0 (xz and zstd set bits above any KPF_*), and a
# compressed dump read as flags records nonsense without a word of warning.
COMPRESSED = {b"\xfd7zXZ\x00": ("xz", "xz -dk"), b"\x1f\x8b\x08": ("gzip", "gunzip -k"),
              b"\x28\xb5\x2f\xfd": ("zstd", "zstd -d")}


class SampleError(Exception):
    """One sample could not be read completely (EIO, a short read); the recorder skips it."""


def open_error(path: str, exc: OSError) -> PvrecError:
    """The one-line explanation of why a kpageflags-like file cannot be opened or read."""
    return PvrecError(_open_problem(path, exc), errno=exc.errno)


def _open_problem(path: str, exc: OSError) -> str:
    if exc.errno in (errno.EPERM, errno.EACCES):
        if path.startswith("/proc/"):
            return (f"cannot read {path}: permission denied. It is readable by root only: "
                    f"run pvrec with sudo")
        return f"cannot read {path}: permission denied"
    if exc.errno == errno.ENOENT:
        if path.startswith("/proc/"):
            return (f"{path} does not exist: this kernel was built without "
                    f"CONFIG_PROC_PAGE_MONITOR, or /proc is not mounted")
        return f"{path}: no such file"
    if exc.errno == errno.EISDIR:
        return f"{path} is a directory, not a kpageflags file"
    return f"cannot read {path}: {exc.strerror or exc}"


class PageFlagsFile:
    """An open kpageflags-like file of u64 words, read by PFN range into numpy arrays."""

    def __init__(self, path: str = KPAGEFLAGS):
        self.path = str(path)
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise open_error(self.path, exc) from None
        self.is_dump = not self.path.startswith("/proc/")
        self._buffers: list[np.ndarray] = []  # chunks() reuses them from sample to sample

    def buffers(self, count: int, pages: int) -> list[np.ndarray]:
        """count buffers of `pages` words, the same ones every sample: fresh 8 MiB arrays
        fault their pages in each time (~2.5 ms of kernel CPU apiece, measured)."""
        if len(self._buffers) < count or self._buffers[0].size != pages:
            self._buffers = [np.empty(pages, dtype=np.uint64) for _ in range(count)]
        return self._buffers[:count]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PageFlagsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def dump_pages(self) -> int:
        """Page count of a dump file (its size / 8); an error if the size is not whole words."""
        size = os.fstat(self.fd).st_size
        head = os.pread(self.fd, 8, 0)
        for magic, (name, tool) in COMPRESSED.items():
            if head.startswith(magic):
                raise PvrecError(f"{self.path} is {name}-compressed, not a raw kpageflags "
                                 f"dump: decompress it first ({tool} {self.path})")
        if size % 8:
            raise PvrecError(
                f"{self.path} is {size} bytes, not a multiple of 8: not a raw kpageflags dump"
            )
        if size == 0:
            raise PvrecError(f"{self.path} is empty")
        return size // 8

    def read_into(self, out: np.ndarray, first_pfn: int) -> int:
        """Fill out with the words of PFNs first_pfn..; returns how many were read (short at EOF)."""
        view = memoryview(out).cast("B")
        done, total, base = 0, view.nbytes, first_pfn * 8
        while done < total:
            try:
                n = os.preadv(self.fd, [view[done : done + READ_BYTES]], base + done)
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    raise SampleError(f"{self.path}: I/O error at PFN {first_pfn + done // 8}") from None
                raise open_error(self.path, exc) from None
            if n <= 0:
                break
            done += n
        if done % 8:
            raise SampleError(f"{self.path}: partial read of {done} bytes")
        return done // 8

    def chunks(self, pfn_count: int, chunk_pages: int = CHUNK_PAGES,
               skip: list[tuple[int, int, int]] = (), jobs: int = 1) -> Iterator[np.ndarray]:
        """The words of PFNs 0..pfn_count in chunks, reusing buffers (copy what you keep).

        skip: sorted (start, end, word) ranges not read but filled with word (holes the
        kernel is known to answer so, pvrec.kernel.holes). jobs > 1: that many threads read
        the chunks ahead (pvrec.kernel.parallel), still yielded in PFN order."""
        starts = range(0, pfn_count, chunk_pages)
        if jobs > 1 and len(starts) > 1:
            from pvrec.kernel.parallel import read_ahead
            yield from read_ahead(self.path, pfn_count, skip,
                                  self.buffers(jobs + 1, chunk_pages))
            return
        buf = self.buffers(1, min(chunk_pages, pfn_count))[0]
        for start in starts:
            want = buf[: min(chunk_pages, pfn_count - start)]
            self.fill(want, start, pfn_count, skip)
            yield want

    def fill(self, want: np.ndarray, start: int, pfn_count: int,
             skip: list[tuple[int, int, int]] = ()) -> None:
        """Read PFNs start..start+want.size into want, the skipped ranges filled, not read."""
        end, pos = start + want.size, start
        for s, e, word in skip:
            lo, hi = max(s, start), min(e, end)
            if lo >= hi:
                continue
            self._read_exactly(want[pos - start:lo - start], pos, pfn_count)
            want[lo - start:hi - start] = word
            pos = hi
        self._read_exactly(want[pos - start:], pos, pfn_count)

    def _read_exactly(self, out: np.ndarray, first_pfn: int, pfn_count: int) -> None:
        got = self.read_into(out, first_pfn) if out.size else 0
        if got != out.size:
            raise SampleError(f"{self.path}: short read: {first_pfn + got} of {pfn_count} pages")

    def read_all(self, pfn_count: int) -> np.ndarray:
        """All words of PFNs 0..pfn_count in one array."""
        out = np.empty(pfn_count, dtype=np.uint64)
        got = self.read_into(out, 0)
        if got != pfn_count:
            raise SampleError(f"{self.path}: short read: {got} of {pfn_count} pages")
        return out

    def probe_pages(self, hint: int) -> int:
        """Page count of a /proc file: the hint (from the layout) or, if unknown, read to EOF."""
        if self.is_dump:
            return self.dump_pages()
        probe = np.empty(1, dtype=np.uint64)
        try:
            self.read_into(probe, 0)
        except SampleError as exc:
            raise PvrecError(str(exc)) from None
        if hint:
            return hint
        count, buf = 0, np.empty(CHUNK_PAGES, dtype=np.uint64)
        while True:
            got = self.read_into(buf, count)
            count += got
            if got < buf.size:
                return count


def read_kpageflags(path: str = KPAGEFLAGS, pfn_count: int = 0) -> np.ndarray:
    """Every PFN's flags from a kpageflags file or dump (pfn_count 0: all of it, read once)."""
    with PageFlagsFile(path) as f:
        try:
            if pfn_count or f.is_dump:
                return f.read_all(pfn_count or f.dump_pages())
            parts, start = [], 0
            while True:
                buf = np.empty(CHUNK_PAGES, dtype=np.uint64)
                got = f.read_into(buf, start)
                parts.append(buf[:got])
                start += got
                if got < buf.size:
                    return np.concatenate(parts)
        except SampleError as exc:
            raise PvrecError(str(exc)) from None
