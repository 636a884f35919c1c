"""pytest fixtures and marks shared by the tests; plain helpers live in tests/helpers.py.

The names other test files import from here (REPO, FIXTURES, run_pvrec, synthetic_flags,
needs_kpageflags) stay importable from tests.conftest; new code imports them from
tests.helpers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import (  # noqa: F401  (re-exported for `from tests.conftest import ...`)
    FIXTURES,
    REPO,
    fixture_dump,
    fixture_names,
    kpageflags_readable,
    run_pvrec,
    synthetic_flags,
)

needs_kpageflags = pytest.mark.skipif(
    not kpageflags_readable(), reason="/proc/kpageflags is not readable here (needs root)"
)


@pytest.fixture(scope="session")
def fixture_dumps() -> dict[str, Path]:
    """The real kpageflags dumps of ../shared/fixtures, decompressed once per session."""
    names = fixture_names()
    if not names:
        pytest.skip(f"no real fixtures at {FIXTURES}")
    return {name: fixture_dump(name) for name in names}


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
def dump(tmp_path) -> tuple[Path, np.ndarray]:
    """A small raw kpageflags dump (64 Ki pages) that records in milliseconds: (path, flags)."""
    flags = synthetic_flags(1 << 16, seed=3, runs=400)
    path = tmp_path / "small.kpf"
    flags.astype("<u8").tofile(path)
    return path, flags
