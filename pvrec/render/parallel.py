"""`pvrec render --jobs N`: a pool of worker processes shares the render's reading and drawing;
the parent writes the pictures in plan order to its ONE encoder, so the output is the
one-process output by construction (docs/rendering.md, "Big maps on every core").

- Pre-pass (prepass.py): each worker reads a contiguous share of the frames for the bands
  (collapse.Watch, merged) and the --timeline sizes (joined in order).
- Drawing: the parent pickles the side it built (pre-pass, layout, legend, strips; the
  recording by path, the built-in font by size); chunks of the plan, about one key interval
  each, cut at a key frame (with --changes just after one: a chunk's first frame is compared
  with the frame drawn before it), go round robin; each chunk is a fresh copy of the side
  drawn by pipeline.drawn_frames, the one-process loop. A worker may run ahead of the parent
  by credits_for pictures (two workers: half a chunk, ~2 MB each at 1920x1080).
- Not ffmpeg's concat demuxer: segments encoded apart start GOPs with their own rate control
  (an MP4 that differs from one process's), GIF and WebP do not join that way, and the time
  is in the Python drawing of a big map, not in x264 (which already uses every core).
- Workers are spawned (never forked: the encoder's threads) with SIGINT blocked: Ctrl-C is the
  parent's flag, then the workers are terminated and joined. Their warnings are told once by
  the parent; their errors end the render with the worker's message (a bug: its traceback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing
import pickle
import queue
import signal
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from pvrec.errors import PvrecError
from pvrec.render.plan import Plan
from pvrec.sources import RecordingSource

CHEAP = 2  # frames decoded twice where a chunk starts just after a key frame (--changes)
POLL = 0.2  # seconds between checks of the stop flag and the workers while waiting


def jobs_for(jobs: int, view: str, encoder, sources: list,
             warn: Callable[[str], None] | None) -> int:
    """How many processes draw the frames: --jobs, or 1 (said) where the render is not split."""
    if jobs == 1:
        return 1
    reason = single_reason(view, encoder.picture, encoder.from_runs, sources)
    if reason is None:
        return jobs
    if warn:
        warn(f"--jobs {jobs}: {reason}; drawing in one process")
    return 1


def single_reason(view: str, picture: bool, from_runs: bool, sources: list) -> str | None:
    """Why a render draws in one process whatever --jobs says (None: it can be split)."""
    if picture:
        return "a .png is one frame"
    if from_runs:
        return "an .html page is built from the frames' runs, not drawn frame by frame"
    if view in ("churn", "age"):
        return f"--view {view} adds up every frame in order"
    if len(sources) > 1:
        return "two runs side by side are drawn in one process"
    if not all(isinstance(s, RecordingSource) for s in sources):
        return "live memory or a dump is one frame"
    return None


def keep_heap() -> None:
    """Ask glibc to serve big arrays from the heap and keep it between frames.

    Every frame allocates a few dozen temporaries of 0.1-3 MB; by default each is a fresh
    mmap that faults in page by page and is unmapped again: ~1,300 page faults and 2-3 ms of
    kernel time per 24 GiB frame. Reused heap memory costs none (measured: 106 faults/frame).
    Process-wide and harmless elsewhere; ignored where there is no glibc."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-2, 64 << 20)  # M_TOP_PAD
    except (OSError, AttributeError):
        pass


# -- the chunks


def intervals(positions: list[int], keys: list[int]) -> int:
    """How many key intervals the planned positions fall in."""
    at = np.searchsorted(np.asarray(keys, dtype=np.int64), positions, "right")
    return int(np.count_nonzero(np.diff(at))) + 1 if len(positions) else 0


def chunk_plan(positions: list[int], keys: list[int], pieces: int, changes: bool
               ) -> list[tuple[int, int]]:
    """[(k0, k1)]: planned frames k0..k1-1 of each of (at most) `pieces` chunks, in order, each
    cut where the least is decoded twice (cut_cost), the nearest such cut to an even split."""
    n = len(positions)
    pieces = min(n, pieces)
    at = np.asarray(keys, dtype=np.int64)
    cuts: list[int] = []
    half = max(1, n // (2 * pieces)) if pieces else 0
    for i in range(1, pieces):
        ideal = round(i * n / pieces)
        window = range(max(cuts[-1] + 1 if cuts else 1, ideal - half),
                       min(n - 1, ideal + half) + 1)
        # a cheap cut (at most CHEAP frames decoded twice) nearest the even split, else that
        best = min(window, key=lambda k: (cut_cost(positions, at, k, changes) > CHEAP,
                                          abs(k - ideal)), default=None)
        if best is not None:
            cuts.append(best)
    bounds = [0, *cuts, n] if n else []
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def cut_cost(positions: list[int], keys: np.ndarray, k: int, changes: bool) -> int:
    """Frames decoded twice when a chunk starts at planned frame k: its reading starts at
    the key frame at or before it (what the chunk before also read), and with --changes the
    frame before it is read too (from its own key frame)."""
    def key_of(pos: int) -> int:
        i = int(np.searchsorted(keys, pos, "right")) - 1
        return int(keys[i]) if i >= 0 else 0

    prev, first = positions[k - 1], positions[k]
    twice = max(0, prev - key_of(first) + 1)
    if changes:
        twice += prev - key_of(prev) + 1
    return twice


def credits_for(chunk: int, workers: int) -> int:
    """How many pictures a worker may draw ahead of the parent so that none waits: while the
    parent drains one worker's chunk, each other worker draws (workers - 1) / workers of its
    next one (two workers: half a chunk; then both draw a frame in the time of one)."""
    return -(-chunk * (workers - 1) // workers) + 1


def before_candidates(positions: list[int], k0: int, first_before: int | None) -> list[int]:
    """The frames --changes may compare chunk k0's first one with, best first: the last one
    drawn before it (one process compares with that), earlier ones where it was damaged."""
    if k0 == 0:
        return [] if first_before is None else [first_before]
    got = positions[k0 - 1::-1]
    return got + ([first_before] if first_before is not None else [])


# -- pickling the side: the recording reopened by path, the built-in font by its size


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, RecordingSource):
            return ("recording", str(obj.rec.path), [f.index for f in obj.rec.frames])
        from PIL import ImageFont

        if isinstance(obj, ImageFont.FreeTypeFont):
            return ("font", obj.size, obj.getname())
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, warn: Callable[[str], None],
                 opened: dict[str, RecordingSource]):
        super().__init__(io.BytesIO(data))
        self.warn, self.opened = warn, opened  # one reading of each recording per worker

    def persistent_load(self, pid):
        if pid[0] == "recording":
            _, path, indices = pid
            if path not in self.opened:
                source = RecordingSource(path, self.warn)
                if [f.index for f in source.rec.frames[:len(indices)]] != indices:
                    raise PvrecError(f"{path} changed while it was being rendered")
                self.opened[path] = source
            return self.opened[path]
        if pid[0] == "font":
            from PIL import ImageFont

            font = ImageFont.load_default(size=pid[1])
            if font.getname() != pid[2]:
                raise PvrecError(f"render worker: the built-in font is not {pid[2]}")
            return font
        raise pickle.UnpicklingError(f"unknown persistent id {pid[0]!r}")


def pickle_sides(sides: list) -> bytes:
    """The sides as the workers rebuild them (each chunk unpickles its own fresh copy)."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(sides)
    return buf.getvalue()


# -- the worker


@dataclass
class DrawJob:
    """A worker's share of the drawing: its chunks of the plan, each with the frames --changes
    may compare the chunk's first one with (before_candidates; empty without --changes)."""

    sides: bytes  # pickle_sides
    plan: Plan
    step: int  # every how many frames the side reads
    chunks: list[tuple[int, int]]
    befores: list[list[int]]


def _work(inbox: multiprocessing.Queue, out: multiprocessing.Queue, credits) -> None:
    """A worker's life: tasks from inbox until None; results, warnings and errors to out."""
    parent = multiprocessing.parent_process()

    def alive() -> bool:
        return parent is None or parent.is_alive()

    put = out.put  # unbounded: the pictures are bounded by credits
    warned: set[str] = set()

    def warn(message: str) -> None:
        if message not in warned:
            warned.add(message)
            put(("warn", message))

    def credit() -> None:  # the parent's leave to send one more picture
        while not credits.acquire(timeout=1.0):
            if not alive():
                raise SystemExit(1)

    opened: dict[str, RecordingSource] = {}
    keep_heap()
    while alive():
        try:
            task = inbox.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            return
        try:
            if task[0] == "watch":
                from pvrec.render.prepass import watch_frames

                source, classifier, lay, watch = _Unpickler(task[1], warn, opened).load()
                watch_frames(source, classifier, lay, watch, *task[2:])
                put(("watched", watch))
            elif task[0] == "timeline":
                from pvrec.render.data import class_timeline

                source, classifier, lay, watch = _Unpickler(task[1], warn, opened).load()
                got = class_timeline(source, classifier, lay, *task[2:], watch=watch)
                put(("timeline", got, watch))
            else:
                job: DrawJob = task[1]
                for (k0, k1), befores in zip(job.chunks, job.befores, strict=True):
                    sides = _Unpickler(job.sides, warn, opened).load()  # fresh for each chunk
                    _draw_chunk(sides[0], job, k0, k1, befores, put, credit)
                put(("drawn", _peak_rss()))
        except PvrecError as exc:
            put(("error", exc.message, exc.exit_code))
        except Exception:  # a bug: its traceback, for the parent to raise
            put(("bug", traceback.format_exc(), 1))


def _draw_chunk(side, job: DrawJob, k0: int, k1: int, befores: list[int], put,
                credit: Callable[[], None]) -> None:
    """Planned frames k0..k1-1 drawn by one process's loop, reading from the key frame at or
    before the first; a frame it skips (damaged) is sent as None."""
    from pvrec.render.pipeline import drawn_frames

    plan = job.plan
    pos = [p for p, _ in plan.frames]
    before = None
    for cand in befores:  # the frame --changes compares the first with: the last readable
        try:
            side.source.read_frame(cand)
            before = cand
            break
        except PvrecError:
            if k0 == 0:
                raise  # as one process, which reads it at the start
    side.start(pos[k0], pos[k1 - 1], job.step, before)
    chunk = dataclasses.replace(plan, first=pos[k0], last=pos[k1 - 1],
                                frames=plan.frames[k0:k1], at=[a[k0:k1] for a in plan.at])
    done = k0
    for i, picture, told, dirty in drawn_frames(chunk, [side], None, [0], lambda: False):
        for k in range(done, k0 + i):
            put(("frame", k, None, -1, None))  # skipped
        credit()  # the queue pickles the picture later: a copy
        put(("frame", k0 + i, picture.copy(), told, dirty if done > k0 else None))
        done = k0 + i + 1
    for k in range(done, k1):
        put(("frame", k, None, -1, None))


def _peak_rss() -> int:
    """This process's peak resident memory (VmHWM, KiB); 0 where /proc has none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- the parent


class Pool:
    """The worker processes of one render: they share its pre-pass, then draw its frames."""

    def __init__(self, jobs: int, source: RecordingSource):
        ctx = multiprocessing.get_context("spawn")  # never fork: the encoder has threads
        self.jobs, self.source, self.warn = jobs, source, source.warn
        self.stopped: Callable[[], bool] = lambda: False
        self.peak_rss = [0] * jobs
        self.inboxes = [ctx.Queue() for _ in range(jobs)]
        self.outs: list = [ctx.Queue() for _ in range(jobs)]
        self.credits = [ctx.Semaphore(0) for _ in range(jobs)]  # pictures a worker may send
        self.procs = [ctx.Process(target=_work, args=(self.inboxes[w], self.outs[w],
                                                      self.credits[w]),
                                  name=f"pvrec-render-{w + 1}", daemon=True)
                      for w in range(jobs)]
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:  # blocked in the workers for good: Ctrl-C is the parent's
            for p in self.procs:
                p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def watch(self, source, classifier, lay, watch, first: int, last: int, step: int,
              channel: str) -> None:
        """prepass.watch_frames over first..last (every step), a contiguous share of the
        frames per worker, merged into watch."""
        positions = list(range(first, last + 1, step))
        cuts = chunk_plan(positions, source.key_positions(), len(self.procs), False)
        blob = pickle_sides([source, classifier, lay, watch])
        for w, (a, b) in enumerate(cuts):
            self.inboxes[w].put(("watch", blob, positions[a], positions[b - 1], step, channel))
        for w in range(len(cuts)):
            watch.merge(self._next(w)[1])

    def timeline(self, source, classifier, lay, first: int, last: int, step: int, n_cls: int,
                 channel: str, metrics, watch=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """data.class_timeline, a contiguous share of the frames per worker, joined in order;
        watch (not one that finds changes) fed every frame."""
        positions = list(range(first, last + 1, step))
        cuts = chunk_plan(positions, source.key_positions(), len(self.procs), False)
        blob = pickle_sides([source, classifier, lay, watch])
        for w, (a, b) in enumerate(cuts):
            self.inboxes[w].put(("timeline", blob, positions[a], positions[b - 1], step, n_cls,
                                 channel, metrics))
        parts = [self._next(w) for w in range(len(cuts))]
        for _, _, part in parts:
            if watch is not None:
                watch.merge(part)
        return tuple(np.concatenate([got[i] for _, got, _ in parts])  # type: ignore[return-value]
                     for i in range(3))

    def draw(self, sides: list, plan: Plan, step: int, first_before: int | None, changes: bool,
             stopped: Callable[[], bool]) -> Iterator[tuple[int, np.ndarray, int, object]]:
        """(planned frame, picture, how telling, dirty) of each frame of the plan drawn, in order;
        stops early once stopped() says so."""
        self.stopped = stopped
        positions, keys = [p for p, _ in plan.frames], self.source.key_positions()
        chunks = chunk_plan(positions, keys, max(len(self.procs), intervals(positions, keys)),
                            changes)
        count = min(len(self.procs), len(chunks))
        owner = np.zeros(len(positions), dtype=np.int32)
        mine: list[list[tuple[int, int]]] = [[] for _ in range(count)]
        for i, (a, b) in enumerate(chunks):
            mine[i % count].append((a, b))
            owner[a:b] = i % count
        blob = pickle_sides(sides)
        ahead = credits_for(max(b - a for a, b in chunks), count)
        for w in range(count):
            befores = [before_candidates(positions, a, first_before) if changes else []
                       for a, _ in mine[w]]
            self.inboxes[w].put(("draw", DrawJob(blob, plan, step, mine[w], befores)))
            for _ in range(ahead):
                self.credits[w].release()
        for k in range(len(positions)):
            msg = self._next(int(owner[k]))
            if msg is None:
                return
            if msg[1] != k:
                raise RuntimeError(f"render worker sent frame {msg[1]}, not {k}")
            if msg[2] is not None:  # (its first of a chunk differs anywhere: dirty None)
                self.credits[int(owner[k])].release()
                yield k, msg[2], msg[3], msg[4]
        for w in range(count):
            msg = self._next(w)
            if msg is None:
                return
            self.peak_rss[w] = msg[1]

    def _next(self, w: int):
        """Worker w's next result; its warnings told on the way; None once stopped."""
        while True:
            if self.stopped():
                return None
            try:
                msg = self.outs[w].get(timeout=POLL)
            except queue.Empty:
                if self.procs[w].exitcode is not None:
                    raise PvrecError(f"render worker {w + 1} died (exit status "
                                     f"{self.procs[w].exitcode})") from None
                continue
            if msg[0] == "warn":
                self.warn(msg[1])
            elif msg[0] == "error":
                raise PvrecError(msg[1], exit_code=msg[2])
            elif msg[0] == "bug":
                raise RuntimeError(f"render worker {w + 1} failed:\n{msg[1]}")
            else:
                return msg

    def close(self) -> None:
        """Stop and join every worker (at once when the render did not finish)."""
        for q in self.inboxes:
            with contextlib.suppress(ValueError, OSError):
                q.put(None)
        for p in self.procs:
            p.join(timeout=0.5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
        for q in self.inboxes + self.outs:
            q.close()
            q.cancel_join_thread()


@contextlib.contextmanager
def pool(jobs: int, source) -> Iterator[Pool | None]:
    """The render's workers (None for one process), stopped and joined on the way out."""
    if jobs == 1:
        yield None
        return
    p = Pool(jobs, source)
    try:
        yield p
    finally:
        p.close()
