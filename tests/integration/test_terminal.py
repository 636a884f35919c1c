"""The live status line in a real terminal (tmux): the workload's output stays whole beside it.

Each test runs its own tmux server (a socket of its own, killed after), a 100x30 window with
`sh`, and reads the screen and its history with `capture-pane`. The
workload prints make-like numbered lines; the test waits for what it needs on the screen.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_kpageflags
from tests.helpers import REPO, wait_until

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (.ci/run installs it)")
LINE = re.compile(r"  CC      mm/file(\d+)\.o")
ROWS = 30
PROMPT = "#" if os.geteuid() == 0 else "$"  # sh's own prompt (it ignores PS1 from tmux's env)


class Tmux:
    """One tmux server of the test's own, with one 100x30 window running sh."""

    def __init__(self, tmp: Path):
        self.sock = f"pvrec-test-{os.getpid()}-{tmp.name}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        self.env = {**env, "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "ENV": ""}
        self.run("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", str(ROWS), "sh")
        self.run("set-option", "-g", "history-limit", "5000")

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def type(self, command: str) -> None:
        self.run("send-keys", "-l", command)
        self.run("send-keys", "Enter")

    def screen(self) -> list[str]:
        """The visible rows, top to bottom."""
        return self.run("capture-pane", "-p").rstrip("\n").split("\n")

    def history(self) -> list[str]:
        """Every line of the history and the screen (wrapped rows joined, trailing blanks cut)."""
        return [r.rstrip() for r in self.run("capture-pane", "-p", "-J", "-S", "-").split("\n")]

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], env=self.env,
                       capture_output=True)


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    try:
        yield t
    finally:
        t.kill()


def make_like(tmp: Path, lines: int, pause_at: int) -> Path:
    """A workload printing `lines` numbered make-like lines; after line pause_at it waits for
    the file `go` (the test looks at the screen meanwhile)."""
    script = tmp / "build.sh"
    script.write_text(
        "#!/bin/sh\ni=1\n"
        f"while [ $i -le {lines} ]; do\n"
        '  echo "  CC      mm/file$i.o"\n'
        f'  if [ $i = {pause_at} ]; then while [ ! -e "{tmp}/go" ]; do sleep 0.02; done; fi\n'
        "  i=$((i+1))\ndone\n")
    script.chmod(0o755)
    return script


def pvrec_command(*args) -> str:
    return " ".join(shlex.quote(str(a)) for a in (sys.executable, "-m", "pvrec", *args))


@needs_tmux
@needs_kpageflags
def test_make_output_stays_whole_beside_the_status_line(tmux, tmp_path):
    build = make_like(tmp_path, 1000, 500)
    tmux.type(pvrec_command("record", "-o", tmp_path / "rec", "--", build)
              + "; echo pvrec-exit=$?; seq -f 'after %g' 40")

    # While it runs: the status line holds the bottom row, the build's lines are above it.
    def status_shown():
        rows = tmux.screen()
        return rows[-1].startswith("recording ") and "mm/file500.o" in "\n".join(rows) and rows

    rows = wait_until("the status line on the bottom row", status_shown)
    assert len(rows) == ROWS
    above = [r for r in rows[:-1] if r.strip()]
    assert above[-1] == "  CC      mm/file500.o" and all(LINE.fullmatch(r) for r in above[-10:])
    assert "mm/file" not in rows[-1]
    (tmp_path / "go").touch()

    wait_until("the shell's prompt after pvrec", lambda: tmux.screen()[-2:] == ["after 40", PROMPT])
    history = tmux.history()
    built = [r for r in history if "mm/file" in r]
    assert all(LINE.fullmatch(r) for r in built), [r for r in built if not LINE.fullmatch(r)][:3]
    assert [int(LINE.fullmatch(r)[1]) for r in built] == list(range(1, 1001))
    assert not any(r.startswith("recording ") for r in history)  # cleared, not scrolled away
    assert "pvrec-exit=0" in history
    # The scroll region was reset: the lines after pvrec filled the screen to its last row.
    rows = tmux.screen()
    assert len(rows) == ROWS and rows[-3:] == ["after 39", "after 40", PROMPT]


@needs_tmux
@needs_kpageflags
def test_stderr_redirected_in_a_terminal_gets_no_control_sequences(tmux, tmp_path):
    build = make_like(tmp_path, 20, 20)
    (tmp_path / "go").touch()
    err = tmp_path / "stderr"
    tmux.type(pvrec_command("record", "-o", tmp_path / "rec", "--", build)
              + f" 2>{err}; echo pvrec-exit=$?")
    wait_until("pvrec to end", lambda: "pvrec-exit=0" in tmux.history())
    data = err.read_bytes()
    assert data.startswith(b"pvrec: ") and b"\x1b" not in data, data
    assert sum(1 for r in tmux.history() if LINE.fullmatch(r)) == 20
