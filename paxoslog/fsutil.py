"""Durable file primitives: temp file + fsync + rename + fsync of the directory."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

_libc = None


def fsync_enabled() -> bool:
    # PAXOS_FSYNC=0 trades power-loss durability for speed (bulk imports, benchmarks); the
    # ordering that makes kill -9 safe is the same either way.
    return os.environ.get("PAXOS_FSYNC", "1") not in ("0", "off", "no", "false")


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: str) -> None:
    """One barrier for many files: cheaper than an fsync per file on slow disks."""
    global _libc
    if _libc is None:
        import ctypes  # only writers sync; readers never pay for the import

        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, *, durable: bool | None = None, mode: int = 0o644) -> None:
    """Replace `path` with `data` so a reader sees the old or the new file, never a mix."""
    durable = fsync_enabled() if durable is None else durable
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(directory)


@contextmanager
def locked(path: str) -> Iterator[None]:
    """An advisory lock the kernel releases when the holder dies, so kill -9 never wedges it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
