"""User classes from a TOML file of page-types bits-specs (`--classes FILE.toml`).

Every error names the file and the line, so a typo in a colour or a flag name is found at once;
the loader is imported only when a file is named.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pvrec import flags as F
from pvrec.classes import (
    HOLE,
    OTHER_COLOR,
    RGB,
    PageClass,
    RuleScheme,
    compile_spec,
    default_scheme,
    parse_color,
)
from pvrec.errors import PvrecError


def _line_of(lines: list[str], table_no: int, key: str | None) -> int | None:
    """1-based line of the key in the table_no-th [[class]] table (best effort)."""
    headers = [i for i, ln in enumerate(lines) if re.match(r"\s*\[\[\s*class\s*\]\]", ln)]
    if table_no >= len(headers):
        return None
    start = headers[table_no]
    if key is None:
        return start + 1
    end = headers[table_no + 1] if table_no + 1 < len(headers) else len(lines)
    for i in range(start, end):
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            return i + 1
    return start + 1


def load_toml_scheme(path: str | Path) -> RuleScheme:
    """User classes from a TOML file; errors name the file and line.

        [[class]]
        name = "THP"              # shown in the legend
        bits = "thp"              # page-types bits-spec, or a list of them (any matches)
        color = "#D55E00"         # light theme; optional: dark = "#..."

    Classes are tried in file order; a page no class matches is "other" ([other] color = ...).
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise PvrecError(f"class file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PvrecError(f"cannot read class file {p}: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PvrecError(f"{p}: not valid TOML: {exc}") from None
    lines = text.splitlines()
    entries = doc.get("class")
    if not isinstance(entries, list) or not entries:
        raise PvrecError(f"{p}: no [[class]] tables; each needs name, bits and color")
    unknown = set(doc) - {"class", "other"}
    if unknown:
        raise PvrecError(f"{p}: unknown key {sorted(unknown)[0]!r} (expected [[class]] or [other])")
    hole = default_scheme().classes[HOLE]
    classes, rules = [hole], [[compile_spec("nopage")]]
    names = {"hole"}
    for i, entry in enumerate(entries):
        where = f"{p}, line {_line_of(lines, i, None)}"
        if not isinstance(entry, dict):
            raise PvrecError(f"{where}: a class must be a table with name, bits and color")
        extra = set(entry) - {"name", "bits", "color", "dark", "description"}
        if extra:
            key = sorted(extra)[0]
            raise PvrecError(f"{p}, line {_line_of(lines, i, key)}: unknown key {key!r} "
                             f"(a class has name, bits, color, dark, description)")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise PvrecError(f"{where}: class needs a name = \"...\"")
        if name in names:
            raise PvrecError(f"{p}, line {_line_of(lines, i, 'name')}: class {name!r} "
                             f"is defined twice")
        names.add(name)
        bits = entry.get("bits")
        specs = [bits] if isinstance(bits, str) else bits
        if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
            raise PvrecError(f"{p}, line {_line_of(lines, i, 'bits')}: class {name!r} needs "
                             f"bits = \"SPEC\" or a list of specs, e.g. \"anonymous,~thp\"")
        try:
            filters = [F.parse_bits_spec(s) for s in specs]
        except PvrecError as exc:
            raise PvrecError(f"{p}, line {_line_of(lines, i, 'bits')}: {exc.message}") from None
        line = _line_of(lines, i, "color")
        if "color" not in entry:
            raise PvrecError(f"{where}: class {name!r} needs color = \"#rrggbb\"")
        light = _parse_at(entry["color"], f"{p}, line {line}")
        dark = _parse_at(entry["dark"], f"{p}, line {_line_of(lines, i, 'dark')}") \
            if "dark" in entry else light
        classes.append(PageClass(name, light, dark, " | ".join(specs),
                                 str(entry.get("description", ""))))
        rules.append(filters)
    other = doc.get("other", {})
    if not isinstance(other, dict):
        raise PvrecError(f"{p}: [other] must be a table (name, color, dark)")
    o_light, o_dark = OTHER_COLOR
    if "color" in other:
        o_light = o_dark = _parse_at(other["color"], f"{p}, [other]")
    if "dark" in other:
        o_dark = _parse_at(other["dark"], f"{p}, [other]")
    classes.append(PageClass(str(other.get("name", "other")), o_light, o_dark, "no class matched",
                             "pages no class above matches"))
    rules.append([])
    return RuleScheme(p.stem, classes, rules, fallback=len(classes) - 1)


def _parse_at(value: object, where: str) -> RGB:
    try:
        return parse_color(value)
    except PvrecError as exc:
        raise PvrecError(f"{where}: {exc.message}") from None
