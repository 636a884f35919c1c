"""Huge-page block states and `pvrec blockers`: exact on hand-made frames, and on the real
fixtures equal to a page-by-page reference written here from docs/metrics.md's definitions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pvrec import flags as kpf
from pvrec.blocks import STATES, frame_blocks
from pvrec.inspect.blockers import find_blockers
from pvrec.metrics import frame_metrics
from pvrec.recording.header import Header
from pvrec.runs import encode_flags
from pvrec.sources import ArraySource
from tests.helpers import load_fixture, make_recording, pvrec_main

B = 1 << kpf.BUDDY
ANON = (1 << kpf.LRU) | (1 << kpf.ANON)
SLAB = 1 << kpf.SLAB
THP = (1 << kpf.THP) | ANON
HUGETLB = 1 << kpf.HUGE
NOPAGE = 1 << kpf.NOPAGE
RAM = [[1, 159], [256, 786432], [1048576, 6553600]]  # the test VM's, as its recordings hold


# -- the reference: docs/metrics.md read page by page, with no code of pvrec/blocks.py

def reference_state(flags: np.ndarray, in_ram: np.ndarray) -> tuple[str, dict[str, int]]:
    """One block's state and page counts, from the definitions."""
    counts = dict.fromkeys(("hole", "free", "huge", "movable", "unmovable", "no flags"), 0)
    for f, ram in zip(flags.tolist(), in_ram.tolist(), strict=True):
        def has(*bits, f=f):
            return any(f >> b & 1 for b in bits)
        if not ram or has(kpf.NOPAGE):
            counts["hole"] += 1
        elif has(kpf.BUDDY):
            counts["free"] += 1
        elif has(kpf.HUGE, kpf.THP):
            counts["huge"] += 1
        elif has(kpf.LRU, kpf.ANON, kpf.MMAP, kpf.SWAPBACKED) and not has(
                kpf.SLAB, kpf.PGTABLE, kpf.RESERVED):
            counts["movable"] += 1
        elif f == 0:
            counts["no flags"] += 1
        else:
            counts["unmovable"] += 1
    n = flags.size
    if counts["hole"]:
        return "hole", counts
    if counts["free"] == n:
        return "free", counts
    if counts["huge"] == n:
        return "huge", counts
    stuck = counts["unmovable"] + counts["no flags"]  # no flags: unmovable (mixed_blocks' rule)
    if stuck == 0:
        return "compactable", counts
    if counts["no flags"] == n:
        return "no flags", counts
    if stuck == n:
        return "unmovable", counts
    return "blocked", counts


def test_each_state_exact_on_a_hand_made_frame():
    hp = 8
    blocks = {
        "free": [B] * 8,
        "compactable": [B] * 4 + [ANON] * 3 + [THP],
        "blocked": [B] * 7 + [SLAB],
        "unmovable": [SLAB] * 4 + [0] * 4,  # slab and kernel pages with no flag
        "huge": [HUGETLB] * 8,
        "no flags": [0] * 8,  # most likely not in the kernel's use yet: not 2 MiB of slab
        "hole": [B] * 7 + [NOPAGE],
    }
    flags = np.array([f for v in blocks.values() for f in v] + [B] * 8, np.uint64)
    header = Header.from_dict({"pfn_count": flags.size, "hpage_pages": hp,
                               "ram_ranges": [[0, 56], [57, 64]]})  # 56 is not RAM
    counts = frame_blocks(encode_flags(flags), header)
    assert [STATES[s] for s in counts.states()] == [*blocks, "hole"]
    assert counts.pages[2].tolist() == [0, 7, 0, 0, 1, 0]  # hole free huge movable unmovable -
    assert counts.pages[3].tolist() == [0, 0, 0, 0, 4, 4]  # ... no flags
    assert counts.pages[7].tolist() == [1, 7, 0, 0, 0, 0]


def test_compactable_hp_blocks_counts_the_compactable_blocks_of_each_zone():
    hp = 8
    flags = np.array([B] * 8 + [B] * 4 + [ANON] * 4 + [B] * 7 + [SLAB] + [ANON] * 8, np.uint64)
    header = Header.from_dict({
        "pfn_count": 32, "hpage_pages": hp, "ram_ranges": [[0, 32]],
        "zones": [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": 16},
                  {"node": 0, "name": "Normal", "start_pfn": 16, "end_pfn": 32}]})
    m = frame_metrics(encode_flags(flags), header)
    assert m["DMA32"]["compactable_hp_blocks"] == 1  # block 1 (block 0 is free, not counted)
    assert m["Normal"]["compactable_hp_blocks"] == 1  # block 3, all anonymous


@pytest.mark.parametrize("name", ["after-kbuild", "hugetlb-anon700"])
def test_block_states_of_a_real_frame_agree_with_the_page_by_page_reference(name,
                                                                           fixture_dumps):
    flags = load_fixture(name)
    header = Header.from_dict({"pfn_count": flags.size, "ram_ranges": RAM})
    counts = frame_blocks(encode_flags(flags), header)
    states = counts.states()
    in_ram = np.zeros(flags.size, bool)
    for lo, hi in RAM:
        in_ram[lo:hi] = True
    hp = header.hpage_pages
    # the first blocks (holes, DMA), both sides of the 3 GiB hole, and 300 spread over RAM
    rng = np.random.default_rng(12)
    picked = sorted({*range(40), *range(1530, 1560), *range(2040, 2060),
                     *rng.choice(len(counts), 300, replace=False).tolist()})
    seen = set()
    for b in picked:
        state, ref = reference_state(flags[b * hp:(b + 1) * hp], in_ram[b * hp:(b + 1) * hp])
        assert STATES[states[b]] == state, b
        assert counts.pages[b].tolist() == list(ref.values()), b
        seen.add(state)
    assert {"hole", "free", "blocked", "unmovable", "huge"} <= seen  # the real mix is covered


def reference_blockers(flags: np.ndarray, hp: int, most: int) -> list[tuple[int, list[int]]]:
    """(block's first PFN, its unmovable PFNs) of the blocked blocks with at most `most`
    unmovable pages, fewest first, then most free pages, then by address: block by block."""
    in_ram = np.ones(hp, bool)
    found = []
    for b in range(flags.size // hp):
        block = flags[b * hp:(b + 1) * hp]
        state, c = reference_state(block, in_ram)
        n_stuck = c["unmovable"] + c["no flags"]
        if state == "blocked" and n_stuck <= most:
            stuck = [b * hp + i for i, f in enumerate(block.tolist())
                     if reference_state(np.array([f], np.uint64), in_ram[:1])[0]
                     in ("unmovable", "no flags")]
            found.append((n_stuck, -c["free"], b * hp, stuck))
    return [(pfn, stuck) for _, _, pfn, stuck in sorted(found)]


def test_blockers_of_a_real_frame_agree_with_the_reference(fixture_dumps):
    flags = load_fixture("after-kbuild")[1 << 20:2 << 20]  # 4-8 GiB (2,048 blocks) as a dump
    source = ArraySource(flags, Header.for_dump(flags.size), "after-kbuild")
    report = find_blockers(source, 0, max_unmovable=3, top=10_000)
    expected = reference_blockers(flags, 512, 3)
    assert [(b.pfn, [x.pfn for x in b.blockers]) for b in report.blocks] == expected
    assert report.candidates == len(expected) > 10
    assert report.blocking_pages == sum(len(s) for _, s in expected)
    first = report.blocks[0].blockers[0]
    assert first.flags == int(flags[first.pfn]) and first.since == 0


def test_blockers_dates_each_page_and_reports_bad_input(tmp_path):
    hp, n = 512, 4096
    frames = []
    for i in range(4):
        f = np.full(n, B, np.uint64)
        f[:hp] = ANON  # block 0: all movable (compactable)
        f[hp + 5] = SLAB  # block 1: one slab page from frame 0 on
        if i >= 2:
            f[2 * hp + 7] = SLAB  # block 2: one slab page from frame 2 on
            f[2 * hp + 8:2 * hp + 10] = ANON
        if i != 1:
            f[3 * hp:3 * hp + 2] = 0  # block 3: two no-flag pages, gone in frame 1
        frames.append(f)
    run = make_recording(tmp_path / "run", frames, header={
        "hpage_pages": hp, "ram_ranges": [[0, n]],
        "zones": [{"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": n}]})
    code, out, err = pvrec_main("blockers", str(run), "--json")
    assert code == 0, err
    doc = json.loads(out)
    got = [(b["pfn"], b["free"], b["unmovable"],
            [(x["pfn"], x["names"], x["since_frame"]) for x in b["blockers"]])
           for b in doc["blocks"]]
    assert got == [(hp, 511, 1, [(hp + 5, "slab", 0)]),
                   (2 * hp, 509, 1, [(2 * hp + 7, "slab", 2)]),
                   (3 * hp, 510, 2, [(3 * hp, "", 2), (3 * hp + 1, "", 2)])]
    assert err.splitlines()[0] == ("pvrec: 3 huge pages (6.0 MiB) are blocked by 4 pages "
                                   "(blocks with at most 8 unmovable; 3 blocked blocks in all) "
                                   "at frame 3, t=+3.0s")
    code, out, err = pvrec_main("blockers", f"{run}@1", "--max-unmovable", "1")
    assert code == 0 and out.splitlines()[1].split() == ["0x200000", "Normal", "511", "0", "1"]
    assert out.splitlines()[2].split() == ["0x205", "slab", "since", "frame", "0", "(t=+0.0s)"]
    assert err.startswith("pvrec: 1 huge page (2.0 MiB) is blocked by 1 page")
    assert pvrec_main("blockers", f"{run}@4")[2] == (
        "pvrec: frame 4 is out of range: run has 4 frames (0..3)\n")
    assert pvrec_main("blockers", f"{run}@x")[2].startswith("pvrec: malformed RUN@N")
    assert pvrec_main("blockers", str(run), "--max-unmovable", "0")[2] == (
        "pvrec: --max-unmovable must be at least 1 page, not 0\n")
    empty = make_recording(tmp_path / "empty", [])
    assert pvrec_main("blockers", str(empty)) == (2, "", "pvrec: empty has no frames\n")


def test_the_recorder_does_not_need_the_block_states():
    import subprocess
    import sys

    from tests.helpers import REPO

    code = ("import sys, pvrec.recorder.session, pvrec.recorder.sampler, pvrec.commands.record; "
            "print(sorted(m for m in sys.modules if m in ('pvrec.blocks', 'pvrec.metrics')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip() == "[]"
