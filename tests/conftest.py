"""Shared test helpers: run pvrec as a subprocess, find the real fixtures, know if we are root."""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


def kpageflags_readable() -> bool:
    try:
        with open("/proc/kpageflags", "rb") as f:
            return len(f.read(8)) == 8
    except OSError:
        return False


needs_kpageflags = pytest.mark.skipif(
    not kpageflags_readable(), reason="/proc/kpageflags is not readable here (needs root)"
)


def run_pvrec(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """`python -m pvrec ARGS` from the repo, as a user would run it; output captured as text."""
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="100")
    env.update(kwargs.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "pvrec", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)


@pytest.fixture(scope="session")
def fixture_dumps(tmp_path_factory) -> dict[str, Path]:
    """The real kpageflags dumps of ../shared/fixtures, decompressed once per session."""
    files = sorted(FIXTURES.glob("*.kpf.xz"))
    if not files:
        pytest.skip(f"no real fixtures at {FIXTURES}")
    out = tmp_path_factory.mktemp("fixtures")
    dumps = {}
    for f in files:
        target = out / f.name[: -len(".xz")]
        with lzma.open(f) as src, open(target, "wb") as dst:
            while chunk := src.read(8 << 20):
                dst.write(chunk)
        dumps[f.name[: -len(".kpf.xz")]] = target
    return dumps


def synthetic_flags(pages: int, seed: int = 0, runs: int = 50) -> np.ndarray:
    """A flags array of realistic shape: runs of a few typical page-types values."""
    rng = np.random.default_rng(seed)
    values = np.array([0x400, 0x0, 0x68, 0x828, 0x5868, 0x100000000, 0x400000 | 0x68,
                       0x20000 | 0x8000, 0x40000 | 0x800, 0x80], dtype=np.uint64)
    cuts = np.sort(rng.choice(np.arange(1, pages), size=min(runs, pages - 1), replace=False))
    flags = np.empty(pages, dtype=np.uint64)
    for i, (s, e) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, pages], strict=True)):
        flags[s:e] = values[rng.integers(values.size)] if i % 7 else values[i % values.size]
    return flags


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 400 KiB tmpfs, to fill up (root only; unmounted after)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def dump(tmp_path):
    """A small raw kpageflags dump (64 Ki pages) that records in milliseconds: (path, flags)."""
    flags = synthetic_flags(1 << 16, seed=3, runs=400)
    path = tmp_path / "small.kpf"
    flags.astype("<u8").tofile(path)
    return path, flags
