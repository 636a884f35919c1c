"""`pvrec info`: the summary of a recording, checked on one whose content is known."""

from __future__ import annotations

import json

import numpy as np

from pvrec import flags as kpf
from pvrec.commands.info import sparkline
from tests.helpers import make_recording as write_recording
from tests.helpers import run_pvrec

BUDDY, ANON = 1 << kpf.BUDDY, (1 << kpf.ANON) | (1 << kpf.LRU)


def make_recording(path):
    """4096 pages, a hole at 1024..2048; anonymous memory grows 512 -> 1024 pages."""
    header = {"pfn_count": 4096, "hpage_pages": 512, "page_size": 4096, "hostname": "box",
              "kernel": "6.1.0", "interval": 1.0, "command": ["make", "-j8"],
              "ram_ranges": [[0, 1024], [2048, 4096]],
              "zones": [{"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": 4096}]}

    def frames():
        for anon in (512, 768, 1024):
            f = np.full(4096, BUDDY, np.uint64)
            f[1024:2048] = 0  # the hole reads as no flags
            f[2048:2048 + anon] = ANON
            yield f

    write_recording(path, frames(), header=header, key_every=2,
                    context=lambda i: {"late": 0.001 * (i + 1), "sample_s": 0.5},
                    end={"reason": "workload exited with status 0", "exit_code": 0,
                         "skipped_ticks": 2, "failed_samples": 0})


def test_info_json_holds_the_known_figures(tmp_path):
    make_recording(tmp_path / "rec")
    r = run_pvrec("info", tmp_path / "rec", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["complete"] and s["frames"] == 3 and s["duration_s"] == 2.0
    assert s["ram_bytes"] == 3072 * 4096 and s["command"] == ["make", "-j8"]
    assert s["skipped_ticks"] == 2 and s["jitter_ms"]["p50"] == 2.5
    classes = {c["class"]: c for c in s["classes"]}
    assert classes["anonymous"] == {"class": "anonymous", "start": 512 * 4096,
                                    "end": 1024 * 4096, "min": 512 * 4096, "max": 1024 * 4096}
    assert classes["free"]["start"] == (3072 - 512) * 4096  # the hole is not counted
    frag = s["fragmentation"]["Normal"]
    assert frag["free_hp_blocks"]["series"] == [5, 4, 4]


def test_info_text_and_errors(tmp_path):
    make_recording(tmp_path / "rec")
    r = run_pvrec("info", tmp_path / "rec")
    assert r.returncode == 0, r.stderr
    for text in ("complete", "host", "box (kernel 6.1.0", "make -j8", "3 frames, interval 1.0 s, mean gap 1.0 s, 2 ticks skipped",
                 "2 ticks skipped", "anonymous", "free_hp_blocks"):
        assert text in r.stdout
    assert "in 2 ranges," in r.stdout and "saved dump" not in r.stdout
    r = run_pvrec("info", tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("pvrec: ") and "not a pvrec recording" in r.stderr


def test_info_of_a_recorded_dump_says_its_machine_is_not_known(tmp_path):
    """GIVEN a recording of a saved dump (record -F: a flat layout, one range), WHEN shown,
    THEN the host line says the host recorded a dump of an unknown machine, and '1 range'."""
    from pvrec.layout import flat_layout

    write_recording(tmp_path / "rec", [np.full(4096, BUDDY, np.uint64)],
                    header={"pfn_count": 4096, "hostname": "box", "kernel": "6.1.0",
                            **flat_layout(4096)})
    r = run_pvrec("info", tmp_path / "rec")
    assert r.returncode == 0, r.stderr
    assert "box (kernel 6.1.0" in r.stdout and "it recorded a saved dump, whose machine is " \
        "not known" in r.stdout and "RAM in 1 range," in r.stdout


def test_sparkline():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5.01]) == "▄▄▄"
    assert len(sparkline(list(range(100)), 16)) == 16
