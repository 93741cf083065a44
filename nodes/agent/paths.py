"""Host paths under the service user's home (spec nodes.md §1.1) and name checks.

Every name that becomes part of a path is checked here first, so nothing from the command
line can point outside the home."""

from __future__ import annotations

import argparse
import os
import re

from .errors import Usage

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_MEMBER = 1000


def cell_name(text: str) -> str:
    if not _NAME.fullmatch(text):
        raise Usage(f"bad cell name {text[:80]!r}: letters, digits, '_' and '-', at most 64")
    return text


def member_no(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", text) or int(text) >= MAX_MEMBER:
        raise Usage(f"bad member number {text[:80]!r}")
    return int(text)


class Home:
    """The layout of one service account: etc (read-only), data, run (0700), log."""

    def __init__(self, root: str) -> None:
        self.root = root

    def etc(self, *parts: str) -> str:
        return os.path.join(self.root, "etc", *parts)

    def cell_conf(self, cell: str) -> str:
        return self.etc("cell", f"{cell}.conf")

    def join_conf(self, cell: str) -> str:
        return self.etc("cell", f"{cell}.join.conf")

    def cell_key(self, cell: str) -> str:
        return self.etc("cell", f"{cell}.key")

    def data(self, cell: str, no: int | None = None) -> str:
        base = os.path.join(self.root, "data", cell)
        return base if no is None else os.path.join(base, str(no))

    @property
    def run(self) -> str:
        return os.path.join(self.root, "run")

    @property
    def log(self) -> str:
        return os.path.join(self.root, "log")

    def pid_file(self, cell: str, no: int) -> str:
        return os.path.join(self.run, f"paxos-css-{cell}-{no}.pid")

    def control_sock(self, cell: str, no: int) -> str:
        return os.path.join(self.run, f"paxos-css-{cell}-{no}.sock")

    def target_lock(self, target: str) -> str:
        return os.path.join(self.run, f"paxos-node-{target}.lock")

    def ensure_run(self) -> None:
        """~/run holds pid files, locks and control sockets: owner only."""
        os.makedirs(self.run, mode=0o700, exist_ok=True)
        st = os.lstat(self.run)
        if not os.path.isdir(self.run) or os.path.islink(self.run):
            raise Usage(f"{self.run} is not a directory")
        if st.st_mode & 0o077:
            os.chmod(self.run, 0o700)

    def ensure_log(self) -> None:
        os.makedirs(self.log, mode=0o700, exist_ok=True)


def seconds(text: str) -> float:
    """A `--timeout` value: (0, 3600] seconds."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not 0 < v <= 3600:
        raise argparse.ArgumentTypeError("must be in (0, 3600] seconds")
    return v
