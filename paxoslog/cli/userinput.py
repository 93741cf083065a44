"""Checks on raw command-line input, run before anything parses it (issue 7).

What an operator types ends up in argparse, cmd2's parser, a DNS lookup and a git commit message.
None of them is safe with arbitrary text: cmd2 parses a long line in quadratic time, a NUL byte in a
commit message fails `git fsck --strict`, and a surrogate (an undecodable byte of argv) fails the
first write to stdout. So the words or the line are refused here, whole, with one clear line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from paxoslog.errors import BadInput

# 64 KiB of UTF-8 per command: far above any real command (a cell is six endpoints), far below
# what makes cmd2's parser slow (a 64 KiB line parses in about 0.2 s; 512 KiB took 14 s).
MAX_INPUT_BYTES = 64 * 1024

# C0 controls except TAB (a separator in the shell, whitespace that rule (H) refuses by name),
# DEL, C1 controls, and lone surrogates (os.fsdecode's stand-ins for bytes that are not UTF-8).
_BAD_CHAR = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _char_problem(text: str, where: str) -> str | None:
    m = _BAD_CHAR.search(text)
    if m is None:
        return None
    char = m.group()
    if "\ud800" <= char <= "\udfff":
        return f"{where} is not valid UTF-8"
    return f"{where} contains a control character (U+{ord(char):04X})"


def _too_long(size: int) -> str:
    return f"command too long: {size} bytes (the limit is {MAX_INPUT_BYTES})"


def check_words(words: Sequence[str]) -> None:
    """One-shot arguments (after `paxos`); raises `BadInput`."""
    separators = max(len(words) - 1, 0)
    # A character is at most 4 bytes of UTF-8: encode only when the limit could be exceeded.
    if 4 * sum(len(w) for w in words) + separators > MAX_INPUT_BYTES:
        size = sum(_size(w) for w in words) + separators
        if size > MAX_INPUT_BYTES:
            raise BadInput(_too_long(size))
    for i, word in enumerate(words, 1):
        problem = _char_problem(word, f"argument {i}")
        if problem:
            raise BadInput(problem)


def check_line(line: str) -> None:
    """One shell line (without its line end); raises `BadInput`."""
    if 4 * len(line) > MAX_INPUT_BYTES:
        size = _size(line)
        if size > MAX_INPUT_BYTES:
            raise BadInput(_too_long(size))
    problem = _char_problem(line, "the line")
    if problem:
        raise BadInput(problem)


def split_line(line: str) -> list[str]:
    """The words of a shell line, by POSIX shell quoting; raises `BadInput` when it cannot."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        reason = {"No closing quotation": "a quotation mark is not closed",
                  "No escaped character": "the line ends with a backslash"}.get(str(exc), str(exc))
        raise BadInput(f"cannot split the line: {reason}") from None
