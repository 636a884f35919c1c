"""The recorder keeps the kernel's multi-size THP counters per frame, and the folios that
--classes folio counts in a frame agree with them: a recording of this machine while this test
holds anonymous memory faulted in as 64 KiB folios.

hugepages-64kB/enabled is set to madvise (restored after), not always: with always every
process on the machine (other test suites, the recorder's own buffers) takes 64 KiB folios
during the 0.6 s a frame takes to read, and the counter, read at one moment, is hundreds off.
With madvise only MADV_HUGEPAGE memory gets them: this test's, madvised in 1 MiB pieces
(every other MiB of a mapping) so that no piece can hold a 2 MiB PMD THP instead, and that of
the few programs that madvise (x264 in other renders on this machine). Those still allocate
and free during the read: measured here, the frame and the counter differed by 15-54 folios
of ~700, and by 98 once in CI (another process's numpy arrays, which madvise, came and went
during the read). So the exact check is on this test's own pages: at the PFNs its mapping
holds (its /proc/self/pagemap, read while the recording's frames are fresh; proactive
compaction, which could move them meanwhile, is off for the test and restored), the frame
has exactly its 512 folios. The whole frame and nr_anon must agree within 64 + 1/4 of the
counter, and both hold this test's 512."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import numpy as np
import pytest

from pvrec import flags as F
from pvrec.classes import ValueClassifier, make_scheme
from pvrec.recording.reader import open_recording
from tests.conftest import needs_kpageflags
from tests.helpers import run_pvrec

THP = Path("/sys/kernel/mm/transparent_hugepage")
SIZE = THP / "hugepages-64kB"
MAPPED = 32 << 20  # 512 folios of 64 KiB, in 32 pieces of 1 MiB
PIECE = 1 << 20


def setting(path: Path) -> str:
    """The chosen word of a sysfs choice file: 'always inherit madvise [never]' -> 'never'."""
    return path.read_text().split("[", 1)[1].split("]", 1)[0]


PROACTIVE = Path("/proc/sys/vm/compaction_proactiveness")


@pytest.fixture
def mthp_64k_madvise():
    """hugepages-64kB/enabled = madvise (the top-level THP switch off 'never'), proactive
    compaction off (it may move this test's folios between a frame and the pagemap read),
    all restored after, also when the test fails."""
    files = [SIZE / "enabled", SIZE / "stats" / "nr_anon", THP / "enabled"]
    if not all(f.exists() for f in files):
        pytest.skip("this kernel has no 64 KiB multi-size THP counters")
    saved = {p: setting(p) for p in (SIZE / "enabled", THP / "enabled")}
    proactive = PROACTIVE.read_text() if PROACTIVE.exists() else None
    try:
        try:
            if saved[THP / "enabled"] == "never":
                (THP / "enabled").write_text("madvise")  # 'never' turns every size off
            (SIZE / "enabled").write_text("madvise")
            if proactive is not None:
                PROACTIVE.write_text("0")
        except OSError as exc:
            pytest.skip(f"cannot set multi-size THP here: {exc}")
        yield
    finally:
        for p, value in saved.items():
            p.write_text(value)
        if proactive is not None:
            PROACTIVE.write_text(proactive)


def pfns_of(m: mmap.mmap) -> np.ndarray:
    """The PFNs of the pages of this process's mapping m that are in memory (its
    /proc/self/pagemap: bit 63 present, bits 0-54 the PFN)."""
    view = ctypes.c_char.from_buffer(m)
    addr = ctypes.addressof(view)
    del view  # (m cannot close while a buffer of it is exported)
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(addr // 4096 * 8)
        entries = np.frombuffer(f.read(8 * (len(m) // 4096)), dtype="<u8")
    present = entries[(entries >> np.uint64(63)) == 1]
    return (present & np.uint64((1 << 55) - 1)).astype(np.int64)


def anon_64k_heads(runs, scheme, classify) -> np.ndarray:
    """Per PFN of a frame: the head of an anonymous 64 KiB folio (the folio scheme says so)."""
    cls = classify(runs.values, runs.lengths)
    anon_head = np.uint64(F.bit(F.ANON) | F.bit(F.COMPOUND_HEAD))
    mine = (cls == scheme.index("64 KiB (order 4)")) & ((runs.values & anon_head) == anon_head)
    return np.repeat(mine, runs.lengths)


@needs_kpageflags
def test_folios_of_64k_agree_with_the_kernels_nr_anon(tmp_path, mthp_64k_madvise):
    # GIVEN 32 MiB of private anonymous memory in 64 KiB mTHP (madvised pieces), touched
    before = int((SIZE / "stats" / "nr_anon").read_text())
    m = mmap.mmap(-1, 2 * MAPPED, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        for start in range(0, 2 * MAPPED, 2 * PIECE):
            m.madvise(mmap.MADV_HUGEPAGE, start, PIECE)
            for off in range(start, start + PIECE, 4096):
                m[off] = 1
        # (at least: another process may take 64 KiB folios meanwhile)
        assert int((SIZE / "stats" / "nr_anon").read_text()) - before >= MAPPED // (64 << 10)
        # WHEN pvrec records the machine (a frame before and one after a workload); its own
        # numpy buffers take no 64 KiB folios (numpy madvises large arrays)
        result = run_pvrec("record", "-q", "-o", tmp_path / "rec", "--", "true",
                           env={**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0"})
        assert result.returncode == 0, result.stderr
        mine = pfns_of(m)
        assert mine.size == MAPPED // 4096  # the pages touched: every other MiB
    finally:
        m.close()
    # THEN every frame keeps the counters; at this test's PFNs its 64 KiB anonymous folios
    # are exactly this test's 512, and over the whole frame they are nr_anon's
    rec = open_recording(tmp_path / "rec")
    scheme = make_scheme("folio")
    classify = ValueClassifier(scheme)
    assert len(rec) >= 2
    ours = MAPPED // (64 << 10)
    for info, runs in rec.iter_runs():
        counters = info.context["mthp"]["64kB"]
        assert set(counters) >= {"nr_anon", "anon_fault_alloc", "split"}
        heads = anon_64k_heads(runs, scheme, classify)
        assert int(heads[mine].sum()) == ours, f"frame {info.index}"
        folios, nr_anon = int(heads.sum()), counters["nr_anon"]
        assert folios >= ours and nr_anon >= ours, f"frame {info.index}"
        assert abs(folios - nr_anon) <= 64 + nr_anon // 4, f"frame {info.index}"
