"""`~/etc/DEPLOYED` (admin.md §5.3), parsed strictly: the admin's `status deploy` and the
`paxos-node` agent on every host read the same hostile file with this one parser.

Pure: bytes in, a checked mapping or StampError out. The paths it accepts are exactly the ones a
deploy writes, so a stamp can never point a reader outside `~/etc`.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import yaml

from paxoslog.errors import RemoteError

STAMP = "etc/DEPLOYED"
MAX_STAMP = 1 << 20
MAX_STAMPED_FILES = 10_000
# The only paths deploy writes, `status deploy` reads and `--clean` removes (§5.3): a cell name
# follows rule (C), so nothing can resolve outside ~/etc whatever a log or a stamp says.
CONF_PATHS = re.compile(r"etc/(?:paxos_memcache\.conf|cell/[A-Za-z0-9_]+\.conf)")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_STAMP_KEYS = ("commit", "rev", "author", "time", "files")


def is_conf_path(path: object) -> bool:
    return isinstance(path, str) and CONF_PATHS.fullmatch(path) is not None


class StampError(RemoteError):
    """The host's DEPLOYED stamp does not follow §5.3."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"unreadable {STAMP}: {problem}")
        self.problem = problem


class _StrictLoader(yaml.SafeLoader):
    """safe_load without anchors, aliases or duplicate keys: a stamp is plain data."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise StampError("anchors and aliases are not allowed")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in keys:
                    raise StampError(f"duplicate key {key}")
                keys.add(key)
            except TypeError:
                raise StampError("a key is not a scalar") from None
        return super().construct_mapping(node, deep)


def _plain(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 1024 and value.isprintable()


def parse_stamp(raw: bytes) -> dict[str, Any]:
    """§5.3 `~/etc/DEPLOYED`, strictly: exactly the five keys with their types; every path one
    `deploy` could have written. Raises StampError naming the first problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StampError("not UTF-8") from None
    try:
        stamp = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a strict SafeLoader
    except yaml.YAMLError:
        raise StampError("not YAML") from None
    except RecursionError:
        raise StampError("nested too deep") from None
    if not isinstance(stamp, dict):
        raise StampError("not a mapping")
    for key in stamp:
        if key not in _STAMP_KEYS:
            raise StampError(f"unknown key {str(key)[:100]}")
    for key in _STAMP_KEYS:
        if key not in stamp:
            raise StampError(f"missing key {key}")
    if not isinstance(stamp["commit"], str) or not _HEX40.fullmatch(stamp["commit"]):
        raise StampError("commit is not a commit id")
    rev = stamp["rev"]
    if not isinstance(rev, int) or isinstance(rev, bool):
        raise StampError("rev is not an integer")
    if not 0 <= rev < 1 << 63:
        raise StampError("rev is out of range")
    for key in ("author", "time"):
        if not isinstance(stamp[key], str):
            raise StampError(f"{key} is not a string")
        if not _plain(stamp[key]):
            raise StampError(f"{key} holds control characters or is too long")
    try:
        datetime.datetime.fromisoformat(stamp["time"])
    except ValueError:
        raise StampError("time is not an ISO 8601 time") from None
    files = stamp["files"]
    if not isinstance(files, dict):
        raise StampError("files is not a mapping")
    if len(files) > MAX_STAMPED_FILES:
        raise StampError(f"files lists more than {MAX_STAMPED_FILES} paths")
    for path, digest in files.items():
        if not is_conf_path(path):
            shown = path if _plain(path) else repr(path)[:100]
            raise StampError(f"files: {shown} is not a configuration file path")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise StampError(f"files: {path} has no sha256 digest")
    return stamp
