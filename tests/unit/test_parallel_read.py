"""`pvrec record --jobs N` (issue 13, part 1): threads reading kpageflags give the same chunks
in the same order as one thread, fail a sample cleanly, and never outlive it."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from pvrec.errors import PvrecError
from pvrec.kernel import parallel
from pvrec.kernel.kpageflags import PageFlagsFile, SampleError
from pvrec.recorder.session import RecordOptions
from tests.helpers import synthetic_flags

CHUNK = 1000  # pages: many chunks out of a small dump


@pytest.fixture
def dump(tmp_path):
    flags = synthetic_flags(10_500, seed=3)
    path = tmp_path / "flags.kpf"
    flags.tofile(path)
    return path, flags


def read(path, jobs, skip=(), pages=10_500):
    with PageFlagsFile(str(path)) as f:
        return [c.copy() for c in f.chunks(pages, CHUNK, list(skip), jobs=jobs)]


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pvrec-read")]


@pytest.mark.parametrize("jobs", [2, 3, 8])
def test_threads_read_the_same_chunks_in_order(dump, jobs):
    path, flags = dump
    one, many = read(path, 1), read(path, jobs)
    assert [c.size for c in many] == [CHUNK] * 10 + [500]
    assert np.array_equal(np.concatenate(many), flags)
    assert all(np.array_equal(a, b) for a, b in zip(one, many, strict=True))
    assert reader_threads() == []


def test_skipped_holes_are_filled_as_with_one_thread(dump):
    path, flags = dump
    skip = [(1500, 4200, 7), (9990, 10_010, 0)]
    expected = flags.copy()
    expected[1500:4200], expected[9990:10_010] = 7, 0
    assert np.array_equal(np.concatenate(read(path, 4, skip)), expected)


def test_a_short_read_in_a_thread_fails_the_sample_and_stops_the_threads(dump):
    path, _ = dump
    with pytest.raises(SampleError, match="short read: 10500 of 20000 pages"):
        read(path, 3, pages=20_000)
    assert reader_threads() == []


def test_a_consumer_stopping_early_leaves_no_thread_and_no_fd(dump):
    path, _ = dump
    fds = len(os.listdir("/proc/self/fd"))
    with PageFlagsFile(str(path)) as f:
        chunks = f.chunks(10_500, CHUNK, jobs=4)
        next(chunks)
        chunks.close()  # what a Ctrl-C (StopNow) raised in the consumer does
        assert reader_threads() == []
        assert len(os.listdir("/proc/self/fd")) == fds + 1  # f itself


def test_the_default_uses_the_cpus_up_to_four():
    assert [parallel.default_jobs(c) for c in (1, 2, 3, 4, 16)] == [1, 2, 3, 4, 4]


@pytest.mark.parametrize("jobs", [0, -1, 65])
def test_a_bad_jobs_value_is_one_line(jobs, tmp_path):
    with pytest.raises(PvrecError, match=f"--jobs must be 1 to 64, not {jobs}"):
        RecordOptions(out=tmp_path / "r", cmd=[], interval=1.0, jobs=jobs).check()


def test_a_recording_with_two_jobs_exports_the_dump_byte_identical(tmp_path):
    from pvrec.recording.reader import open_recording
    from tests.helpers import pvrec_main

    # GIVEN a dump of three kpageflags chunks (2.5 M pages), so that the threads share it
    path = tmp_path / "big.kpf"
    synthetic_flags(2_500_000, seed=5).tofile(path)
    for jobs in ("1", "2"):
        # WHEN it is recorded with --jobs 1 and --jobs 2
        out = tmp_path / f"rec{jobs}"
        code, _, err = pvrec_main("record", "-q", "--kpageflags", path, "--jobs", jobs,
                                  "--interval", "100ms", "--duration", "0.3s", "-o", out)
        assert code == 0, err
        # THEN every frame notes its smear and the last one exports as the dump itself
        frames = open_recording(out).frames
        assert all(0 < f.context["smear_s"] <= f.context["sample_s"] for f in frames)
        code, _, err = pvrec_main("export", out, "--frame", "-1", "-o", tmp_path / f"{jobs}.kpf")
        assert code == 0, err
        assert (tmp_path / f"{jobs}.kpf").read_bytes() == path.read_bytes()


def test_a_write_error_mid_frame_stops_the_read_threads_at_once(dump):
    from pvrec.recorder.sampler import Sampler

    class FullDisk:  # takes the first chunk, then the disk is full
        frames, key_every = 0, 30

        def add_frame(self, runs, *args, **kwargs):
            next(runs)
            raise PvrecError("cannot write frame 0: No space left on device")

    path, _ = dump
    with PageFlagsFile(str(path)) as f:
        sampler = Sampler(f, 10_500, FullDisk(), 0.0, with_context=False, jobs=3)
        sampler.source.chunks = lambda n, **kw: PageFlagsFile.chunks(f, n, CHUNK, **kw)
        try:
            sampler.take(0.0)
        except PvrecError as exc:
            error = exc  # its traceback keeps take's frame, and so the reader, alive
        assert "No space left" in error.message and error.__traceback__ is not None
        assert reader_threads() == []  # stopped by take, not left to the garbage collector


@pytest.mark.parametrize("jobs", [1, 3])
def test_each_sample_reads_into_the_same_buffers(dump, jobs):
    """GIVEN a kpageflags file, WHEN it is read twice (two samples), THEN the chunks of the
    second land in the buffers of the first (fresh ones fault their pages in every time)."""
    path, flags = dump
    with PageFlagsFile(str(path)) as f:
        first = {c.base.ctypes.data if c.base is not None else c.ctypes.data
                 for c in f.chunks(10_500, CHUNK, jobs=jobs)}
        second = [c.copy() for c in f.chunks(10_500, CHUNK, jobs=jobs)]
        again = {c.base.ctypes.data if c.base is not None else c.ctypes.data
                 for c in f.chunks(10_500, CHUNK, jobs=jobs)}
    assert again == first and len(first) == (1 if jobs == 1 else jobs + 1)
    assert np.array_equal(np.concatenate(second), flags)
