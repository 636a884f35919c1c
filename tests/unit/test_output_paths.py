"""pvrec.output's rules on real file system objects: device nodes (made with mknod in the test's
own directory, as root), FIFOs, sockets and symbolic links are never replaced or written
through, --force replaces only a regular file, only the last component is created, and nothing
goes into /dev. The commands' side of the same rules: tests/integration/test_output_commands.py."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from pvrec.errors import PvrecError
from pvrec.output import (
    check_output,
    check_output_dir,
    make_output_dir,
    temp_beside,
    write_atomically,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def make_special(kind: str, path: Path, tmp: Path) -> None:
    """A file system object of this kind at path (targets of links go in tmp)."""
    if kind == "char device":
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
    elif kind == "block device":
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 250))  # a loop device nobody has
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()  # the socket file stays
    elif kind == "link to a file":
        (tmp / "target.txt").write_text("the user's")
        path.symlink_to(tmp / "target.txt")
    elif kind == "dangling link":
        path.symlink_to(tmp / "nowhere")
    else:
        raise ValueError(kind)


def identity(path: Path) -> tuple:
    """What must not change about a thing pvrec refused: type, inode, device numbers, link."""
    st = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return st.st_mode, st.st_ino, st.st_rdev, link


KINDS = ["char device", "block device", "fifo", "socket", "link to a file", "dangling link"]
WHAT = {"char device": "is a character device", "block device": "is a block device",
        "fifo": "is a FIFO", "socket": "is a socket", "link to a file": "is a symbolic link",
        "dangling link": "is a symbolic link"}


@needs_root
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("force", [False, True])
def test_a_file_output_is_never_a_device_fifo_socket_or_link(tmp_path, kind, force):
    out = tmp_path / "out.kpf"
    make_special(kind, out, tmp_path)
    before = identity(out)
    with pytest.raises(PvrecError) as err:
        check_output(out, force)
    assert err.value.message.startswith(f"output {out} {WHAT[kind]}")
    assert identity(out) == before
    if kind == "link to a file":
        assert err.value.message == (f"output {out} is a symbolic link (to {tmp_path}/target.txt)"
                                     f"; pvrec never writes through a link: name the file "
                                     f"itself, or remove the link")
        assert (tmp_path / "target.txt").read_text() == "the user's"
    if kind == "char device":
        assert err.value.message == (f"output {out} is a character device; pvrec writes only "
                                     f"files it creates, and --force replaces only a regular "
                                     f"file")


def test_force_replaces_a_regular_file_and_nothing_else(tmp_path):
    out = tmp_path / "out.csv"
    check_output(out, False)  # new: fine
    out.write_text("old")
    with pytest.raises(PvrecError) as err:
        check_output(out, False)
    assert err.value.message == f"output {out} already exists (use --force to replace it)"
    check_output(out, True)
    write_atomically(out, lambda tmp: tmp.write_text("new"))
    assert out.read_text() == "new" and stat.S_ISREG(os.lstat(out).st_mode)
    with pytest.raises(PvrecError) as err:
        check_output(tmp_path, True)
    assert err.value.message == f"output {tmp_path} is a directory; name a file"


def test_only_the_last_component_is_created(tmp_path):
    with pytest.raises(PvrecError) as err:
        check_output(tmp_path / "a" / "b" / "out.png", False)
    assert err.value.message == f"output directory {tmp_path / 'a' / 'b'} does not exist"
    (tmp_path / "file").write_text("x")
    with pytest.raises(PvrecError) as err:
        check_output(tmp_path / "file" / "out.png", False)
    assert err.value.message == f"output directory {tmp_path / 'file'} is not a directory"
    with pytest.raises(PvrecError) as err:
        check_output_dir(tmp_path / "a" / "b" / "c", True, lambda _: True)
    assert err.value.message == f"output directory {tmp_path / 'a' / 'b'} does not exist"
    with pytest.raises(PvrecError) as err:
        make_output_dir(tmp_path / "a" / "b")
    assert err.value.message == f"output directory {tmp_path / 'a'} does not exist"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_nothing_is_written_into_dev():
    """Checked only: the test writes nothing to /dev, with the old code or the new."""
    out = Path("/dev/pvrec-test-never-made.mp4")
    assert not os.path.lexists(out)
    with pytest.raises(PvrecError) as err:
        check_output(out, True)
    assert err.value.message == (f"output {out} is in /dev, the kernel's device directory; "
                                 f"pvrec writes files only in ordinary directories")
    assert not os.path.lexists(out)
    from pvrec.render.encoders import PngDirEncoder

    with pytest.raises(PvrecError) as err:  # a PNG per frame into /dev itself
        PngDirEncoder.check_target(Path("/dev"), True)
    assert err.value.message.startswith("output /dev/frame-000000.png is in /dev")


def test_dev_shm_is_an_ordinary_directory():
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat("/dev").st_dev:
        pytest.skip("/dev/shm is not a file system of its own here")
    check_output(shm / "pvrec-test-never-made.png", False)


@needs_root
@pytest.mark.parametrize("kind", ["char device", "fifo", "socket", "link to a file"])
def test_a_directory_output_is_never_a_device_fifo_socket_or_link(tmp_path, kind):
    out = tmp_path / "rec"
    make_special(kind, out, tmp_path)
    before = identity(out)
    with pytest.raises(PvrecError) as err:
        check_output_dir(out, True, lambda _: True)
    assert identity(out) == before
    if kind == "link to a file":
        assert err.value.message.startswith(f"output {out} is a symbolic link")
    else:
        noun = {"char device": "character device", "fifo": "FIFO", "socket": "socket"}[kind]
        assert err.value.message == (f"output {out} exists and is not a directory ({noun}); "
                                     f"--force replaces only a pvrec recording")


def test_a_link_to_a_directory_is_not_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "header.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PvrecError) as err:
        check_output_dir(tmp_path / "link", True, lambda _: True)
    assert err.value.message.startswith(f"output {tmp_path / 'link'} is a symbolic link (to ")


def test_a_directory_output_that_is_not_ours_is_kept(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    for force in (False, True):
        with pytest.raises(PvrecError) as err:
            check_output_dir(tmp_path / "mine", force, lambda _: False)
        assert err.value.message == (f"output directory {tmp_path / 'mine'} is not empty and "
                                     f"does not hold a pvrec recording; choose another -o")
    with pytest.raises(PvrecError) as err:
        check_output_dir(tmp_path / "mine", False, lambda _: True)
    assert err.value.message == (f"output directory {tmp_path / 'mine'} holds a pvrec "
                                 f"recording (use --force to replace it)")
    assert check_output_dir(tmp_path / "mine", True, lambda _: True) is True
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", False, lambda _: False) is False


@needs_root
def test_a_link_planted_at_the_temp_name_is_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out.kpf"
    temp_beside(out).symlink_to(victim)
    with pytest.raises(PvrecError):
        write_atomically(out, lambda tmp: tmp.write_text("pvrec's"))
    assert victim.read_text() == "precious"
    assert not os.path.lexists(out)


@needs_root
def test_an_output_that_becomes_a_fifo_while_written_is_left_alone(tmp_path):
    out = tmp_path / "out.kpf"

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"\0" * 8)
        os.mkfifo(out)  # someone else's, made while pvrec wrote

    with pytest.raises(PvrecError) as err:
        write_atomically(out, write)
    assert err.value.message == (f"output {out} became a FIFO while it was written; left it "
                                 f"alone")
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert os.listdir(tmp_path) == ["out.kpf"]  # the temp file went


@needs_root
@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_ffmpeg_never_writes_through_a_link_planted_at_its_temp_name(tmp_path, suffix):
    # GIVEN a link, where the encoder's temp file will be, to a file of the user's
    import numpy as np

    from pvrec.render.encoders.ffmpeg import GifEncoder, Mp4Encoder

    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / f"out{suffix}"
    temp_beside(out).symlink_to(victim)
    encoder = Mp4Encoder if suffix == ".mp4" else GifEncoder
    # WHEN an encoder starts: one line, the link and its target as they were
    with pytest.raises(PvrecError) as err:
        encoder(out, (16, 16), np.zeros((256, 3), np.uint8))
    assert err.value.message.startswith(f"cannot write beside {out}: ")
    assert victim.read_text() == "precious" and temp_beside(out).is_symlink()
    assert not os.path.lexists(out)
