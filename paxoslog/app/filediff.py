"""`deploy --dry-run --diff`: the unified diff of a file as it is on a host against HEAD's
rendering (what `ansible --check --diff` shows). The host's bytes are hostile: the read is
bounded, and control characters are escaped so a hand-edited file cannot drive the terminal."""

from __future__ import annotations

import difflib
import re

from paxoslog.remote.hostfs import HostFiles
from paxoslog.remote.ssherrors import TooLarge

MAX_DIFF_FILE = 1 << 20  # a rendered file is a few KiB; a larger one is not worth a diff
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _printable(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", text)


def _lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()
    return [_printable(p) + "\n" for p in parts]


def host_file(fs: HostFiles, path: str) -> bytes | None | str:
    """The file's bytes, None when absent, or a note when it cannot be shown."""
    try:
        return fs.read_file(path, MAX_DIFF_FILE)
    except FileNotFoundError:
        return None
    except TooLarge:
        return f"over {MAX_DIFF_FILE >> 20} MiB: diff not shown"


def unified(host: str, path: str, before: bytes | None | str, after: bytes | None) -> str:
    """`--- <host>:<path>` / `+++ HEAD:<path>` hunks; /dev/null for a side that is absent."""
    if isinstance(before, str):
        return f"--- {host}:{path}\n+++ HEAD:{path}\n# {before}\n"
    old = [] if before is None else _lines(before)
    new = [] if after is None else _lines(after)
    text = "".join(difflib.unified_diff(
        old, new, fromfile=f"{host}:{path}" if before is not None else "/dev/null",
        tofile=f"HEAD:{path}" if after is not None else "/dev/null"))
    if not text and before != after:  # only the final newline (or an undecodable byte) differs
        text = f"--- {host}:{path}\n+++ HEAD:{path}\n# differs in bytes the lines do not show\n"
    return text
