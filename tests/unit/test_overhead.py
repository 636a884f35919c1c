"""pvrec's own cost: the CPU accounting (every thread, kernel time included), the budget's pacing
and tick counting, the overhead figures and how they are read back, the holes a sample skips."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pvrec.errors import PvrecError
from pvrec.kernel import cpu
from pvrec.kernel.holes import Holes, unbacked_ranges
from pvrec.kernel.kpageflags import PageFlagsFile
from pvrec.recorder.budget import Budget, next_tick, parse_percent
from pvrec.recording.figures import Figures
from pvrec.recording.format import FrameInfo
from pvrec.recording.overhead import Overhead


def _thread_stime(tid: int) -> float:
    """System seconds of one thread, from /proc/self/task/TID/stat (field 15)."""
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def test_process_cpu_counts_the_kernel_time_of_another_thread():
    # GIVEN a thread that spends its CPU in the kernel (pread of /dev/zero copies zeroes in
    # kernel mode) until its own clock says 0.8 s
    burnt: dict = {}

    def burn():
        buf = bytearray(1 << 20)
        fd = os.open("/dev/zero", os.O_RDONLY)
        start = time.thread_time()
        while time.thread_time() - start < 0.8:
            os.preadv(fd, [buf], 0)
        burnt["cpu"] = time.thread_time() - start
        burnt["stime"] = _thread_stime(threading.get_native_id())
        os.close(fd)

    user0, sys0 = cpu.process_cpu()
    t = threading.Thread(target=burn)
    t.start()
    t.join()
    user1, sys1 = cpu.process_cpu()
    # THEN the process's CPU has the thread's burn, and its system part the thread's kernel time
    assert (user1 - user0) + (sys1 - sys0) >= burnt["cpu"] - 0.02
    # (the kernel splits a process's CPU into user and system time by sampling ticks, for
    # the process as a whole and for each thread apart: the split is rough, so compare with
    # the burn's CPU, which is kernel time for the most part, with room for the sampling)
    assert burnt["stime"] >= 0.4 * burnt["cpu"]  # the burn really was kernel time
    assert sys1 - sys0 >= 0.4 * burnt["cpu"]


def test_machine_busy_parses_proc_stat(tmp_path):
    (tmp_path / "stat").write_text("cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8\n")
    hz = os.sysconf("SC_CLK_TCK")
    assert cpu.machine_busy(tmp_path) == pytest.approx((100 + 5 + 50 + 3 + 2 + 1) / hz)
    (tmp_path / "stat").write_text("garbage\n")
    assert cpu.machine_busy(tmp_path) is None
    assert cpu.machine_busy(tmp_path / "none") is None


def test_peak_rss_of_this_process(tmp_path):
    assert cpu.peak_rss() >= 10 << 20  # a Python with numpy loaded
    (tmp_path / "self").mkdir()
    (tmp_path / "self/status").write_text("Name:\tx\nVmHWM:\t  2048 kB\n")
    assert cpu.peak_rss(tmp_path) == 2 << 20


@pytest.mark.parametrize("text", ["0", "0%", "-5%", "101", "100.5%", "abc", "", "nan", "inf%"])
def test_bad_max_overhead_is_one_line(text):
    with pytest.raises(PvrecError) as e:
        parse_percent(text)
    assert str(e.value) == ("--max-overhead must be a percentage of the machine above 0 and "
                            f"at most 100, such as 5%, not {text}")


@pytest.mark.parametrize("text, value", [("5%", 5.0), ("5", 5.0), ("2.5 %", 2.5), ("100", 100.0),
                                         ("0.01%", 0.01)])
def test_max_overhead_parses(text, value):
    assert parse_percent(text) == value


def test_next_tick_counts_late_and_held_ticks_apart():
    # on time: the sample ended within its tick, no budget
    assert next_tick(3, 3.5, -np.inf, 0.0, 1.0) == (4, 0, 0)
    # the sample ran long (ended at 5.2: ticks 4 and 5 passed while it ran)
    assert next_tick(3, 5.2, -np.inf, 0.0, 1.0) == (6, 2, 0)
    # the budget allows the next sample at 8.5: ticks 4..8 given up for it, none late
    assert next_tick(3, 3.5, 8.5, 0.0, 1.0) == (9, 0, 5)
    # both: late ticks 4, 5; held 6, 7
    assert next_tick(3, 5.2, 7.2, 0.0, 1.0) == (8, 2, 2)
    # the budget's time falls on a tick exactly: that tick is kept
    assert next_tick(3, 3.5, 6.0, 0.0, 1.0) == (6, 0, 2)


def test_budget_keeps_the_share_in_every_stretch():
    # GIVEN samples of 0.6 s CPU, a budget of 5% of 2 CPUs (0.1 CPU s per s), ticks every 1 s
    b = Budget(5.0, 2, 0.0, 0.0)
    t, cpu_total, k, starts = 0.0, 0.0, 0, []
    for _ in range(50):
        starts.append(t)
        cpu_total += 0.6
        done = t + 0.7
        k, _, _ = next_tick(k, done, b.spend(done, cpu_total), 0.0, 1.0)
        t = float(k)
    # THEN samples start every 6 s: 0.6 s / 0.1; the share over the run is 5% at most
    assert np.diff(starts).tolist() == [6.0] * 49
    assert cpu_total / (starts[-1] + 6.0) / 2 <= 0.05 + 1e-9


def test_budget_banks_no_credit():
    # GIVEN an idle minute (no CPU spent), then a sample of 1 CPU s at a budget of 0.1 CPU/s
    b = Budget(5.0, 2, 0.0, 0.0)
    assert b.spend(60.0, 0.0) <= 60.0  # no CPU spent: the next sample may go at once
    # THEN the next sample waits the full 10 s after it: the idle minute bought nothing
    assert b.spend(61.0, 1.0) == pytest.approx(70.0)


def test_budget_too_small_for_a_sample_a_minute_says_the_interval():
    b = Budget(0.1, 2, 0.0, 0.0)
    b.check_affordable(0.12)  # one every 60 s exactly
    with pytest.raises(PvrecError) as e:
        b.check_affordable(0.6)
    assert str(e.value) == ("--max-overhead 0.1% is too small: a sample costs 0.6 s of CPU "
                            "here, so it allows one every 5m00.0s; one a minute needs "
                            "--max-overhead 0.5% or more")


def test_overhead_slowdown_estimate():
    # a workload that kept both CPUs busy loses pvrec's CPU / 2 of its wall time
    busy = Overhead(cpus=2, workload_wall_s=110.0, workload_cpu_s=200.0, workload_pvrec_s=20.0)
    assert busy.slowdown == pytest.approx(110.0 / 100.0)
    assert busy.workload_share == pytest.approx(20.0 / 220.0)
    # one that left the CPUs idle loses nothing
    idle = Overhead(cpus=2, workload_wall_s=100.0, workload_cpu_s=0.0, workload_pvrec_s=20.0)
    assert idle.slowdown == pytest.approx(1.0)
    # half busy: half of it
    half = Overhead(cpus=2, workload_wall_s=100.0, workload_cpu_s=90.0, workload_pvrec_s=20.0)
    assert half.slowdown == pytest.approx(100.0 / (100.0 - 20.0 * 0.5 / 2))
    assert Overhead(cpus=2).slowdown is None


def test_overhead_round_trips_and_drops_bad_fields():
    ov = Overhead(cpus=2, wall_s=100.0, user_s=1.5, system_s=6.0, machine_busy_s=150.0,
                  peak_rss=80 << 20, written=5 << 20, max_overhead=5.0, workload_wall_s=98.0,
                  workload_cpu_s=190.0, workload_pvrec_s=7.0, tick_cpu_s=0.55,
                  ram_bytes=24 << 30)
    d = ov.to_dict()
    assert d["share"] == 0.0375 and d["sample_per_gib"] == pytest.approx(0.55 / 24, abs=1e-6)
    assert Overhead.from_dict(d) == ov
    bad = dict(d, cpus=0, peak_rss=-1, user_s="x", system_s=True, wall_s=float("nan"),
               written=1.5)
    back = Overhead.from_dict(bad)
    assert (back.cpus, back.peak_rss, back.user_s, back.system_s, back.wall_s, back.written) \
        == (1, 0, 0.0, 0.0, 0.0, None)
    assert Overhead.from_dict(["not", "a", "dict"]) is None
    assert ov.text() == (
        "pvrec used 3.6% of 2 CPUs while the workload ran (3.8% with the frames before and "
        "after it; 7.5 s CPU, 6.0 s in the kernel; a sample 23 ms/GiB), peak RSS 80.0 MiB, "
        "wrote 5.0 MiB; --max-overhead 5%; workload slowdown ~1.04x (estimated)")


def test_figures_count_cpu_and_budget_ticks():
    fig = Figures(interval=1.0)
    for i, c in enumerate([0.9, 0.5, 0.7]):
        fig.add(FrameInfo(i, float(i), f"frames/{i:06d}.npz", "key", {"sample_s": c + 0.1,
                                                                    "cpu_s": c, "bytes": 10}))
    assert fig.tick_cpu == pytest.approx(0.6)
    fig.budget_ticks = 7
    assert fig.timing_text() == ("3 frames, interval 1.0 s, mean gap 1.0 s, 0 ticks skipped, "
                                 "7 held for the budget")
    assert fig.end_fields()["tick_cpu_s"] == pytest.approx(0.6)
    back = Figures.of([], 1.0, {"skipped_ticks": 2})
    assert back.budget_ticks is None and "held" not in back.timing_text()


def _sys_tree(root: Path, blocks: list[int], block_pages: int = 1 << 15) -> Path:
    (root / "devices/system/memory").mkdir(parents=True)
    (root / "devices/system/memory/block_size_bytes").write_text(f"{block_pages * 4096:x}\n")
    node = root / "devices/system/node/node0"
    node.mkdir(parents=True)
    for b in blocks:
        (node / f"memory{b}").mkdir()
        (root / f"devices/system/memory/memory{b}").mkdir()
    return root


def test_unbacked_ranges_are_the_pfns_no_memory_block_covers(tmp_path):
    sys_root = _sys_tree(tmp_path, [0, 1, 4, 5])  # blocks of 32 Ki pages; 2 and 3 absent
    assert unbacked_ranges(8 << 15, sys_root) == [(2 << 15, 4 << 15), (6 << 15, 8 << 15)]
    assert unbacked_ranges(6 << 15, sys_root) == [(2 << 15, 4 << 15)]
    assert unbacked_ranges(8 << 15, tmp_path / "nothing") == []


def test_chunks_skip_holes_and_give_the_same_words(tmp_path):
    # GIVEN a dump whose PFNs of memory blocks 2..3 all read as 0, and one block (6) not
    # listed but with varied words
    n = 8 << 15
    words = np.arange(n, dtype=np.uint64) * 7 + 1
    words[2 << 15:4 << 15] = 0
    (tmp_path / "d.kpf").write_bytes(words.astype("<u8").tobytes())
    sys_root = _sys_tree(tmp_path / "sys", [0, 1, 4, 5, 7])
    holes = Holes(n, sys_root)
    with PageFlagsFile(str(tmp_path / "d.kpf")) as f:
        assert holes.stale()
        holes.forget()
        pos = 0
        for c in f.chunks(n, chunk_pages=1 << 16):
            holes.watch(c, pos)
            pos += c.size
        holes.learn()
        # THEN only the uniform hole is skipped
        assert holes.known == [(2 << 15, 4 << 15, 0)] and holes.skipped_pages == 2 << 15
        assert not holes.stale()
        reads = []
        real = f.read_into
        f.read_into = lambda out, first: reads.append((first, out.size)) or real(out, first)
        got = np.concatenate([c.copy() for c in f.chunks(n, 1 << 16, skip=holes.known)])
    assert np.array_equal(got, words)
    assert not any(first < 4 << 15 and first + size > 2 << 15 for first, size in reads)
    # AND a memory block added (hot-add) makes them stale: the next sample reads everything
    (sys_root / "devices/system/memory/memory9").mkdir()
    assert holes.stale()


def test_the_sampler_reads_holes_at_key_frames_only_and_loses_no_page(tmp_path):
    from pvrec.layout import flat_layout
    from pvrec.recorder.sampler import Sampler
    from pvrec.recording.reader import open_recording
    from pvrec.recording.writer import Writer

    # GIVEN a dump of 8 memory blocks whose blocks 2..3 are unbacked (all 0) and a sampler
    # that knows them, writing a key frame every 3 frames
    n = 8 << 15
    words = np.arange(n, dtype=np.uint64) % 5 + 1
    words[2 << 15:4 << 15] = 0
    (tmp_path / "d.kpf").write_bytes(words.astype("<u8").tobytes())
    sys_root = _sys_tree(tmp_path / "sys", [0, 1, 4, 5, 6, 7])
    with PageFlagsFile(str(tmp_path / "d.kpf")) as f:
        hole_reads = []
        real = f.read_into

        def counting(out, first):
            if first < 4 << 15 and first + out.size > 2 << 15:
                hole_reads.append(writer.frames)  # the index of the frame being taken
            return real(out, first)

        f.read_into = counting
        writer = Writer(tmp_path / "rec", {"pfn_count": n, **flat_layout(n)}, key_every=3)
        sampler = Sampler(f, n, writer, time.monotonic(), with_context=False,
                          holes=Holes(n, sys_root))
        for _ in range(6):
            assert sampler.take(time.monotonic())
    # THEN the holes were read at frames 0 and 3 only (the key frames), every frame whole
    assert sorted(set(hole_reads)) == [0, 3]
    rec = open_recording(tmp_path / "rec")
    assert len(rec) == 6 and all(np.array_equal(fl, words) for _, fl in rec.iter_frames())
