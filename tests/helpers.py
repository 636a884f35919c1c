"""Plain helpers shared by the tests and bench/: run pvrec, wait for events, make data.

pytest fixtures and marks stay in conftest.py; everything here is an ordinary function, so
bench/ scripts can import it too (`sys.path.insert(0, REPO)`, then `from tests.helpers import`).

- Running pvrec: `pvrec_main(*args)` in this process (bad-input tables, quick dump recordings:
  no interpreter start, and it checks that the command left no process state behind);
  `run_pvrec(*args)` / `start_pvrec(*args)` as a subprocess where a process is the point
  (signals, privilege, SIGKILL, a workload, the console script itself).
- Waiting: `wait_until(what, predicate)` polls for an event with a generous deadline, never a
  guessed sleep; `wait_frames`, `wait_file`, `wait_gone` are the usual events.
- Data: `synthetic_flags` (runs of page-types values, any run count), `synthetic_frame` and
  `evolve` (every class of the default scheme, the render tests' data), one `make_recording`
  on pvrec.recording.Writer, and the real fixtures (`fixture_names`, `fixture_dump`,
  `load_fixture`: each .kpf.xz decompressed once per process).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import io
import itertools
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from pvrec import flags as F

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
T = TypeVar("T")

# ------------------------------------------------------------------------------ the machine


def kpageflags_readable() -> bool:
    """True where /proc/kpageflags can be read (root)."""
    try:
        with open("/proc/kpageflags", "rb") as f:
            return len(f.read(8)) == 8
    except OSError:
        return False


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------------------------ waiting

WAIT_TIMEOUT = 30.0  # a deadline only for a test that is already failing, never a pace


def wait_until(what: str, predicate: Callable[[], T], timeout: float = WAIT_TIMEOUT,
               every: float = 0.01) -> T:
    """Poll predicate() until it returns something true and return that; AssertionError naming
    `what` after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def frame_lines(recording: Path) -> int:
    """How many complete lines frames.jsonl holds (0 before it exists)."""
    try:
        with open(Path(recording) / "frames.jsonl", "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def wait_frames(recording: Path, n: int, timeout: float = WAIT_TIMEOUT) -> int:
    """Wait until the recording's frames.jsonl lists at least n frames; returns how many."""
    return wait_until(f"{n} frames in {recording}",
                      lambda: (c := frame_lines(recording)) >= n and c, timeout)


def wait_file(path: Path, timeout: float = WAIT_TIMEOUT) -> Path:
    """Wait until path exists."""
    path = Path(path)
    return wait_until(f"{path} to exist", lambda: path.exists() and path, timeout)


def wait_gone(pid: int, timeout: float = WAIT_TIMEOUT) -> None:
    """Wait until process pid has exited (gone or a zombie)."""
    wait_until(f"process {pid} to exit", lambda: not alive(pid), timeout)


# ------------------------------------------------------------------------------ running pvrec


def pvrec_env(env: dict | None = None) -> dict:
    """The environment a pvrec subprocess gets: this repo first on the path, 100 columns."""
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100", **(env or {})}


def run_pvrec(*args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """`python -m pvrec ARGS` from the repo, as a user would run it; output captured as text."""
    env = pvrec_env(kwargs.pop("env", None))
    return subprocess.run([sys.executable, "-m", "pvrec", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)


def start_pvrec(*args, **kwargs) -> subprocess.Popen:
    """`python -m pvrec ARGS` started in its own session (so os.killpg reaches its tree only);
    stdout and stderr are text pipes."""
    env = pvrec_env(kwargs.pop("env", None))
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "pvrec", *map(str, args)], text=True,
                            env=env, start_new_session=True, **kwargs)


_PR_GET_CHILD_SUBREAPER = 37


def _subreaper() -> int:
    value = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0)
    return value.value


def _fd_targets(fds: Iterable[str]) -> dict[str, str]:
    out = {}
    for fd in fds:
        with contextlib.suppress(OSError):
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return out


def _process_state() -> dict:
    """What a command run in this process could leave behind and must not."""
    from pvrec import messages

    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    return {
        "signal handlers": {s.name: signal.getsignal(s) for s in
                            (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE,
                             signal.SIGCHLD)},
        "wakeup fd": wakeup,
        "message printer": messages._printer,
        "child subreaper": _subreaper(),
        "open fds": _fd_targets(os.listdir("/proc/self/fd")),  # fd -> what it is open on
        "threads": {t.ident for t in threading.enumerate()},
        "cwd": os.getcwd(),
    }


@contextlib.contextmanager
def _environment(env: dict) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LeakedFdWarning(UserWarning):
    """A command run by pvrec_main left a file it was given open (closed again by the helper)."""


def _text_stream() -> io.TextIOWrapper:
    """A text stream with a .buffer (pvrec's stats/list write bytes there), in write order."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def pvrec_main(*args, env: dict | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run `pvrec ARGS` in this process through pvrec.cli.main: (exit code, stdout, stderr).

    For what needs no process of its own: bad-input tables, recordings of a dump. Not for a
    workload (`-- CMD` makes the caller a child subreaper for good: use run_pvrec). The
    environment gets COLUMNS=100 (as run_pvrec) and `env`, the working directory `cwd`, both
    for the call only. AssertionError if the command left a signal handler, the wakeup fd,
    the message printer, the subreaper flag, a thread, the cwd or an open fd behind; an fd
    on a file named in ARGS (pvrec record leaves its dump open when it fails after opening
    it) is closed here with a LeakedFdWarning instead, so the defect shows without failing
    tests about something else.
    """
    from pvrec import cli

    before = _process_state()
    out, err = _text_stream(), _text_stream()
    here = os.getcwd()
    try:
        with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
              _environment({"COLUMNS": "100", **(env or {})})):
            if cwd is not None:
                os.chdir(cwd)
            try:
                code = cli.main([str(a) for a in args])
            except SystemExit as exc:  # argparse's --help and --version
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.chdir(here)
    after = _process_state()
    given = {str(Path(a).resolve()) for a in args if isinstance(a, (str, os.PathLike))
             and os.path.isfile(a)}
    for fd, target in list(after["open fds"].items()):
        if fd not in before["open fds"] and target in given:
            os.close(int(fd))
            warnings.warn(f"pvrec {args[0]} left fd {fd} open on {target}", LeakedFdWarning,
                          stacklevel=2)
            del after["open fds"][fd]
    # Fds and threads the caller had may end during the call (a decoder of the test's own
    # finishing): only what the call added counts.
    after["open fds"] = {fd: t for fd, t in after["open fds"].items()
                         if before["open fds"].get(fd) != t}
    after["threads"] -= before["threads"]
    before["open fds"], before["threads"] = {}, set()
    left = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not left, f"pvrec {' '.join(map(str, args))} left process state behind: {left}"
    return code, out.buffer.getvalue().decode(), err.buffer.getvalue().decode()


def run_here(*args, **kw) -> subprocess.CompletedProcess:
    """pvrec_main with run_pvrec's result type: for tests written against either."""
    code, out, err = pvrec_main(*args, **kw)
    return subprocess.CompletedProcess([str(a) for a in args], code, out, err)


# ------------------------------------------------------------------------------ synthetic frames

# Typical page-types values (buddy, none, lru+uptodate, ..., a kernel-hacking bit).
PAGE_TYPES_VALUES = (0x400, 0x0, 0x68, 0x828, 0x5868, 0x100000000, 0x400000 | 0x68,
                     0x20000 | 0x8000, 0x40000 | 0x800, 0x80)


def synthetic_flags(pages: int, seed: int = 0, runs: int = 50) -> np.ndarray:
    """A flags array of realistic shape: `runs` runs of a few typical page-types values (for the
    codec and the recorder, where the run count matters and the classes do not)."""
    rng = np.random.default_rng(seed)
    values = np.array(PAGE_TYPES_VALUES, dtype=np.uint64)
    cuts = np.sort(rng.choice(np.arange(1, pages), size=min(runs, pages - 1), replace=False))
    flags = np.empty(pages, dtype=np.uint64)
    for i, (s, e) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, pages], strict=True)):
        flags[s:e] = values[rng.integers(values.size)] if i % 7 else values[i % values.size]
    return flags


B = F.bit
_LRU, _ANON, _SB, _UPTODATE = B(F.LRU), B(F.ANON), B(F.SWAPBACKED), B(F.UPTODATE)

# One flags word for each class of the default scheme (what a kernel would report).
CLASS_FLAGS: dict[str, int] = {
    "hole": B(F.NOPAGE),
    "hwpoison": B(F.HWPOISON),
    "offline": B(F.OFFLINE),
    "free": B(F.BUDDY),
    "hugetlb": B(F.HUGE) | B(F.COMPOUND_TAIL),
    "THP": B(F.THP) | B(F.COMPOUND_TAIL) | _LRU | _ANON | _SB | _UPTODATE,
    "slab": B(F.SLAB),
    "page table": B(F.PGTABLE),
    "zero/KSM": B(F.ZERO_PAGE),
    "mlocked": B(F.MLOCKED) | B(F.UNEVICTABLE) | _LRU | _ANON | _SB,
    "anonymous": _ANON | _SB | _LRU | _UPTODATE | B(F.MMAP),
    "shmem": _SB | _LRU | _UPTODATE,
    "page cache": _LRU | _UPTODATE | B(F.REFERENCED),
    "reserved": B(F.RESERVED),
    "other kernel": B(F.COMPOUND_TAIL),
    "no flags": 0,
}

PAGES = 4096
ROW = 64  # pages per row: a small "huge page", so 4096 pages make a 64x64 map
HOLE = (1536, 1792)  # a RAM hole: pages there read as flags 0, as on real machines
HEADER = {
    "page_size": 4096,
    "hpage_pages": ROW,
    "ram_ranges": [[0, HOLE[0]], [HOLE[1], PAGES]],
    "zones": [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": 2048},
              {"node": 0, "name": "Normal", "start_pfn": 2048, "end_pfn": PAGES}],
    "nodes": [{"node": 0, "ranges": [[0, HOLE[0]], [HOLE[1], PAGES]]}],
    "hostname": "testbox",
    "kernel": "6.1.0-test",
    "command": ["make", "-j8"],
    "interval": 1.0,
    "start_wall": "2026-11-26T12:00:00+00:00",
}


def synthetic_frame(seed: int = 0, pages: int = PAGES) -> np.ndarray:
    """Flags of `pages` PFNs: runs of 1..200 pages of every class, the hole reading 0 (the
    golden pictures are drawn from these exact values: change nothing here)."""
    rng = np.random.default_rng(seed)
    values = np.array(list(CLASS_FLAGS.values()), dtype=np.uint64)
    out = np.empty(pages, dtype=np.uint64)
    pos, i = 0, 0
    while pos < pages:
        ln = int(rng.integers(1, 200)) if i % 3 else int(rng.integers(1, 8))
        v = values[i % values.size] if i < 2 * values.size else values[rng.integers(values.size)]
        out[pos:pos + ln] = v
        pos += ln
        i += 1
    if pages == PAGES:
        out[HOLE[0]:HOLE[1]] = 0
    return out


def evolve(flags: np.ndarray, rng: np.random.Generator, share: float = 0.03) -> np.ndarray:
    """The next frame: about `share` of the pages rewritten in short runs."""
    out = flags.copy()
    values = np.array(list(CLASS_FLAGS.values()), dtype=np.uint64)
    want = int(flags.size * share)
    while want > 0:
        s = int(rng.integers(0, flags.size))
        ln = int(rng.integers(1, 48))
        out[s:s + ln] = values[rng.integers(values.size)]
        want -= ln
    if flags.size == PAGES:
        out[HOLE[0]:HOLE[1]] = 0
    return out


def synthetic_frames(count: int, seed: int = 0, pages: int = PAGES) -> Iterable[np.ndarray]:
    """synthetic_frame(seed, pages), then `count - 1` evolve() steps of it."""
    rng = np.random.default_rng(seed + 1)
    flags = synthetic_frame(seed, pages)
    for _ in range(count):
        yield flags
        flags = evolve(flags, rng)


# ------------------------------------------------------------------------------ recordings

ChannelData = Callable[[np.ndarray, int], np.ndarray]  # (flags, frame index) -> channel array


def make_recording(path: Path, frames: int | Iterable[np.ndarray] = 6, seed: int = 0, *,
                   pages: int = PAGES, header: dict | None = None,
                   channels: Sequence[str] | None = None, cgroup: ChannelData | None = None,
                   workload: ChannelData | None = None,
                   context: Callable[[int], dict] | Sequence[dict] | None = None,
                   interval: float = 1.0, key_every: int = 30, complete: bool = True,
                   end: dict | None = None, durable: bool = True,
                   times: Sequence[float] | None = None) -> Path:
    """A recording written by pvrec's own Writer; returns path.

    frames: a count of synthetic_frames(count, seed, pages) (every class present, 3% of the
      pages changing per frame), or the flag arrays themselves (any iterable: a generator
      streams; pages then comes from the first one).
    header: the header's fields (pfn_count is added); default HEADER, whose 4096-page layout
      is replaced by one Normal zone over all pages when pages is not 4096.
    channels: ("flags",) plus "cgroup"/"workload", whose arrays cgroup(flags, i) and
      workload(flags, i) give (the memcg inode of every PFN; the sorted PFNs the workload
      maps); default: flags and the channels whose function is given.
    context: the frames.jsonl context of frame i (a function of i, or one dict per frame).
    Frame i is at t = times[i] (default i * interval). complete=False leaves out end.json (a crash);
    end is end.json's content (default {"reason": "test"}).
    """
    if isinstance(frames, int):
        frames = synthetic_frames(frames, seed, pages)
    it = iter(frames)
    first = next(it, None)
    if first is not None:
        pages = first.size
    if header is None:
        header = dict(HEADER)
        if pages != PAGES:
            header.update(ram_ranges=[[0, pages]], nodes=[],
                          zones=[{"node": 0, "name": "Normal", "start_pfn": 0,
                                  "end_pfn": pages}])
    given = {"cgroup": cgroup, "workload": workload}
    if channels is None:
        channels = ("flags",) + tuple(c for c, fn in given.items() if fn is not None)
    channels = tuple(channels)
    missing = [c for c in channels[1:] if given.get(c) is None]
    if missing:
        raise ValueError(f"make_recording: channel {missing[0]!r} needs its {missing[0]}= "
                         f"function")
    from pvrec.recording import Writer

    w = Writer(path, {**header, "pfn_count": pages}, key_every=key_every, channels=channels,
               durable=durable)
    all_frames = itertools.chain([first], it) if first is not None else ()
    for i, flags in enumerate(all_frames):
        if callable(context):
            ctx = context(i)
        else:
            ctx = dict(context[i]) if context is not None else {}
        kw = {c: given[c](flags, i) for c in channels[1:]}
        w.add_frame(flags, i * interval if times is None else times[i], ctx, **kw)
    if complete:
        w.close({"reason": "test"} if end is None else end)
    return Path(path)


# ------------------------------------------------------------------------------ real fixtures

_fixture_dir: Path | None = None
_fixture_lock = threading.Lock()


def fixture_names() -> list[str]:
    """The names of the real kpageflags dumps in ../shared/fixtures (NAME.kpf.xz), sorted."""
    return sorted(p.name[: -len(".kpf.xz")] for p in FIXTURES.glob("*.kpf.xz"))


def fixture_dump(name: str) -> Path:
    """The real dump NAME as a raw kpageflags file (what page-types -F and pvrec -F read),
    decompressed once per process into a private temporary directory removed at exit.
    FileNotFoundError if ../shared/fixtures has no NAME.kpf.xz."""
    global _fixture_dir
    src = FIXTURES / f"{name}.kpf.xz"
    if not src.exists():
        raise FileNotFoundError(f"no real fixture {src}")
    with _fixture_lock:
        if _fixture_dir is None:
            _fixture_dir = Path(tempfile.mkdtemp(prefix="pvrec-fixtures-"))
            atexit.register(shutil.rmtree, _fixture_dir, True)
        target = _fixture_dir / f"{name}.kpf"
        if not target.exists():
            part = target.with_name(target.name + ".part")
            with lzma.open(src) as f, open(part, "wb") as g:
                while chunk := f.read(8 << 20):
                    g.write(chunk)
            part.rename(target)
    return target


def load_fixture(name: str) -> np.ndarray:
    """The real dump NAME's flags as a uint64 array (one per PFN)."""
    return np.fromfile(fixture_dump(name), dtype="<u8").astype(np.uint64, copy=False)
