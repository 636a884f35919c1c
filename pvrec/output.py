"""Writing an output file so that it is either complete or not there: temp name, then rename."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pvrec.errors import PvrecError


def temp_beside(path: Path) -> Path:
    """A hidden name beside path, keeping the suffix (tools pick the format by it)."""
    return path.with_name(f".{path.stem}.pvrec-{os.getpid()}.tmp{path.suffix}")


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """write(tmp) then rename tmp to path; on any failure or interrupt the temp file goes and
    an OSError becomes one PvrecError line (exit 1)."""
    tmp = temp_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PvrecError(f"cannot write {path}: {exc.strerror or exc}", exit_code=1) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output(path: Path, force: bool) -> None:
    """Refuse an output that is a directory, exists without force, or has no directory."""
    if path.is_dir():
        raise PvrecError(f"output {path} is a directory; name a file")
    if path.exists() and not force:
        raise PvrecError(f"output {path} exists (use --force to overwrite it)")
    if not path.parent.is_dir():
        raise PvrecError(f"output directory {path.parent} does not exist")
