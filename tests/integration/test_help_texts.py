"""The help texts and messages of issue 10, point 8, line for line: each says what the command
really does (snapshot's own --title and --scale, list's own examples, -b a,b as page-types
means it), and each bad value gets one line that says what is wrong with it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pvrec.cli import build_parser
from tests.helpers import (
    REPO,
    kpageflags_readable,
    make_recording,
    pvrec_main,
    synthetic_flags,
)

WIDE = {"COLUMNS": "400"}  # one help line per option: the lines can be compared whole


def help_of(command: str) -> str:
    code, out, err = pvrec_main(command, "--help", env=WIDE)
    assert code == 0 and err == ""
    return out


def section(text: str, title: str) -> list[str]:
    """The lines of the help's section that starts with `title:` (to the next blank line)."""
    lines = text.splitlines()
    start = lines.index(f"{title}:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_snapshot_help_offers_what_snapshot_does():
    text = help_of("snapshot")
    lines = text.splitlines()
    assert "  --scale S             enlarge by S, nearest neighbour (default 1)" in lines
    assert ("  --title TEXT          header title instead of the recorded command (for live "
            "memory or a dump: its name)" in lines)
    assert ".mp4" not in text and "two runs" not in text


def test_list_help_has_its_own_examples():
    examples = section(help_of("list"), "examples")
    assert len(examples) == 5
    assert all(line.lstrip().startswith(("pvrec list", "sudo pvrec list")) for line in examples)
    stats_examples = section(help_of("stats"), "examples")
    assert all("pvrec stats" in line for line in stats_examples)


@pytest.mark.parametrize("command", ["stats", "list"])
def test_bits_spec_help_says_a_comma_means_any(command):
    text = help_of(command)
    lines = text.splitlines()
    assert ("                        only pages whose flags match: a,b is ANY of a, b set; "
            "repeat -b for all (see bits-spec below)") in lines
    assert ("  anonymous,thp           ANY of them set (anonymous or thp); for both: "
            "-b anonymous -b thp") in lines
    assert "bits-spec (-b; page-types' rule: a page must pass every -b given):" in lines


def test_the_bits_spec_help_is_true(tmp_path):
    """-b anonymous,thp counts the union; -b anonymous -b thp the intersection."""
    anon, thp = 1 << 12, 1 << 22
    flags = np.array([anon] * 3 + [thp] * 5 + [anon | thp] * 7 + [0] * 11, dtype="<u8")
    flags.tofile(tmp_path / "d.kpf")

    def total(*bits: str) -> int:
        code, out, err = pvrec_main("stats", "-F", tmp_path / "d.kpf", "--json", *bits)
        assert code == 0, err
        return json.loads(out)["total"]["pages"]

    assert total("-b", "anonymous,thp") == 3 + 5 + 7
    assert total("-b", "anonymous", "-b", "thp") == 7
    assert total("-b", "anonymous,~thp") == 3


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    path = tmp_path_factory.mktemp("dump") / "d.kpf"
    synthetic_flags(1 << 12, seed=1).astype("<u8").tofile(path)
    return path


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return make_recording(tmp_path_factory.mktemp("rec") / "run", 2)


def test_a_negative_duration_is_one_clear_line(dump, tmp_path):
    base = ["record", "-q", "-F", dump, "-o", tmp_path / "r"]
    for args in (["--interval", "-1s"], ["-i", "-1s"], ["--interv", "-1s"],
                 ["--interval=-1s"]):
        assert pvrec_main(*base, *args) == (
            2, "", "pvrec: --interval must be a positive duration such as 1s or 500ms, not -1s\n")
    assert pvrec_main(*base, "--duration", "-5m") == (
        2, "", "pvrec: --duration must be a positive duration such as 1s or 500ms, not -5m\n")
    assert pvrec_main(*base, "--kill-after", "-2s") == (
        2, "", "pvrec: --kill-after must be a duration of 0 or more, such as 0s or 5s, not -2s\n")
    assert pvrec_main(*base, "-i") == (
        2, "", "pvrec: argument -i/--interval: expected one argument (see pvrec record --help)\n")
    assert not (tmp_path / "r").exists()


def test_the_workloads_arguments_are_left_as_they_are():
    p = build_parser("record")
    args = p.parse_args(["record", "-i", "2s", "--", "prog", "--interval", "-1s"])
    assert args.interval == "2s" and args.cmd == ["--", "prog", "--interval", "-1s"]
    args = p.parse_args(["record", "prog", "--interval", "-1s"])
    assert args.interval is None and args.cmd == ["prog", "--interval", "-1s"]


def test_fps_and_fit_say_what_is_wrong(rec, tmp_path):
    out = tmp_path / "x.gif"
    cases = {
        ("--fps", "0"): "--fps must be above 0 and at most 240 frames per second, not 0",
        ("--fps", "-5"): "--fps must be above 0 and at most 240 frames per second, not -5",
        ("--fps", "300"): "--fps must be above 0 and at most 240 frames per second, not 300",
        ("--fit", "10x10"): "--fit 10x10 is too small: each side must be at least 16 pixels",
        ("--fit", "1920x10"): "--fit 1920x10 is too small: each side must be at least 16 pixels",
        ("--fit", "10by10"): "--fit must be WIDTHxHEIGHT in pixels such as 1920x1080, not "
                             "'10by10'",
    }
    for args, message in cases.items():
        assert pvrec_main("render", rec, "-o", out, *args) == (2, "", f"pvrec: {message}\n")
    assert pvrec_main("render", rec, "-o", out, "--fps", "0.5", "-q")[0] == 0  # 0.5 is valid


def test_record_help_says_what_a_sample_costs_here_and_the_default_budget():
    text = help_of("record")
    lines = text.splitlines()
    line = lines[lines.index("  -i TIME, --interval TIME") + 1].strip()
    assert line.startswith("time between samples: 250ms, 1s, 1.5s, 2m; a bare number is "
                           "seconds (default 1s, delayed by the --max-overhead budget).")
    budget = next(line for line in lines if line.startswith("  --max-overhead PCT"))
    assert budget.endswith("(default 5% unless --interval is given: a build or benchmark "
                           "beside pvrec runs at most ~5% slower)")
    # The last paragraph is this machine's figure, measured when the help is shown (or how
    # to get it where /proc/kpageflags cannot be read)
    last = " ".join(text.rstrip().split("\n\n")[-1].split())
    if kpageflags_readable():
        assert re.fullmatch(r"here, measured now: a sample costs ~\S+ s of CPU on this "
                            r"machine's [\d.]+ GiB of RAM \(\d+ ms/GiB at the present load; "
                            r"beside a busy workload up to twice that\), so at the default 5% "
                            r"of \d+ CPUs? pvrec takes a frame every ~\S+ s", last), last
    else:
        assert last.startswith("here: pvrec measures what a sample costs when it can read")


def test_readme_runs_the_demo_as_root_without_needing_sudo():
    readme = (REPO / "README.md").read_text()
    assert 'pvrec demo                                        # as root (sudo "$(command -v ' \
           'pvrec)" demo' in readme
    assert "&& sudo" not in readme


@pytest.mark.parametrize("command", sorted(__import__("pvrec.cli").cli.COMMANDS))
def test_every_description_is_wrapped_for_a_terminal(command):
    # a description written as one long line is filled (newcomer trial: 300-character lines)
    code, out, err = pvrec_main(command, "--help", env={"COLUMNS": "100"})
    assert code == 0, err
    description = out.split("\n\n")[1]  # after the usage
    assert max(len(line) for line in description.splitlines()) <= 100, description


def test_metrics_help_defines_every_metric():
    # the figures are defined where a pip-installed user can read them (no docs/ there)
    lines = section(help_of("metrics"), "the figures, per zone")
    named = [line.split()[0] for line in lines if line.startswith("    ") and line[4] != " "]
    from pvrec.metrics import KERNEL_METRICS, METRICS

    assert named == [*METRICS, "buddy_order_N", "unmovable_blocks", "movable_blocks",
                     "extfrag_events", "compaction_runs", "compaction_scanned",
                     "kernel_unusable_index"]
    text = "\n".join(lines)
    assert all(name in text for name in KERNEL_METRICS)  # the kernel's own figures too


def test_an_unknown_option_points_to_the_commands_own_help(dump):
    assert pvrec_main("stats", "-F", dump, "--bogus") == (
        2, "", "pvrec: unrecognized arguments: --bogus (see pvrec stats --help)\n")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], []])
def test_help_imports_no_numpy_rich_or_pillow(argv):
    """Start-up (issue 13, part 6): `pvrec --help` is argparse only (25 ms); numpy, rich and
    Pillow would cost 50-150 ms more. A command's own help imports its module (not tested)."""
    import subprocess
    import sys
    probe = ("import runpy, sys\nsys.argv = ['pvrec', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('pvrec', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'rich', 'PIL', "
             "'imageio'}), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "[]"
