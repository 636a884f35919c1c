"""Every command that writes holds to pvrec.output's rules (issue 10, point 1): with --force,
a device node, FIFO, socket or symlink at -o is refused in one line and left as it was; a
missing parent is named and not created; `-o -` is standard output for export and metrics.
Device nodes are made by the test in its own directory (root); nothing is written to /dev."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import make_recording, pvrec_env, pvrec_main, synthetic_flags
from tests.unit.test_output_paths import KINDS, WHAT, identity, make_special, needs_root


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return make_recording(tmp_path_factory.mktemp("rec") / "run", 3)


def writes(rec, out) -> dict[str, list]:
    """Each file-writing command, writing out."""
    return {
        "render": ["render", rec, "-o", f"{out}.gif", "--end", "0", "-q"],
        "snapshot": ["snapshot", f"{rec}@0", "-o", f"{out}.png"],
        "export": ["export", rec, "-o", f"{out}.kpf"],
        "metrics": ["metrics", rec, "-o", f"{out}.csv"],
    }


@needs_root
@pytest.mark.parametrize("command", ["render", "snapshot", "export", "metrics"])
def test_force_never_replaces_a_device_fifo_socket_or_link(rec, tmp_path, command):
    for kind in KINDS:
        args = writes(rec, tmp_path / kind.replace(" ", "-"))[command]
        out = tmp_path / args[args.index("-o") + 1]
        make_special(kind, out, tmp_path)
        before = identity(out)
        code, stdout, err = pvrec_main(*args, "--force")
        assert (code, stdout) == (2, ""), (kind, err)
        assert err.startswith(f"pvrec: output {out} {WHAT[kind]}") and err.count("\n") == 1, err
        assert identity(out) == before, kind
    assert (tmp_path / "target.txt").read_text() == "the user's"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp file left


@pytest.mark.parametrize("command", ["render", "snapshot", "export", "metrics"])
def test_a_missing_parent_is_named_and_not_created(rec, tmp_path, command):
    args = writes(rec, tmp_path / "a" / "b" / "out")[command]
    code, _, err = pvrec_main(*args)
    assert (code, err) == (2, f"pvrec: output directory {tmp_path / 'a' / 'b'} does not exist\n")
    assert os.listdir(tmp_path) == []


def record(dump, out, *extra) -> tuple[int, str, str]:
    return pvrec_main("record", "-q", "--kpageflags", dump, "--interval", "100ms",
                      "--duration", "0.1s", "-o", out, *extra)


@pytest.fixture
def dump(tmp_path):
    path = tmp_path / "dump.kpf"
    synthetic_flags(1 << 12, seed=3).astype("<u8").tofile(path)
    return path


def test_record_creates_only_the_last_component(dump, tmp_path):
    code, _, err = record(dump, tmp_path / "no" / "x" / "y")
    assert (code, err) == (2, f"pvrec: output directory {tmp_path / 'no' / 'x'} does not exist\n")
    assert sorted(os.listdir(tmp_path)) == ["dump.kpf"]
    assert record(dump, tmp_path / "y")[0] == 0  # the parent exists: made, as mkdir does


@needs_root
def test_record_force_replaces_only_a_recording(dump, tmp_path):
    assert record(dump, tmp_path / "real")[0] == 0
    (tmp_path / "file").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    make_special("char device", tmp_path / "node", tmp_path)
    make_special("fifo", tmp_path / "fifo", tmp_path)
    expect = {
        "file": "exists and is not a directory (regular file); --force replaces only a pvrec "
                "recording",
        "link": f"is a symbolic link (to {tmp_path / 'real'}); pvrec never writes through a "
                f"link: name the file itself, or remove the link",
        "node": "exists and is not a directory (character device); --force replaces only a "
                "pvrec recording",
        "fifo": "exists and is not a directory (FIFO); --force replaces only a pvrec recording",
    }
    for name, message in expect.items():
        before = identity(tmp_path / name)
        code, _, err = record(dump, tmp_path / name, "--force")
        assert (code, err) == (2, f"pvrec: output {tmp_path / name} {message}\n")
        assert identity(tmp_path / name) == before
    assert (tmp_path / "file").read_text() == "mine"
    assert record(dump, tmp_path / "real", "--force")[0] == 0


def test_export_to_standard_output(rec, tmp_path):
    code, _, err = pvrec_main("export", rec, "-n", "1", "-o", tmp_path / "one.kpf")
    assert code == 0, err
    r = subprocess.run([sys.executable, "-m", "pvrec", "export", str(rec), "-n", "1", "-o", "-"],
                       capture_output=True, env=pvrec_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout == (tmp_path / "one.kpf").read_bytes()
    assert np.frombuffer(r.stdout, "<u8").size == 4096
    assert r.stderr.decode() == (f"pvrec: wrote frame 1 of {rec} to standard output (4096 pages, "
                                 f"32.0 KiB)\n")


def test_export_to_a_pipe_whose_reader_leaves_claims_nothing(tmp_path):
    # GIVEN a frame of 8 MiB, far more than a pipe holds, exported to a reader that takes 10 bytes
    big = make_recording(tmp_path / "big", 1, pages=1 << 20)
    p = subprocess.Popen([sys.executable, "-m", "pvrec", "export", str(big), "-o", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=pvrec_env())
    assert len(p.stdout.read(10)) == 10
    p.stdout.close()  # the reader leaves, as `| head -c 10` does
    err = p.stderr.read().decode()
    # THEN pvrec stops quietly (as `pvrec list | head`) and never says it wrote the frame
    assert p.wait(timeout=60) == 0 and err == ""


def test_export_to_a_terminal_is_refused(rec):
    leader, follower = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "pvrec", "export", str(rec), "-o", "-"],
                           stdout=follower, stderr=subprocess.PIPE, text=True, env=pvrec_env())
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 2
    assert r.stderr == ("pvrec: -o - writes the binary dump to standard output, which is a "
                        "terminal: pipe it (| xz > last.kpf.xz) or name a file\n")


def test_metrics_to_standard_output_and_render_not(rec):
    code, out, _ = pvrec_main("metrics", rec, "-o", "-")
    assert code == 0 and out.startswith("frame,")
    for args in (["render", rec, "-o", "-"], ["snapshot", f"{rec}@0", "-o", "-"]):
        code, out, err = pvrec_main(*args)
        assert (code, out, err) == (2, "", "pvrec: this command writes a file; -o - (standard "
                                           "output) is for pvrec export and pvrec metrics\n")


@needs_root
def test_a_png_directory_keeps_its_rules(rec, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    make_special("fifo", frames / "frame-000000.png", tmp_path)
    before = identity(frames / "frame-000000.png")
    code, _, err = pvrec_main("render", rec, "-o", frames, "--force", "-q")
    assert (code, err) == (2, f"pvrec: output {frames / 'frame-000000.png'} is a FIFO; pvrec "
                              f"writes only files it creates, and --force replaces only a "
                              f"regular file\n")
    assert identity(frames / "frame-000000.png") == before
    (tmp_path / "link").symlink_to(frames)
    code, _, err = pvrec_main("render", rec, "-o", tmp_path / "link", "--force", "-q")
    assert code == 2 and err.startswith(f"pvrec: output {tmp_path / 'link'} is a symbolic link")
    (frames / "frame-000000.png").unlink()
    code, _, err = pvrec_main("render", rec, "-o", frames, "-q")
    assert code == 0, err
    assert sorted(os.listdir(frames)) == [f"frame-{i:06d}.png" for i in range(3)]


def test_export_takes_run_at_n_as_the_other_commands_do(rec, tmp_path):
    # GIVEN frame 1 exported with -n 1, WHEN exported as RUN@1: the same bytes, the same line
    code, _, err = pvrec_main("export", rec, "-n", "1", "-o", tmp_path / "n1.kpf")
    assert code == 0, err
    code, _, err = pvrec_main("export", f"{rec}@1", "-o", tmp_path / "at1.kpf")
    assert code == 0, err
    assert (tmp_path / "at1.kpf").read_bytes() == (tmp_path / "n1.kpf").read_bytes()
    assert err == f"pvrec: wrote frame 1 of {rec} to {tmp_path / 'at1.kpf'} (4096 pages, 32.0 KiB)\n"
    # two frames named, or a malformed N: one line each, nothing written
    assert pvrec_main("export", f"{rec}@1", "-n", "2", "-o", tmp_path / "x.kpf")[2] == (
        f"pvrec: {rec}@1 and --frame 2 name two frames: give one\n")
    assert pvrec_main("export", f"{rec}@x", "-o", tmp_path / "x.kpf")[2] == (
        f"pvrec: malformed RUN@N '{rec}@x': N must be a frame number, e.g. {rec}@-1\n")
    assert not (tmp_path / "x.kpf").exists()
