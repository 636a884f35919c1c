"""What one sample will cost, measured before recording: a budget that cannot afford one sample
a minute is refused before anything is written.

The probe reads and run-length encodes every PROBE_STRIDE-th chunk of the source (spread over
the whole PFN range, so holes and busy RAM are in the proportion a sample meets them) and
scales its CPU time up; the deflate and the write a frame adds are covered by WRITE_FACTOR.
`pvrec record --help` shows what it measures (cost_here), so the figure is this machine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pvrec.errors import PvrecError
from pvrec.kernel.cpu import usable_cpus
from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile, SampleError
from pvrec.kernel.layout import live_layout, with_known_ram
from pvrec.layout import max_pfn
from pvrec.runs import CHUNK_PAGES, encode_flags

PROBE_STRIDE = 8  # one chunk in 8: ~1/8 of a sample's cost
WRITE_FACTOR = 1.25  # a sample's CPU over its read + encode (measured on a 24 GiB VM: ~1.2)


def probe_sample_cpu(source: PageFlagsFile, pfn_count: int) -> float:
    """Estimated CPU seconds of one sample of pfn_count pages from source."""
    chunks = range(0, pfn_count, CHUNK_PAGES)
    picked = chunks[PROBE_STRIDE // 2::PROBE_STRIDE] or chunks[:1]
    buf = np.empty(min(CHUNK_PAGES, pfn_count), np.uint64)
    pages = 0
    began = time.process_time()
    for start in picked:
        try:
            got = source.read_into(buf[:min(CHUNK_PAGES, pfn_count - start)], start)
        except SampleError:
            continue
        encode_flags(buf[:got])
        pages += got
    spent = time.process_time() - began
    return spent * pfn_count / max(pages, 1) * WRITE_FACTOR


@dataclass
class CostHere:
    """A sample's CPU on this machine, measured now on /proc/kpageflags."""

    sample_cpu: float
    ram_bytes: int
    cpus: int

    @property
    def per_gib(self) -> float:
        return self.sample_cpu / max(self.ram_bytes / (1 << 30), 1e-9)


def cost_here() -> CostHere | None:
    """Probe this machine (None where /proc/kpageflags cannot be read: not root)."""
    try:
        with PageFlagsFile(KPAGEFLAGS) as f:
            layout = with_known_ram(live_layout(), 0)
            pages = f.probe_pages(max_pfn(layout))
            ram = sum(e - s for s, e in layout["ram_ranges"]) or pages
            return CostHere(probe_sample_cpu(f, pages), ram * layout["page_size"],
                            usable_cpus())
    except (PvrecError, OSError):
        return None
