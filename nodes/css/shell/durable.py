"""Durable file helpers for the CSS storage: the project's one implementation of
temp file + fsync + rename + directory fsync lives in paxoslog.fsutil."""

from __future__ import annotations

import os

from paxoslog.fsutil import atomic_write, fsync_dir

__all__ = ["fsync_dir", "unlink_durable", "write_atomic"]


def write_atomic(path: str, data: bytes, fsync: bool = True) -> None:
    atomic_write(path, data, durable=fsync)


def unlink_durable(path: str, fsync: bool = True) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    if fsync:
        fsync_dir(os.path.dirname(path) or ".")
