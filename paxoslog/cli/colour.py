"""ANSI colour for a terminal only: never when piped, with NO_COLOR set (no-color.org) or on
a dumb terminal, so scripts and logs never see escape codes."""

from __future__ import annotations

import os
from typing import TextIO

_CODES = {"green": "32", "red": "31", "yellow": "33", "cyan": "36", "bold": "1"}

# status words of the reports (status deploy, and the runtime status commands) -> colour
STATUS_STYLES = {
    "current": "green", "ok": "green", "running": "green", "leader": "green",
    "follower": "green", "changed": "yellow",
    "outdated": "yellow", "modified": "yellow", "none": "yellow", "stopped": "yellow",
    "unknown": "red", "error": "red", "failed": "red", "unreachable": "red", "down": "red",
}


def enabled(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def paint(text: str, style: str | None) -> str:
    code = _CODES.get(style or "")
    return f"\x1b[{code}m{text}\x1b[0m" if code and text else text


def status(word: str) -> str:
    """A status word in its colour (the caller decides whether colour is on)."""
    return paint(word, STATUS_STYLES.get(word))


def diff(text: str) -> str:
    """A unified diff with git's colours: headers bold, hunks cyan, -/+ lines red/green."""
    out = []
    for line in text.splitlines(keepends=True):
        body, nl = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = None
        out.append(paint(body, style) + nl)
    return "".join(out)
