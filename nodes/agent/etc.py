"""Reading `~/etc` as deployed: the cell file, the cell secret and the DEPLOYED stamp.

Everything here is hostile until checked: reads are bounded, symlinks are not followed, and a
problem becomes BadEtc (exit 6) naming the file and, where there is one, the line."""

from __future__ import annotations

from nodes.css.config import parse_cell_config
from nodes.css.errors import ConfigError
from nodes.css.shell.auth import load_key
from paxoslog.core.stamp import MAX_STAMP, StampError, parse_stamp
from paxoslog.fsutil import FileTooLarge, NotRegularFile, read_regular

from .errors import BadEtc

MAX_CELL_FILE = 64 << 10


def read_bounded(path: str, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file (not a symlink), at most `limit`; OSError if absent."""
    try:
        return read_regular(path, limit)
    except FileTooLarge:
        raise BadEtc(f"{path}: larger than {limit} bytes") from None
    except NotRegularFile:
        raise BadEtc(f"{path}: not a regular {what}") from None


def cell_members(path: str) -> dict[int, dict]:
    """The parsed cell file `<no> <udp_addr> <udp_port> <tcp_addr> <tcp_port>` per line."""
    try:
        raw = read_bounded(path, MAX_CELL_FILE, "cell file")
    except FileNotFoundError:
        raise BadEtc(f"{path}: missing") from None
    except OSError as e:
        raise BadEtc(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise BadEtc(f"{path}:{line}: not UTF-8") from None
    for ln, line in enumerate(text.splitlines(), 1):
        if any(c != "\t" and not c.isprintable() for c in line):
            raise BadEtc(f"{path}:{ln}: control characters")
    try:
        return parse_cell_config(text, path)
    except ConfigError as e:
        raise BadEtc(str(e)) from None


def check_key(path: str) -> None:
    """The cell secret must be present and valid: the daemon refuses to start without it."""
    try:
        load_key(path)
    except ConfigError as e:
        raise BadEtc(str(e)) from None


def deployed_commit(path: str) -> str | None:
    """The commit of `~/etc/DEPLOYED`; None without a stamp; BadEtc naming it if it is bad."""
    try:
        raw = read_bounded(path, MAX_STAMP, "stamp")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BadEtc(f"{path}: cannot read: {e.strerror}") from None
    try:
        return parse_stamp(raw)["commit"]
    except StampError as e:  # the same strict parser as the admin's `status deploy`
        raise BadEtc(f"{path}: {e.problem}") from None
