"""Long output (log, diff) through `$PAGER`, as git does: only when stdout is a terminal."""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import TextIO

DEFAULT_PAGER = "less -FRX"  # -F: quit at once when it fits; -R: keep colour; -X: no clear


def pager_command(stream: TextIO) -> list[str] | None:
    """The pager to run for `stream`, or None: not a terminal, or PAGER is empty or `cat`."""
    isatty = getattr(stream, "isatty", None)
    try:
        if not (isatty and isatty()):
            return None
    except (OSError, ValueError):
        return None
    text = os.environ.get("PAXOS_PAGER", os.environ.get("PAGER", DEFAULT_PAGER)).strip()
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    return None if not words or words == ["cat"] else words


def page(stream: TextIO, text: str) -> None:
    """Write `text` to `stream`, through the pager when there is one."""
    words = pager_command(stream) if text else None
    if words is None:
        stream.write(text)
        stream.flush()
        return
    stream.flush()
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # a bare `less` in PAGER still keeps colour and the screen
    try:
        proc = subprocess.Popen(words, stdin=subprocess.PIPE, env=env, stdout=stream)
    except (OSError, ValueError):  # no such pager, or a stream without a descriptor: the text still reaches the terminal
        stream.write(text)
        stream.flush()
        return
    try:
        assert proc.stdin is not None
        proc.stdin.write(text.encode(errors="replace"))
        proc.stdin.close()
    except BrokenPipeError:  # the operator quit the pager early
        pass
    finally:
        _wait(proc)


def _wait(proc: subprocess.Popen) -> None:
    # Ctrl-C belongs to the pager (less uses it to stop a search), as with git
    while True:
        try:
            proc.wait()
            return
        except KeyboardInterrupt:
            continue
