"""`-o table`: any report's rows as aligned columns, kubectl style.

The API every report uses (show, list, log, status deploy; the runtime `status` commands can
too):

    render_table(rows, columns=None, styles=None) -> str

`rows` are the report's documents (the dicts that --json prints), one row each; `columns`
picks and orders keys (default: every key, in order of first appearance); a header row names
them upper-cased, spaces as `_`. Cells: None or a missing key `-`, True/False `yes`/`no`, a list
of scalars joined by `,`, anything nested as compact JSON. `styles` maps a column to a function
that colours a cell's text (applied after padding, so escape codes never break alignment).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_MAX_CELL = 200  # a hostile value (a host's reason text) must not push the table off screen


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if value is True or value is False:
        return "yes" if value else "no"
    if isinstance(value, list | tuple) and all(
            not isinstance(v, dict | list | tuple) for v in value):
        text = ",".join(cell(v) for v in value) or "-"
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    # one line per row: control characters from a host or a log are shown escaped
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 styles: Mapping[str, Callable[[str], str]] | None = None) -> str:
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    if not columns:
        return ""
    header = [str(c).upper().replace(" ", "_") for c in columns]
    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(columns))]
    styles = styles or {}
    lines = []
    for n, r in enumerate([header, *body]):
        parts = []
        for i, text in enumerate(r):
            padded = text if i == len(r) - 1 else text.ljust(widths[i])
            style = styles.get(columns[i]) if n else None
            if style is not None:
                padded = style(text) + padded[len(text):]
            parts.append(padded)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"
