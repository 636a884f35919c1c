"""Where pvrec may write: the one set of rules for every output path, and the atomic write.

An output is a regular file (render, snapshot, export, metrics) or a directory (a recording, a
demo, a directory of PNG frames) that pvrec creates. --force replaces only what pvrec could have
made there: a regular file, or a directory that holds a recording (or an earlier demo). It never
replaces or writes into a device node, a FIFO or a socket, and never goes through a symbolic
link at the output's own name:

- A link is refused with or without --force. Following it would write (as root, often) wherever
  the link points: the classic symlink attack in /tmp, or /dev/null behind a harmless name.
  Replacing the link would drop something of the user's that pvrec did not create, and break
  the link they meant to keep. Naming the file the link points to does what the user wants: the
  new file is renamed over that file, and the link keeps pointing to it.
- Links among the directories of the path (/home -> /data/home) are followed, as by any tool:
  only the last component, the thing written, is held to these rules.
- Only the last component is created, as mkdir without -p: a missing parent is a typo more
  often than a wish, and `record -o /nonexistent/x/y` must not make /nonexistent.
- Nothing is written into /dev (the kernel's device directory): `-o /dev/full.mp4` is a slip.
  /dev/shm, a file system of its own, is an ordinary directory.

`-o -` (STDOUT) is standard output where a command can stream (export, metrics); the command
decides, and check_output refuses it elsewhere.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from pvrec.errors import PvrecError

STDOUT = "-"  # -o -: standard output

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory",
          stat.S_IFREG: "a regular file", stat.S_IFLNK: "a symbolic link"}


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # check_parent names which
        return None
    except OSError as exc:
        raise PvrecError(f"cannot use output {path}: {exc.strerror}", errno=exc.errno) from None


def _kind(st: os.stat_result) -> str:
    return _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")


def _refuse_link(path: Path, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise PvrecError(f"output {path} is a symbolic link (to {os.readlink(path)}); pvrec "
                         f"never writes through a link: name the file itself, or remove the "
                         f"link")


def _in_dev(directory: Path) -> bool:
    """True for /dev and its subdirectories on /dev's own file system (not /dev/shm)."""
    try:
        real, dev = directory.resolve(), os.stat("/dev")
        return (real == Path("/dev") or Path("/dev") in real.parents) \
            and os.stat(real).st_dev == dev.st_dev
    except OSError:
        return False


def check_parent(path: Path) -> None:
    """The directory an output goes in exists (pvrec creates only the last component), is a
    directory, and is not /dev."""
    parent = path.parent
    if not parent.exists():
        raise PvrecError(f"output directory {parent} does not exist")
    if not parent.is_dir():
        raise PvrecError(f"output directory {parent} is not a directory")
    if _in_dev(parent):
        raise PvrecError(f"output {path} is in /dev, the kernel's device directory; pvrec writes "
                         f"files only in ordinary directories")


def refuse_stdout(path: Path) -> None:
    """-o - where the output is a file pvrec must finish and rename (videos, pictures)."""
    if str(path) == STDOUT:
        raise PvrecError("this command writes a file; -o - (standard output) is for pvrec "
                         "export and pvrec metrics")


def check_output(path: Path, force: bool) -> None:
    """An output file may be written: new, or with force a regular file (replaced by rename)."""
    refuse_stdout(path)
    st = _lstat(path)
    if st is not None:
        _refuse_link(path, st)
        if stat.S_ISDIR(st.st_mode):
            raise PvrecError(f"output {path} is a directory; name a file")
        if not stat.S_ISREG(st.st_mode):
            raise PvrecError(f"output {path} is {_kind(st)}; pvrec writes only files it "
                             f"creates, and --force replaces only a regular file")
        if not force:
            raise PvrecError(f"output {path} already exists (use --force to replace it)")
    check_parent(path)


def check_output_dir(path: Path, force: bool, is_ours: Callable[[Path], bool],
                     what: str = "a pvrec recording") -> bool:
    """An output directory may be used: new, empty, or (with force) one that is_ours says holds
    `what`. True when it holds one the caller is to replace."""
    st = _lstat(path)
    if st is None:
        check_parent(path)
        return False
    _refuse_link(path, st)
    if not stat.S_ISDIR(st.st_mode):
        raise PvrecError(f"output {path} exists and is not a directory ({_kind(st)[2:]}); "
                         f"--force replaces only {what}")
    check_parent(path)
    if not any(path.iterdir()):
        return False
    if not is_ours(path):
        raise PvrecError(f"output directory {path} is not empty and does not hold {what}; "
                         f"choose another -o")
    if not force:
        raise PvrecError(f"output directory {path} holds {what} (use --force to replace it)")
    return True


def make_output_dir(path: Path) -> None:
    """mkdir without -p (an empty directory that is there already is used as it is)."""
    try:
        path.mkdir(exist_ok=True)
    except FileNotFoundError:
        raise PvrecError(f"output directory {path.parent} does not exist") from None
    except OSError as exc:
        raise PvrecError(f"cannot create output directory {path}: {exc.strerror}",
                         errno=exc.errno) from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):  # it appeared meanwhile as something else
        raise PvrecError(f"output {path} exists and is not a directory ({_kind(st)[2:]})")


def temp_beside(path: Path) -> Path:
    """A hidden name beside path, keeping the suffix (tools pick the format by it)."""
    return path.with_name(f".{path.stem}.pvrec-{os.getpid()}.tmp{path.suffix}")


def claim_temp(tmp: Path) -> None:
    """Create tmp as a new empty file of ours (never open a link or a FIFO planted there)."""
    st = _lstat(tmp)
    if st is not None and stat.S_ISREG(st.st_mode):
        tmp.unlink()  # left by an earlier pvrec of this pid that was killed
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))


def put_in_place(tmp: Path, path: Path) -> None:
    """Rename tmp over path, unless path has become something --force may not replace."""
    st = _lstat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        tmp.unlink(missing_ok=True)
        raise PvrecError(f"output {path} became {_kind(st)} while it was written; left it "
                         f"alone", exit_code=1)
    os.replace(tmp, path)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """write(tmp) then rename tmp to path; on any failure or interrupt the temp file goes and
    an OSError becomes one PvrecError line (exit 1)."""
    tmp = temp_beside(path)
    try:
        claim_temp(tmp)
        write(tmp)
        put_in_place(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PvrecError(f"cannot write {path}: {exc.strerror or exc}", exit_code=1) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
