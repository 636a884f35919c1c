"""`pvrec record --events` and `pvrec mark` for real, on this machine's kernel.

Needs root, /proc/kpageflags and tracefs (skipped with the reason otherwise). State these tests
change is restored: compact_memory is stateless; vm.nr_hugepages is put back in a finally.
Every wait is for an event (a frame line, an instance directory), never a guessed sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pvrec.kernel import tracefs
from pvrec.recording.events import column
from pvrec.recording.reader import open_recording
from pvrec.render.events import SCANNER_COLORS
from tests.conftest import needs_kpageflags
from tests.helpers import REPO, run_pvrec, start_pvrec, wait_frames, wait_gone, wait_until

INSTANCES = tracefs.TRACEFS / "instances"
PVREC = f"PYTHONPATH={REPO} {sys.executable} -m pvrec"


def _tracefs_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    try:
        tracefs.ensure_mounted()
        tracefs.check_events()
    except Exception as exc:  # noqa: BLE001 - the reason to skip
        return str(exc)
    return None


needs_tracefs = pytest.mark.skipif(_tracefs_ready() is not None,
                                   reason=f"tracefs: {_tracefs_ready()}")
pytestmark = [needs_kpageflags, needs_tracefs]


def top_level_events() -> str:
    return (tracefs.TRACEFS / "set_event").read_text()


def instance_of(pid: int) -> Path:
    return INSTANCES / f"pvrec-{pid}"


@pytest.fixture
def untouched_tracing():
    """The top level's enabled events are the same after the test as before it."""
    before = top_level_events()
    yield
    assert top_level_events() == before


def all_events(rec, kind: str) -> list[tuple[int, np.ndarray]]:
    out = []
    for pos in range(len(rec)):
        rows = rec.events_of(pos).get(kind)
        if rows is not None and len(rows):
            out.append((pos, rows))
    return out


def test_compact_memory_gives_scanners_that_meet_inside_the_zone_and_are_drawn(
        tmp_path, untouched_tracing):
    out = tmp_path / "rec"
    r = run_pvrec("record", "-q", "--events", "-i", "300ms", "-o", out, "--", "sh", "-c",
                  f"{PVREC} mark before && echo 1 > /proc/sys/vm/compact_memory && "
                  f"{PVREC} mark after")
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    # zone_end is where the kernel has grown the zone to so far: with deferred_init=lazy (as on
    # the test VM) a zone's pages are initialised on demand, so it may end short of its span.
    zones = {z.start_pfn: z.end_pfn for z in rec.header.zones}
    begins, ends = all_events(rec, "compaction_begin"), all_events(rec, "compaction_end")
    assert begins and ends
    for _pos, rows in begins:
        for zone_start, migrate, free, zone_end in rows[:, 1:5].tolist():
            assert zone_start in zones and zone_start < zone_end <= zones[zone_start]
            assert zone_start <= migrate < zone_end and zone_start <= free < zone_end
    block_order = rec.header.hpage_pages.bit_length() - 1
    complete = [row for _pos, rows in ends for row in rows
                if row[6] == tracefs.COMPACT_STATUS["complete"]]
    assert complete
    for row in complete:  # the scanners met: the free scanner's block at or below the migrate's
        migrate = column(row[None], "compaction_end", "migrate_pfn")[0]
        free = column(row[None], "compaction_end", "free_pfn")[0]
        assert free >> block_order <= migrate >> block_order
    assert [m["text"] for f in rec.frames for m in f.context.get("markers", [])] == \
        ["before", "after"]
    assert not any(INSTANCES.glob("pvrec-*"))
    # drawn: the frame of the pass has the migrate scanner's colour on its map
    pos = ends[0][0]
    counts = []
    for frame in (0, pos):
        png = tmp_path / f"f{frame}.png"
        r = run_pvrec("render", out, "-o", png, "--events", "--frame", frame)
        assert r.returncode == 0, r.stderr
        rgb = np.asarray(Image.open(png).convert("RGB"))
        blue = np.array([int(SCANNER_COLORS["light"][0][i:i + 2], 16) for i in (1, 3, 5)])
        counts.append(int((rgb == blue).all(axis=2).sum()))
    assert counts[1] > counts[0] + 100


def test_the_instance_goes_after_ctrl_c_and_a_failing_workload(tmp_path, untouched_tracing):
    p = start_pvrec("record", "-q", "--events", "-i", "200ms", "-o", tmp_path / "a", "--",
                    "sleep", "60")
    wait_frames(tmp_path / "a", 1)
    assert instance_of(p.pid).is_dir()
    os.kill(p.pid, signal.SIGINT)
    assert p.wait(60) == 130
    assert not instance_of(p.pid).exists()
    r = run_pvrec("record", "-q", "--events", "-o", tmp_path / "b", "--", "sh", "-c", "exit 3")
    assert r.returncode == 3
    assert not any(INSTANCES.glob("pvrec-*"))


def test_a_sigkilled_recordings_instance_is_removed_by_the_next_run(tmp_path,
                                                                     untouched_tracing):
    p = start_pvrec("record", "-q", "--events", "--kill-after", "1s", "-i", "200ms", "-o",
                    tmp_path / "a", "--", "sleep", "60")
    wait_frames(tmp_path / "a", 1)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(30)
    wait_gone(p.pid)
    stale = instance_of(p.pid)
    assert stale.is_dir()  # nothing could remove it: SIGKILL
    r = run_pvrec("record", "-q", "--events", "--duration", "0.3", "-o", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert f"removed trace instance {stale.name}, left by a pvrec that was killed" in r.stderr
    assert not stale.exists() and not any(INSTANCES.glob("pvrec-*"))


def test_without_root_events_says_why_in_one_line(tmp_path):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed")
    out = tmp_path / "rec"
    tmp_path.chmod(0o777)
    r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-m", "pvrec", "record", "--events", "--duration", "1",
                        "-o", str(out)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--events needs root" in r.stderr
    assert not out.exists()


def test_without_events_nothing_changes(tmp_path, untouched_tracing):
    r = run_pvrec("record", "-q", "--duration", "0.3", "-o", tmp_path / "rec")
    assert r.returncode == 0, r.stderr
    rec = open_recording(tmp_path / "rec")
    assert "events" not in rec.header.unknown and all("events" not in f.context
                                                       for f in rec.frames)
    assert all("pagetypeinfo" in f.context for f in rec.frames)  # cheap: always, as root
    r = run_pvrec("render", tmp_path / "rec", "-o", tmp_path / "x.png", "--events")
    assert r.returncode == 2
    assert "was recorded without the kernel's events" in r.stderr


def test_marks_show_in_info_and_metrics(tmp_path):
    out = tmp_path / "rec"
    r = run_pvrec("record", "-q", "-o", out, "--", "sh", "-c",
                  f"{PVREC} mark '[bold]phase 1[/]'")
    assert r.returncode == 0, r.stderr
    info = run_pvrec("info", out)
    assert "[bold]phase 1[/]" in info.stdout  # the text itself, never read as markup
    summary = json.loads(run_pvrec("info", out, "--json").stdout)
    assert [m["text"] for m in summary["markers"]] == ["[bold]phase 1[/]"]
    csv = run_pvrec("metrics", out, "-m", "free_pages", "-z", "Normal").stdout.splitlines()
    assert csv[0].split(",")[:3] == ["frame", "t", "markers"]
    assert sum("[bold]phase 1[/]" in line for line in csv[1:]) == 1
    outside = run_pvrec("mark", "hello", env={"PVREC_MARK": ""})
    assert outside.returncode == 2 and "not inside a pvrec recording" in outside.stderr


@pytest.mark.slow
def test_page_cache_hugetlb_and_unmovable_pipes_force_fallbacks(tmp_path, untouched_tracing):
    """The fallback pattern: memory filled (page cache, then hugetlb takes every free 2 MiB
    block), then unmovable pipe buffers must fall back into movable blocks."""
    nr = Path("/proc/sys/vm/nr_hugepages")
    before = nr.read_text()
    try:
        r = run_pvrec("record", "-q", "--events", "-i", "2s", "-o", tmp_path / "rec", "--",
                      REPO / "examples" / "fallbacks_and_compaction.sh",
                      env={"PVREC": f"{sys.executable} -m pvrec"}, timeout=600)
    finally:
        nr.write_text(before)
    assert r.returncode == 0, r.stderr
    rec = open_recording(tmp_path / "rec")
    totals: dict[str, int] = {}
    for f in rec.frames:
        for k, v in (f.context.get("events") or {}).items():
            totals[k] = totals.get(k, 0) + v
    assert totals.get("extfrag_fragmenting", 0) > 0, totals
    rows = np.vstack([r for _p, r in all_events(rec, "extfrag")])
    assert (rows[:, 1] < rec.pfn_count).all()  # every fallback's PFN is a page of this machine
    wait_until("hugetlb pages freed", lambda: nr.read_text() == before)
