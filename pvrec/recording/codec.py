"""Frame encoding of format versions 2 and 3: each stream apart, integers as varints.

A version-1 frame stores every run of a delta (the long zero runs between changes included)
with a code, and run lengths as fixed-width byte planes. Measured on real recordings (a
tinyconfig build, the demo), a delta is ~13,000 changed runs whose positions are close to
random: the bytes are in where the changes are. Version 2 keeps what the positions cost and
drops the rest: a delta stores the zero gaps before each changed run, the changed runs'
lengths, and codes for the changed runs only (the zero runs need none); every integer is a
LEB128 varint (most are below 128: one byte), so deflate sees fewer, denser bytes. Key frames
store (length - 1) as varints and are compressed with bz2 (one frame in key_every: its CPU is
spread over the frames between). docs/recording-format.md has the layout.

Version 3 is the same streams, a delta's compressed with raw LZMA2 instead of deflate (~10%
fewer bytes on a kernel build's deltas for ~10 ms of CPU a frame; see pack).

load_frame (format.py) turns a version-2 or 3 frame back into version 1's arrays (run lengths,
palette, codes of every run), so everything that reads frames reads both alike.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

VARINT_MAX_BYTES = 9  # 63 bits: far above any page count, and no uint64 overflow


class CodecError(ValueError):
    """A version-2 stream is damaged (format.load_frame turns it into a FrameError)."""


@dataclass
class Streamed:
    """A 1-d array written to a frame file block by block, never whole in memory."""

    dtype: np.dtype
    count: int
    blocks: Callable[[], Iterator[bytes]]


def smallest_uint(max_value: int) -> type:
    """The smallest unsigned dtype that holds max_value."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return dt
    return np.uint64


def varint_encode(values: np.ndarray) -> np.ndarray:
    """LEB128 bytes of non-negative integers: 7 bits a byte, the high bit set on all but the
    last byte of each value."""
    v = np.asarray(values).astype(np.uint64)
    if v.size == 0:
        return np.zeros(0, np.uint8)
    width = np.ones(v.size, np.int64)
    top = int(v.max())
    k = 1
    while top >> (7 * k):
        width += v >= np.uint64(1 << (7 * k))
        k += 1
    ends = np.cumsum(width)
    starts = ends - width
    out = np.empty(int(ends[-1]), np.uint8)
    for b in range(k):
        sel = np.flatnonzero(width > b) if b else slice(None)
        part = ((v[sel] >> np.uint64(7 * b)) & np.uint64(0x7F)).astype(np.uint8)
        part |= (width[sel] > b + 1).astype(np.uint8) << 7
        out[starts[sel] + b] = part
    return out


def varint_decode(data: np.ndarray, limit: int) -> np.ndarray:
    """The integers of a LEB128 byte stream, each checked to be <= limit (CodecError).

    Byte k of every value at least k+1 bytes long is gathered at once, for k up to the
    longest: nearly all are one or two bytes, so this is ~3x faster than shifting every byte
    and summing each value's (np.add.reduceat)."""
    data = np.asarray(data)
    if data.dtype != np.uint8:
        raise CodecError("varint stream is not bytes")
    if data.size == 0:
        return np.zeros(0, np.int64)
    if data[-1] >= 0x80:
        raise CodecError("varint stream is cut short")
    ends = np.flatnonzero(data < 0x80)
    starts = np.empty(ends.size, np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    width = ends - starts + 1
    longest = int(width.max())
    if longest > VARINT_MAX_BYTES:
        raise CodecError("varint longer than 9 bytes")
    values = (data[starts] & 0x7F).astype(np.int64)  # 9 bytes hold 63 bits: no sign, no wrap
    for k in range(1, longest):
        sel = np.flatnonzero(width > k)
        values[sel] |= (data[starts[sel] + k] & 0x7F).astype(np.int64) << (7 * k)
    if int(values.max()) > limit:
        raise CodecError("varint value out of range")
    return values


# -- writing: the arrays of one channel, from its pieces (consecutive chunks of runs, joined)

def key_arrays(pieces: list, prefix: str) -> dict:
    """A key frame's channel: lengths - 1 as varints, the palette, a code per run."""
    palette = np.unique(np.concatenate([np.unique(p.values) for p in pieces]))
    code_type = np.dtype(smallest_uint(max(palette.size - 1, 0)))
    lengths = [varint_encode(p.lengths.astype(np.int64) - 1) for p in pieces]
    count = sum(p.lengths.size for p in pieces)

    def codes():
        for p in pieces:
            yield np.searchsorted(palette, p.values).astype(code_type).tobytes()

    return {
        prefix + "lengths": Streamed(np.dtype(np.uint8), sum(b.size for b in lengths),
                                     lambda: (b.tobytes() for b in lengths)),
        prefix + "palette": palette.astype(np.uint64),
        prefix + "codes": Streamed(code_type, count, codes),
    }


def delta_arrays(pieces: list, prefix: str) -> dict:
    """A delta frame's channel (pieces are XOR runs): for each changed (non-zero) run, the
    zero gap before it and its length - 1 as varints, and its code; nothing for zero runs."""
    gaps, lengths, values = [], [], []
    offset = end = 0  # the piece's first page; the end of the last changed run so far
    for p in pieces:
        changed = np.flatnonzero(p.values)
        if changed.size:
            starts = np.cumsum(p.lengths, dtype=np.int64) - p.lengths
            s = starts[changed] + offset
            n = p.lengths[changed].astype(np.int64)
            g = np.empty(s.size, np.int64)
            g[0] = s[0] - end
            np.subtract(s[1:], (s + n)[:-1], out=g[1:])
            end = int(s[-1] + n[-1])
            gaps.append(varint_encode(g))
            lengths.append(varint_encode(n - 1))
            values.append(p.values[changed])
        offset += p.pfn_count
    values = np.concatenate(values) if values else np.zeros(0, np.uint64)
    palette = np.unique(values)
    codes = np.searchsorted(palette, values).astype(smallest_uint(max(palette.size - 1, 0)))
    return {prefix + "gaps": _joined(gaps), prefix + "lengths": _joined(lengths),
            prefix + "palette": palette.astype(np.uint64), prefix + "codes": codes}


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


# -- reading: version 2's arrays checked and turned into version 1's (lengths of every run)

def _check_total(lengths: np.ndarray, pfn_count: int, what: str) -> None:
    # Each value is <= pfn_count (varint_decode's limit) and there are at most pfn_count of
    # them, so the float sum cannot wrap and is exact enough to compare below 2**53.
    if round(float(lengths.sum(dtype=np.float64))) > pfn_count or int(
            lengths.sum(dtype=np.int64)) > pfn_count:
        raise CodecError(f"{what} add up to more than the page count")


def decode_key(lengths: np.ndarray, palette: np.ndarray, codes: np.ndarray, pfn_count: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run lengths, palette, codes) of a key frame's channel."""
    if codes.size == 0 or codes.size > pfn_count or lengths.size > 10 * pfn_count:
        raise CodecError("run table sizes disagree")
    runs = varint_decode(lengths, pfn_count - 1)
    if runs.size != codes.size:
        raise CodecError("run table sizes disagree")
    runs += 1
    _check_total(runs, pfn_count, "run lengths")
    if int(runs.sum(dtype=np.int64)) != pfn_count:
        raise CodecError("run lengths do not add up to the page count")
    if int(codes.max()) >= palette.size:
        raise CodecError("run code outside the palette")
    return runs, palette, codes


def decode_delta(gaps: np.ndarray, lengths: np.ndarray, palette: np.ndarray,
                 codes: np.ndarray, pfn_count: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run lengths, palette, codes) of a delta's XOR runs: the zero gaps between the changed
    runs get code 0, the XOR value 0 put first in the palette."""
    if codes.size > pfn_count or max(gaps.size, lengths.size) > 10 * pfn_count:
        raise CodecError("run table sizes disagree")
    g = varint_decode(gaps, pfn_count)
    n = varint_decode(lengths, pfn_count - 1) + 1
    if not g.size == n.size == codes.size:
        raise CodecError("run table sizes disagree")
    if codes.size and int(codes.max()) >= palette.size:
        raise CodecError("run code outside the palette")
    _check_total(g, pfn_count, "gaps")
    _check_total(n, pfn_count, "run lengths")
    tail = pfn_count - int(g.sum(dtype=np.int64)) - int(n.sum(dtype=np.int64))
    if tail < 0:
        raise CodecError("run lengths add up to more than the page count")
    both = np.empty(2 * g.size + 1, np.int64)
    both[0:-1:2], both[1:-1:2], both[-1] = g, n, tail
    code = np.zeros(both.size, np.int64)
    code[1:-1:2] = codes.astype(np.int64) + 1
    keep = both > 0
    return both[keep], np.concatenate((np.zeros(1, np.uint64), palette)), code[keep]


DEFLATE, BZIP2, LZMA = 0, 1, 2
# Below these sizes a stream stays deflate: bzip2's blocks and LZMA's set-up cost more than
# they save.
MIN_BYTES = {BZIP2: 1 << 16, LZMA: 1 << 10}
# Raw LZMA2 (no container: the directory has the sizes). No literal context (lc=lp=pb=0): the
# streams are varint and code bytes, not text; 1.5% smaller than the defaults on deltas. The
# dictionary is far above a delta's streams and bounds the decoder's memory on any input.
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 18,
                 "lc": 0, "lp": 0, "pb": 0}]
CODECS = {2: (DEFLATE, BZIP2), 3: (DEFLATE, BZIP2, LZMA)}  # what each format version may use
PACK_MEMBER = "frame"  # the frame file's one member that holds every channel's streams


def _compressor(how: int):
    if how == BZIP2:
        return bz2.BZ2Compressor(9)
    if how == LZMA:
        return lzma.LZMACompressor(lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    return zlib.compressobj(6, zlib.DEFLATED, -15)


def _decompressor(how: int):
    if how == BZIP2:
        return bz2.BZ2Decompressor()
    if how == LZMA:
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    return zlib.decompressobj(-15)


def pack(streams: dict[str, np.ndarray | Streamed], codecs: dict[str, int]) -> np.ndarray:
    """Every stream of a frame in one byte array: a directory (per stream its name, codec,
    item size, compressed and raw size, as varints) and the compressed streams after it. One
    zip member instead of a dozen saves ~1.5 KB a frame of headers (a demo delta is ~8 KB).
    codecs: the streams not deflated (stream_codecs), each when it is at least MIN_BYTES."""
    directory, blobs = [], []
    for name, arr in streams.items():
        size = arr.count * arr.dtype.itemsize if isinstance(arr, Streamed) else arr.nbytes
        how = codecs.get(name, DEFLATE)
        how = how if size >= MIN_BYTES.get(how, 0) else DEFLATE
        z = _compressor(how)
        parts = [z.compress(block) for block in (
            arr.blocks() if isinstance(arr, Streamed) else (np.ascontiguousarray(arr).tobytes(),))]
        parts.append(z.flush())
        blob = b"".join(parts)
        key = name.encode()
        directory.append([len(key), *key, how, arr.dtype.itemsize, len(blob), size])
        blobs.append(blob)
    head = varint_encode(np.array([len(streams)] + [x for d in directory for x in d]))
    return np.frombuffer(b"".join([varint_encode(np.array([head.size])).tobytes(),
                                   head.tobytes(), *blobs]), np.uint8)


def unpack(data: np.ndarray, names: list[str], limit: int, codecs: tuple[int, ...] = CODECS[3]
           ) -> dict[str, np.ndarray]:
    """The streams named (each a 1-d unsigned array) of a pack; CodecError when it is damaged,
    a stream is missing, uses a codec not in codecs (its version's), or would inflate beyond
    limit bytes."""
    raw = data.tobytes()
    first = min(len(raw), VARINT_MAX_BYTES)
    end = next((i + 1 for i in range(first) if raw[i] < 0x80), 0)
    size = int(varint_decode(np.frombuffer(raw[:end], np.uint8), len(raw))[0]) if end else -1
    if not 0 < size <= len(raw) - end:
        raise CodecError("bad stream directory")
    head = varint_decode(np.frombuffer(raw[end:end + size], np.uint8), limit).tolist()
    pos, at, entries = 1, end + size, {}
    for _ in range(head[0] if head and head[0] <= len(head) else -1):
        n = head[pos] if pos < len(head) else -1
        entry = head[pos + 1 + n:pos + 5 + n]
        if n < 0 or len(entry) != 4 or max(head[pos + 1:pos + 1 + n], default=0) > 127:
            raise CodecError("bad stream directory")
        name = bytes(head[pos + 1:pos + 1 + n]).decode()
        entries[name] = (*entry, at)
        at += entry[2]
        pos += 5 + n
    if head[:1] == [] or pos != len(head) or at != len(raw):
        raise CodecError("bad stream directory")
    return {name: _inflate(raw, name, entries.get(name), limit, codecs) for name in names}


def _inflate(raw: bytes, name: str, entry: tuple | None, limit: int, codecs: tuple[int, ...]
             ) -> np.ndarray:
    if entry is None:
        raise CodecError(f"missing array {name!r}")
    how, itemsize, csize, size, at = entry
    if how not in codecs or itemsize not in (1, 2, 4, 8) or size % itemsize or size > limit:
        raise CodecError(f"array {name!r}: bad stream entry")
    z = _decompressor(how)
    try:
        out = z.decompress(raw[at:at + csize], size + 1)
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise CodecError(f"array {name!r}: {exc}") from None
    if len(out) != size:
        raise CodecError(f"array {name!r} holds {len(out)} bytes, its entry says {size}")
    return np.frombuffer(out, f"<u{itemsize}")


def stream_codecs(kind: int, channels: tuple[str, ...], version: int) -> dict[str, int]:
    """The streams of a frame not deflated: a key frame's lengths and codes bzip2 (~10-15%
    smaller than deflate or LZMA at a third of LZMA's CPU; one frame in key_every pays it);
    in version 3, a delta's gaps, lengths and codes raw LZMA2 (~10% smaller than deflate on
    a kernel build's deltas, ~10 ms more CPU a frame at 24 GiB: bench/bench_frames.py)."""
    arrays = ("lengths", "codes") if kind == 0 else ("gaps", "lengths", "codes")
    how = BZIP2 if kind == 0 else LZMA if version >= 3 else None
    if how is None:
        return {}
    return {("" if c == "flags" else c + ".") + a: how for c in channels for a in arrays}
