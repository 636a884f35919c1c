"""`pvrec stats` and `pvrec list` against the kernel's own page-types, on the real fixtures.

tests/data/page-types/ holds what page-types (linux-source-6.1 tools/vm) printed for each
fixture and each command line of commands.tsv (README.md there says how it was made). Every
one is re-run here as `python -m pvrec stats -F DUMP ARGS`, as a user runs it, and must give
the same text.

6.1's flag table differs from the current upstream one that pvrec follows in two places, so
its output is translated before comparing (everything else must be byte for byte equal):
- bit 49 (slob_free, gone with SLOB) has a column in 6.1's symbolic string: that column is
  dropped, after checking that it is '_' (a set bit 49 would be a real difference);
- bit 34 is named mappedtodisk in 6.1 and owner_2 upstream (raw mode long names).
That is stricter than "symbolic strings equal up to trailing underscores": the raw-mode bits
above 49 (slub_frozen, slub_debug, file, swap, mmap_exclusive) must line up too.
"""

from __future__ import annotations

import lzma
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pvrec.inspect.pagetypes import SUMMARY_HEADER
from tests.conftest import REPO, needs_kpageflags, run_pvrec
from tests.helpers import fixture_names, run_here

GOLDEN = REPO / "tests" / "data" / "page-types"
SLOB_FREE_COLUMN = 39  # index of bit 49 in 6.1's 45-letter symbolic string
FIXTURE_NAMES = fixture_names()
COMMANDS = [
    line.split("\t", 1)
    for line in (GOLDEN / "commands.tsv").read_text().splitlines()
    if line.strip()
]
# `pvrec list` is page-types -Nl (and -NL with -L); these goldens are checked through it too.
LIST_FORMS = {
    "list-Nl": [],
    "list-Nl-thp": ["-b", "thp"],
    "list-NL-range": ["-L", "-a", "0x100000+4096"],
    "list-Nl-raw-range": ["-r", "-a", "0x100000+65536"],
}

_SUMMARY_ROW = re.compile(r"(0x[0-9a-f]{16}\t *\d+ +\d+  )([^\t]+)\t(.*)")
_DESCRIBE = re.compile(r"(0x[0-9a-f]{16}\t)([^\t]+)\t(.*)")
_LISTED = re.compile(r"([0-9a-f]+\t(?:[0-9a-f]+\t)?)([^\t]+)")


def _symbolic_upstream(sym: str) -> str:
    assert len(sym) == 45, f"not a 6.1 symbolic string: {sym!r}"
    assert sym[SLOB_FREE_COLUMN] == "_", f"slob_free set: 6.1 and upstream really differ: {sym}"
    return sym[:SLOB_FREE_COLUMN] + sym[SLOB_FREE_COLUMN + 1 :]


def _long_upstream(names: str) -> str:
    assert "slob_free" not in names.split(",")
    return ",".join("owner_2" if n == "mappedtodisk" else n for n in names.split(","))


def to_upstream(text: str) -> str:
    """page-types 6.1 output as the upstream table prints it (see the module docstring)."""
    out = []
    for line in text.split("\n"):
        if m := _SUMMARY_ROW.fullmatch(line):
            line = m[1] + _symbolic_upstream(m[2]) + "\t" + _long_upstream(m[3])
        elif m := _DESCRIBE.fullmatch(line):
            line = m[1] + _symbolic_upstream(m[2]) + "\t" + _long_upstream(m[3])
        elif (m := _LISTED.fullmatch(line)) and len(m[2]) == 45:
            line = m[1] + _symbolic_upstream(m[2])
        out.append(line)
    return "\n".join(out)


def golden(fixture: str, name: str) -> str:
    plain = GOLDEN / fixture / f"{name}.txt"
    if plain.exists():
        return plain.read_text()
    with lzma.open(plain.with_suffix(".txt.xz"), "rt") as f:
        return f.read()


def test_translation_changes_only_what_the_tables_disagree_on():
    sixone = ("0x0000800000005828\t     36997      144  ___U_l_____Ma_b______________________d"
              "_______\tuptodate,lru,mmap,anonymous,swapbacked,anon_exclusive")
    assert to_upstream(sixone) == sixone.replace("d_______", "d______")
    assert to_upstream("100000\t40\t" + "_" * 45) == "100000\t40\t" + "_" * 44
    assert "owner_2" in to_upstream("0x0000000400000028\t         9        0  "
                                    + "_" * 29 + "d" + "_" * 15 + "\tuptodate,lru,mappedtodisk")
    with pytest.raises(AssertionError):
        to_upstream("0\t1\t" + "_" * 39 + "P" + "_" * 5)


@pytest.fixture(scope="session")
def pvrec_outputs(fixture_dumps) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """Every golden command line run through pvrec (in this process: what is compared is the
    text, and a subprocess per line would cost its start-up 72 times)."""
    results = {}
    for fixture, dump in fixture_dumps.items():
        jobs = [("stats " + name, ["stats", "-F", dump, *args.split()]) for name, args in COMMANDS]
        jobs += [("list " + name, ["list", "-F", dump, *args]) for name, args in LIST_FORMS.items()]
        for key, argv in jobs:
            results[(fixture, key)] = run_here(*argv)
    return results


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_stats_prints_what_page_types_prints(pvrec_outputs, fixture, name):
    result = pvrec_outputs[(fixture, "stats " + name)]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    expected = to_upstream(golden(fixture, name))
    assert result.stdout == expected


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
@pytest.mark.parametrize("name", list(LIST_FORMS))
def test_list_is_line_for_line_page_types_Nl(pvrec_outputs, fixture, name):
    result = pvrec_outputs[(fixture, "list " + name)]
    assert result.returncode == 0, result.stderr
    got, expected = result.stdout.split("\n"), to_upstream(golden(fixture, name)).split("\n")
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"line {i + 1}"


def test_summary_rows_agree_with_the_list_and_with_numpy(fixture_dumps):
    """Independent of page-types: the summary's counts are numpy's counts of the view."""
    from pvrec.flags import well_known

    dump = next(iter(fixture_dumps.values()))
    flags = np.fromfile(dump, dtype="<u8")
    values, counts = np.unique(well_known(flags), return_counts=True)
    result = run_pvrec("stats", "-F", dump)
    rows = {int(line.split("\t")[0], 16): int(line.split("\t")[1].split()[0])
            for line in result.stdout.splitlines()[1:-1]}
    assert rows == dict(zip(map(int, values), map(int, counts), strict=True))


def test_describe_prints_what_page_types_prints():
    cases = [line.split("\t", 1) for line in (GOLDEN / "describe.tsv").read_text().splitlines()]
    # One process for all: each -d prints its line (page-types stops after the first).
    result = run_pvrec("stats", *[arg for spec, _ in cases for arg in ("-d", spec)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [to_upstream(expected) for _, expected in cases]


def test_recording_frame_gives_the_same_stats_as_the_dump(tmp_path, fixture_dumps):
    """`pvrec stats RUN@N` reads the frame through pvrec.recording: same text as -F."""
    from pvrec.recording.writer import Writer

    name = "hugetlb-anon700" if "hugetlb-anon700" in fixture_dumps else next(iter(fixture_dumps))
    dump = fixture_dumps[name]
    flags = np.fromfile(dump, dtype="<u8")
    changed = flags.copy()
    changed[: 1 << 16] = 0x400  # frame 1 differs from frame 0 (a delta frame on disk)
    run = tmp_path / "run"
    w = Writer(run, {"pfn_count": int(flags.size), "page_size": os.sysconf("SC_PAGE_SIZE")})
    w.add_frame(flags, 0.0)
    w.add_frame(changed, 1.0)
    w.close({"reason": "test"})
    changed_dump = tmp_path / "changed.kpf"
    changed.tofile(changed_dump)

    want = run_pvrec("stats", "-F", dump, "-r", "-b", "thp")
    assert run_pvrec("stats", f"{run}@0", "-r", "-b", "thp").stdout == want.stdout
    want = run_pvrec("stats", "-F", dump)
    assert run_pvrec("stats", f"{run}@-2").stdout == want.stdout
    last = run_pvrec("stats", run)
    assert last.stdout == run_pvrec("stats", "-F", changed_dump).stdout
    assert last.stdout != want.stdout
    listed = run_pvrec("list", f"{run}@1", "-b", "buddy")
    assert listed.stdout == run_pvrec("list", "-F", changed_dump, "-b", "buddy").stdout


def test_stats_of_a_dump_costs_at_most_3x_a_bare_numpy_read_of_it(fixture_dumps):
    """pvrec's overhead over the floor of any Python tool (start, import numpy, read the dump),
    both measured here and now: a ratio holds on a busy machine where a bound in seconds does
    not (idle, on the test VM: stats 0.7 s, the floor 0.5 s for 6.5 M pages). Best of two."""
    import time

    dump = next(iter(fixture_dumps.values()))
    floor_cmd = [sys.executable, "-c", "import numpy, sys; numpy.fromfile(sys.argv[1], '<u8')",
                 str(dump)]

    def best(run) -> float:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            assert run().returncode == 0
            times.append(time.perf_counter() - t0)
        return min(times)

    stats = best(lambda: run_pvrec("stats", "-F", dump))
    floor = best(lambda: subprocess.run(floor_cmd, capture_output=True))
    assert stats < 3 * floor, f"stats {stats:.2f} s, floor {floor:.2f} s"


@pytest.fixture
def small_dump(tmp_path) -> Path:
    path = tmp_path / "small.kpf"
    np.array([0x400] * 100 + [0x28] * 28, dtype="<u8").tofile(path)
    return path


def _one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvrec: "), result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_dump_size_not_a_multiple_of_8(tmp_path):
    bad = tmp_path / "bad.kpf"
    bad.write_bytes(b"\0" * 13)
    _one_line_error(run_pvrec("stats", "-F", bad), "multiple of 8")
    _one_line_error(run_pvrec("list", "-F", bad), "multiple of 8")


def test_unknown_flag_name_lists_the_valid_ones(small_dump):
    line = _one_line_error(run_pvrec("stats", "-F", small_dump, "-b", "anonymos"), "anonymos")
    for name in ("anonymous", "thp", "compound", "buddy", "mmap_exclusive"):
        assert name in line
    _one_line_error(run_pvrec("stats", "-d", "nosuchflag"), "valid names")


@pytest.mark.parametrize("spec", ["abc", ",", "5,3", "0x10+zz", "1+2,5", "-4", ""])
def test_malformed_addr_spec(small_dump, spec):
    _one_line_error(run_pvrec("stats", "-F", small_dump, "-a", spec), "addr-spec")


def test_missing_dump_and_missing_recording(tmp_path):
    _one_line_error(run_pvrec("stats", "-F", tmp_path / "nope.kpf"), "nope.kpf")
    _one_line_error(run_pvrec("stats", tmp_path / "norun"), "norun")
    _one_line_error(run_pvrec("list", f"{tmp_path / 'norun'}@3"), "norun")


def test_recording_frame_out_of_range_and_not_a_recording(tmp_path, small_dump):
    from pvrec.recording.writer import Writer

    run = tmp_path / "run"
    w = Writer(run, {"pfn_count": 128, "page_size": 4096})
    w.add_frame(np.fromfile(small_dump, dtype="<u8"), 0.0)
    w.close({})
    assert run_pvrec("stats", f"{run}@0").returncode == 0
    _one_line_error(run_pvrec("stats", f"{run}@5"), "out of range")
    _one_line_error(run_pvrec("stats", f"{run}@-2"), "out of range")
    _one_line_error(run_pvrec("stats", f"{run}@x"), "RUN@N")
    _one_line_error(run_pvrec("stats", small_dump), "-F")
    _one_line_error(run_pvrec("stats", tmp_path), "not a pvrec recording")


# -- the live source


def test_live_source_not_readable_says_sudo(monkeypatch):
    import errno

    from pvrec import sources as source
    from pvrec.errors import PvrecError

    real_open = os.open

    def denied(path, *args, **kwargs):
        if str(path) == "/proc/kpageflags":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(PvrecError) as err:
        source.read_live()
    assert "sudo pvrec stats" in err.value.message and err.value.exit_code == 2


def test_live_source_missing_says_config_proc_page_monitor():
    from pvrec import sources as source
    from pvrec.errors import PvrecError

    with pytest.raises(PvrecError, match="CONFIG_PROC_PAGE_MONITOR"):
        source.read_live("/proc/pvrec-test-no-such-kpageflags")


@needs_kpageflags
def test_live_source_prints_a_consistent_summary():
    result = run_pvrec("stats")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] + "\n" == SUMMARY_HEADER and lines[-1].startswith("             total\t")
    total = int(lines[-1].split("\t")[1].split()[0])
    assert total == sum(int(line.split("\t")[1].split()[0]) for line in lines[1:-1])
    listed = run_pvrec("list", "-L", "-a", "0x1000+1000")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1001
