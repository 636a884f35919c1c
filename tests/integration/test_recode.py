"""`pvrec recode RUN -o NEW`: a recording written again in the current encoding exports every
frame byte-identical, keeps its header, index context and end.json, says each damaged frame
once, and never writes over what is not a recording."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pvrec.recording.writer import Writer
from tests.helpers import pvrec_main, synthetic_flags

PAGES = 5000


def old_recording(path, frames=6, complete=True):
    """A version-1 recording (what pvrec wrote before version 2) with a workload channel,
    context, kernel events in one frame, and a key frame every 3."""
    w = Writer(path, {"pfn_count": PAGES, "hostname": "box", "command": ["make"]},
               key_every=3, channels=("flags", "workload"), format_version=1)
    flags = synthetic_flags(PAGES, seed=0, runs=300)
    for i in range(frames):
        flags = flags.copy()
        flags[i * 100:i * 100 + 37] ^= np.uint64(1 << (i % 20))
        events = {"events.extfrag": np.arange(16, dtype=np.int64) + i} if i == 2 else {}
        w.add_frame(flags, i * 1.5, {"late": 0.01 * i, "vmstat": {"nr_free_pages": 100 + i}},
                    workload=np.arange(i * 10, i * 10 + 50), extra=events)
    if complete:
        w.close({"reason": "workload exited", "exit_code": 0, "overhead": {"cpus": 2}})
    else:
        w.close_index()
    return path


def export_all(run, frames, tmp_path) -> list[bytes]:
    """The dumps `pvrec export` writes of frames (a count: 0..count-1; or the numbers)."""
    out = []
    for n in range(frames) if isinstance(frames, int) else frames:
        f = tmp_path / f"{run.name}-{n}.kpf"
        code, _, err = pvrec_main("export", f"{run}@{n}", "-o", str(f))
        assert code == 0, err
        out.append(f.read_bytes())
    return out


def lines(run) -> list[dict]:
    return [json.loads(x) for x in (run / "frames.jsonl").read_text().splitlines()]


def test_recode_keeps_every_frame_header_context_and_end(tmp_path):
    # GIVEN a version-1 recording
    old = old_recording(tmp_path / "old")
    # WHEN it is recoded
    code, out, err = pvrec_main("recode", str(old), "-o", str(tmp_path / "new"))
    new = tmp_path / "new"
    # THEN one summary line, every frame exports as it did, and the files say the same
    assert code == 0 and out == "", err
    old_bytes = sum(x["bytes"] for x in lines(old))
    new_bytes = sum(x["bytes"] for x in lines(new))
    assert err.startswith(f"pvrec: recoded 6 frames of {old} into {new} (format version 3): ")
    assert err.endswith(f", {new_bytes / old_bytes:.3f}x\n") and err.count("\n") == 1
    assert export_all(old, 6, tmp_path) == export_all(new, 6, tmp_path)
    h_old, h_new = (json.loads((r / "header.json").read_text()) for r in (old, new))
    assert (h_old["format_version"], h_new["format_version"]) == (1, 3)
    assert {**h_old, "format_version": 3} == h_new
    for a, b in zip(lines(old), lines(new), strict=True):
        assert {**a, "bytes": b["bytes"]} == b  # kind, t, sample_s, late, vmstat: all kept
    e_old, e_new = (json.loads((r / "end.json").read_text()) for r in (old, new))
    assert e_new == {**e_old, "bytes": new_bytes}
    with np.load(new / "frames/000002.npz", allow_pickle=False) as z:
        assert z["events.extfrag"].tolist() == list(range(2, 18))


def test_damaged_frames_are_said_and_left_out(tmp_path):
    # GIVEN frame 1 of 6 cut short (frames 1 and 2 then cannot be decoded) and no end.json
    old = old_recording(tmp_path / "old", complete=False)
    f1 = old / "frames/000001.npz"
    f1.write_bytes(f1.read_bytes()[:100])
    # WHEN it is recoded
    code, _, err = pvrec_main("recode", str(old), "-o", str(tmp_path / "new"))
    # THEN the damage is said once, the rest is written, and there is still no end.json
    assert code == 0, err
    warning, summary = err.splitlines()
    assert warning.startswith(f"pvrec: warning: {old}: frame 1 (frames/000001.npz) is damaged (")
    assert warning.endswith("); skipped up to the next key frame")
    assert summary.startswith(f"pvrec: recoded 4 frames (2 left out that could not be read: "
                              f"damaged, or deltas after a damaged frame) of {old}")
    new = tmp_path / "new"
    # the original's key frames stay keys; frame 3 of the new one is one too (key_every 3)
    assert [x["kind"] for x in lines(new)] == ["key", "key", "delta", "key"]
    assert [x["t"] for x in lines(new)] == [0.0, 4.5, 6.0, 7.5]
    assert export_all(new, [0, 1, 2, 3], tmp_path) == export_all(old, [0, 3, 4, 5], tmp_path)
    assert not (new / "end.json").exists()


def test_recode_never_writes_over_what_is_not_a_recording(tmp_path):
    old = old_recording(tmp_path / "old", frames=2)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert pvrec_main("recode", str(old), "-o", str(other), "--force") == (
        2, "", f"pvrec: output directory {other} is not empty and does not hold a pvrec "
               f"recording; choose another -o\n")
    assert pvrec_main("recode", str(old), "-o", str(old), "--force")[2] == (
        f"pvrec: {old} is the recording being recoded: name a new directory\n")
    assert (old / "frames/000001.npz").is_file()
    # an earlier recoding is replaced with --force only
    assert pvrec_main("recode", str(old), "-o", str(tmp_path / "new"))[0] == 0
    code, _, err = pvrec_main("recode", str(old), "-o", str(tmp_path / "new"))
    assert (code, err) == (2, f"pvrec: output directory {tmp_path / 'new'} holds a pvrec "
                              f"recording (use --force to replace it)\n")
    assert pvrec_main("recode", str(old), "-o", str(tmp_path / "new"), "--force")[0] == 0


@pytest.mark.parametrize("version", [1, 2, 3])
def test_recode_to_version_1_and_back_is_the_same_recording(tmp_path, version):
    old = old_recording(tmp_path / "old", frames=4)
    assert pvrec_main("recode", str(old), "-o", str(tmp_path / "a"))[0] == 0
    code, _, err = pvrec_main("recode", str(tmp_path / "a"), "-o", str(tmp_path / "b"),
                              "--version", str(version))
    assert code == 0, err
    assert json.loads((tmp_path / "b/header.json").read_text())["format_version"] == version
    assert export_all(tmp_path / "b", 4, tmp_path) == export_all(old, 4, tmp_path)


def test_recode_with_key_every_spaces_the_key_frames_and_keeps_every_frame(tmp_path):
    # GIVEN a recording of 6 frames with a key frame every 3
    old = old_recording(tmp_path / "old")
    # WHEN it is recoded with a key frame every 4 (and with a bad interval)
    code, _, err = pvrec_main("recode", str(old), "-o", str(tmp_path / "new"), "--key-every", "4")
    bad = pvrec_main("recode", str(old), "-o", str(tmp_path / "bad"), "--key-every", "0")
    # THEN the key frames are 0 and 4 only, the header says so, and every frame exports alike
    assert code == 0, err
    new = tmp_path / "new"
    assert [x["kind"] for x in lines(old)] == ["key", "delta", "delta"] * 2
    assert [x["kind"] for x in lines(new)] == ["key", "delta", "delta", "delta", "key", "delta"]
    assert json.loads((new / "header.json").read_text())["key_every"] == 4
    assert export_all(new, 6, tmp_path) == export_all(old, 6, tmp_path)
    assert bad == (2, "", "pvrec: --key-every must be at least 1\n")
