"""`pvrec record`'s own cost, end to end: the --max-overhead budget and its bad values, the
overhead it reports (summary, end.json, `pvrec info`), the warning an explicit costly interval
gets, and the CPU accounting against a workload's known CPU burn and the kernel's reads."""

from __future__ import annotations

import json
import math
import sys
import time

import pytest

from pvrec.commands.record import StatusLine
from pvrec.recording.figures import Figures
from pvrec.recording.format import FrameInfo
from pvrec.recording.reader import open_recording
from tests.conftest import needs_kpageflags
from tests.helpers import pvrec_main, run_pvrec


def _record(dump, out, *extra):
    return pvrec_main("record", "-q", "--kpageflags", dump, "-o", out, *extra)


@pytest.mark.parametrize("value", ["0", "-5%", "101", "150%", "lots", "5%%"])
def test_bad_max_overhead_is_one_line_exit_2(dump, tmp_path, value):
    code, out, err = _record(dump[0], tmp_path / "rec", f"--max-overhead={value}")
    assert (code, out) == (2, "")
    assert err == ("pvrec: --max-overhead must be a percentage of the machine above 0 and at "
                   f"most 100, such as 5%, not {value}\n")
    assert not (tmp_path / "rec").exists()


def test_a_budget_too_small_for_a_sample_a_minute_is_refused(dump, tmp_path):
    code, out, err = _record(dump[0], tmp_path / "rec", "--max-overhead", "0.00001%")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith("pvrec: --max-overhead 1e-05% is too small: a sample costs ")
    assert "of CPU here, so it allows one every " in err and "one a minute needs" in err
    assert not (tmp_path / "rec").exists()


def test_the_budget_holds_ticks_and_counts_them_apart(dump, tmp_path):
    # GIVEN a dump whose samples cost a few ms of CPU, ticks every 5 ms, a budget of 1%
    out = tmp_path / "rec"
    code, _, err = _record(dump[0], out, "--interval", "5ms", "--max-overhead", "1%",
                           "--duration", "2s")
    assert code == 0, err
    rec = open_recording(out)
    end, ov = rec.end, rec.end["overhead"]
    # THEN most ticks are given up for the budget, counted apart from late ones, and every
    # tick of the duration is a frame, a late tick or a held one
    ticks = math.floor(end["duration"] / 0.005)
    # (a frame of this dump costs ~1-2 ms of CPU, a tick's share of the budget 0.1 ms: without
    # the budget no tick would be held; the margin leaves room for a loaded machine)
    assert end["budget_ticks"] > 4 * len(rec)
    assert len(rec) - 2 + end["skipped_ticks"] + end["budget_ticks"] in range(ticks - 1, ticks + 2)
    # AND pvrec's CPU over the session stays within the budget, but for the sample it has
    # not yet paid for (at most the dearest one) and the last frame, taken at the deadline
    costs = [f.context["cpu_s"] for f in rec.frames]
    cpu = ov["user_s"] + ov["system_s"]
    assert cpu <= 0.01 * ov["cpus"] * ov["wall_s"] + max(costs) + costs[-1] + 0.02
    assert ov["max_overhead"] == 1.0 and ov["cpus"] >= 1
    # AND the summary says so
    assert f"{end['budget_ticks']} held for the budget" in err
    assert "pvrec used " in err and "--max-overhead 1%" in err


def _status_line(tick_cpu: float, tick_wall: float, interval: float, budget=None):
    """A StatusLine over a recorder whose ticks' samples cost tick_cpu (CPU) in tick_wall."""
    stats = Figures(interval=interval)
    for i in range(3):
        stats.add(FrameInfo(i, i * interval, f"frames/{i:06d}.npz", "key",
                            {"sample_s": tick_wall, "cpu_s": tick_cpu, "bytes": 1}))
    header = type("H", (), {"ram_pages": 6 << 18, "page_size": 4096})()  # 6 GiB
    sampler = type("S", (), {"stats": stats, "budget": budget,
                             "writer": type("W", (), {"header": header})()})()
    line = StatusLine(sampler, time.monotonic(), enabled=False)
    line.cpus = 2
    return line


def test_an_explicit_costly_interval_warns_once(capsys):
    # GIVEN samples of 0.6 s CPU (0.7 s wall) every 1 s on 2 CPUs: 30% of the machine
    line = _status_line(0.6, 0.7, 1.0)
    line.update()
    line.update()
    err = capsys.readouterr().err
    assert err == ("pvrec: warning: at --interval 1.0 s pvrec takes ~30% of 2 CPUs (a sample "
                   "costs 0.6 s of CPU, 100 ms/GiB): a CPU-bound workload runs up to ~1.43x "
                   "slower; --max-overhead 5% bounds it\n")
    # samples that run longer than the interval: the share is of their own wall time
    line = _status_line(1.2, 1.6, 1.0)
    line.update()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("pvrec: warning: samples take 1.6 s here, longer than the interval")
    assert "pvrec takes ~37% of 2 CPUs" in err[1]  # 1.2 / (1.6 x 2)
    # under 20%, or with a budget: no warning
    for quiet in (_status_line(0.3, 0.35, 1.0), _status_line(0.6, 0.7, 1.0, budget=object())):
        quiet.update()
    assert capsys.readouterr().err == ""


def test_a_budgeted_recording_does_not_warn_about_its_interval(dump, tmp_path):
    code, _, err = _record(dump[0], tmp_path / "b", "--interval", "1ms", "--max-overhead",
                           "50%", "--duration", "0.5s")
    assert code == 0 and "pvrec takes" not in err and "longer than the interval" not in err


def test_the_workloads_cpu_is_its_own_not_pvrecs(dump, tmp_path):
    # GIVEN a workload that burns 1.5 s of CPU of its own clock and writes 8 MiB
    out = tmp_path / "rec"
    burn = (f"open({str(tmp_path / 'big')!r}, 'wb').write(bytes(8 << 20))\n"
            "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 1.5:\n    pass\n")
    r = run_pvrec("record", "-q", "--kpageflags", dump[0], "--interval", "100ms", "-o", out,
                  "--", sys.executable, "-c", burn)
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    ov = rec.end["overhead"]
    # THEN it is counted as the workload's, and pvrec's CPU is a small part of it
    assert ov["workload_cpu_s"] >= 1.5
    assert ov["user_s"] + ov["system_s"] < 0.5 * ov["workload_cpu_s"]
    assert ov["workload_wall_s"] >= 1.5 / ov["cpus"]
    assert 1.0 <= ov["slowdown"] < 1.5
    # AND the bytes pvrec wrote are the recording's, not the workload's
    assert ov["written"] == rec.end["bytes"] + sum(
        (out / name).stat().st_size for name in ("header.json", "frames.jsonl"))
    # AND `pvrec info` prints what the summary printed
    summary = [line for line in r.stderr.splitlines() if line.startswith("pvrec: pvrec used")]
    code, text, _ = pvrec_main("info", out, env={"COLUMNS": "400"})
    assert code == 0 and summary and summary[0].removeprefix("pvrec: ") in text
    code, js, _ = pvrec_main("info", out, "--json")
    assert json.loads(js)["overhead"] == ov


@needs_kpageflags
def test_live_samples_count_the_kernels_read_and_skip_holes(tmp_path):
    out = tmp_path / "rec"
    r = run_pvrec("record", "-q", "--interval", "300ms", "--duration", "1.5s", "-o", out)
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    ov, frames = rec.end["overhead"], rec.frames
    cpu = ov["user_s"] + ov["system_s"]
    # Every frame's CPU is inside the session's, and most of it is the kernel reading
    # /proc/kpageflags (system time)
    assert sum(f.context["cpu_s"] for f in frames) <= cpu + 0.05
    assert ov["system_s"] >= 0.5 * cpu
    assert ov["sample_per_gib"] > 0 and ov["ram_bytes"] == rec.header.ram_pages * 4096
    assert ov["peak_rss"] > 0 and ov["written"] >= rec.end["bytes"]
    assert "a sample " in r.stderr and "ms/GiB" in r.stderr
