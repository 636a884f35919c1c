"""The house rules of DESIGN.md, checked on the source: imports run one way, rooms stay small.

    commands -> (recorder | render | inspect) -> (recording, runs, sources, kernel, classes, flags,
    layout, metrics, units, output, messages) -> errors

Nothing imports commands/ (but cli.py, by name); recorder/, render/ and inspect/ never import
each other; the bottom never imports a half. The recorder's side runs on a bare server with
numpy alone, so nothing it imports pulls in Pillow, ffmpeg or rich.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "pvrec"
HALVES = ("recorder", "render", "inspect")
RENDER_ONLY = ("PIL", "imageio", "imageio_ffmpeg")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    """'pvrec.render.raster' -> its path, for every module of the package."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(path: Path) -> set[str]:
    """Every module an import statement names (at the top or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def layer(module: str) -> str:
    """commands, cli, a half (recorder/render/inspect), or bottom."""
    parts = module.split(".")
    if module == "pvrec.__main__":
        return "cli"
    if len(parts) > 1 and parts[1] in ("commands", "cli") + HALVES:
        return parts[1]
    return "bottom"


ALL = modules()


def arrows() -> list[tuple[str, str]]:
    """(importer, imported) for every import of one pvrec module by another."""
    out = []
    for name, path in ALL.items():
        for target in imports_of(path):
            if target in ALL and target != name:
                out.append((name, target))
    return out


def test_imports_run_one_way():
    wrong = []
    for src, dst in arrows():
        a, b = layer(src), layer(dst)
        if b == "commands" and a not in ("commands",):
            wrong.append(f"{src} imports {dst}: nothing imports commands/")
        elif a in HALVES and b in HALVES and a != b:
            wrong.append(f"{src} imports {dst}: the halves never import each other")
        elif a == "bottom" and b != "bottom":
            wrong.append(f"{src} imports {dst}: the bottom layer imports no half")
    assert not wrong, "\n".join(wrong)


def test_cli_names_every_command_module_and_imports_none():
    from pvrec import cli

    for name, (module, _help) in cli.COMMANDS.items():
        assert f"pvrec.commands.{module}" in ALL, name
    assert not [m for m in imports_of(ALL["pvrec.cli"]) if m.startswith("pvrec.commands")]


def reachable(start: str) -> set[str]:
    """pvrec modules start imports, directly or through others."""
    graph: dict[str, set[str]] = {}
    for src, dst in arrows():
        graph.setdefault(src, set()).add(dst)
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


@pytest.mark.parametrize("start", ["pvrec.commands.record", "pvrec.recorder.sampler"])
def test_the_recorder_needs_numpy_alone(start):
    heavy = {f"{m} imports {x}" for m in reachable(start) for x in imports_of(ALL[m])
             if x.split(".")[0] in RENDER_ONLY}
    assert not heavy


def test_rich_is_used_by_command_modules_only():
    users = [m for m, p in ALL.items() if any(x.split(".")[0] == "rich" for x in imports_of(p))]
    assert users and all(layer(m) == "commands" for m in users), users


def test_no_module_over_500_lines_and_no_function_over_80():
    big = [f"{p.relative_to(PKG.parent)}: {n} lines" for p in ALL.values()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    for path in ALL.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    big.append(f"{path.relative_to(PKG.parent)}:{node.lineno} {node.name}: {n} lines")
    assert not big, "\n".join(big)
