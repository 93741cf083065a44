"""The daemons' pid files (nodes.md §4.1): held with an exclusive `flock` while they run.

Readers (the `paxos-node` agent) probe a pid file with a short shared lock, so a daemon that
finds the lock taken retries for a moment before concluding that another daemon runs: without
the retry a status probe at the wrong microsecond made a starting daemon fail.
"""

from __future__ import annotations

import fcntl
import os
import time

PATIENCE = 2.0  # far longer than any probe holds its shared lock


def lock_pidfile(path: str, patience: float = PATIENCE) -> int | None:
    """Open (never through a symlink) and exclusively flock `path`: the open descriptor, or None
    if another process keeps the lock for `patience` seconds."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.01)
    return fd


def write_pid(fd: int) -> None:
    """Once the daemon's sockets are bound: the pid file names it."""
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
