"""Reading `~/etc` as deployed: the cell file, the cell secret and the DEPLOYED stamp.

Everything here is hostile until checked: reads are bounded, symlinks are not followed, and a
problem becomes BadEtc (exit 6) naming the file and, where there is one, the line."""

from __future__ import annotations

import datetime
import os
import re
import stat
from typing import Any

import yaml

from nodes.css.config import parse_cell_config
from nodes.css.errors import ConfigError
from nodes.css.shell.auth import load_key

from .errors import BadEtc

MAX_CELL_FILE = 64 << 10
MAX_STAMP = 1 << 20
_HEX40 = re.compile(r"[0-9a-f]{40}")
_STAMP_KEYS = ("commit", "rev", "author", "time", "files")


def read_bounded(path: str, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file (not a symlink), at most `limit`; OSError if absent."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadEtc(f"{path}: not a regular {what}")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise BadEtc(f"{path}: larger than {limit} bytes")
    return data


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


class _StrictLoader(yaml.SafeLoader):
    """safe_load without anchors, aliases or duplicate keys: a stamp is plain data."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ValueError("anchors and aliases are not allowed")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        keys: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in keys:
                    raise ValueError(f"duplicate key {str(key)[:100]}")
                keys.add(key)
            except TypeError:
                raise ValueError("a key is not a scalar") from None
        return super().construct_mapping(node, deep)


def parse_stamp(raw: bytes) -> str:
    """The commit of a DEPLOYED stamp (admin.md §5.3), checked as strictly as the admin's deploy
    checks it (nodes may not import paxoslog.app, hence this copy); ValueError on a problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    try:
        stamp = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a strict SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ValueError(f"line {mark.line + 1}: not YAML" if mark else "not YAML") from None
    except RecursionError:
        raise ValueError("nested too deep") from None
    if not isinstance(stamp, dict):
        raise ValueError("not a mapping")
    for key in stamp:
        if key not in _STAMP_KEYS:
            raise ValueError(f"unknown key {str(key)[:100]}")
    for key in _STAMP_KEYS:
        if key not in stamp:
            raise ValueError(f"missing key {key}")
    if not isinstance(stamp["commit"], str) or not _HEX40.fullmatch(stamp["commit"]):
        raise ValueError("commit is not a commit id")
    rev = stamp["rev"]
    if not isinstance(rev, int) or isinstance(rev, bool) or not 0 <= rev < 1 << 63:
        raise ValueError("rev is not an integer in range")
    for key in ("author", "time"):
        v = stamp[key]
        if not isinstance(v, str) or len(v) > 1024 or not v.isprintable():
            raise ValueError(f"{key} is not a plain string")
    try:
        datetime.datetime.fromisoformat(stamp["time"])
    except ValueError:
        raise ValueError("time is not an ISO 8601 time") from None
    if not isinstance(stamp["files"], dict):
        raise ValueError("files is not a mapping")
    return stamp["commit"]


def deployed_commit(path: str) -> str | None:
    """The commit of `~/etc/DEPLOYED`; None without a stamp; BadEtc naming it if it is bad."""
    try:
        raw = read_bounded(path, MAX_STAMP, "stamp")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BadEtc(f"{path}: cannot read: {e.strerror}") from None
    try:
        return parse_stamp(raw)
    except ValueError as e:
        raise BadEtc(f"{path}: {e}") from None
