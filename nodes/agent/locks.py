"""Target locks and pid files, both by `flock` (spec nodes.md §4.1); never `ps` parsing.

A daemon holds an exclusive flock on its pid file while it runs, so a pid file whose lock we
can take is stale. Mutating agent commands hold `~/run/paxos-node-<target>.lock`; a second
agent on the same target gets Locked (exit 7) at once instead of waiting."""

from __future__ import annotations

import fcntl
import os
import stat

from .errors import Failed, Locked

MAX_PID_FILE = 64


class TargetLock:
    def __init__(self, path: str, target: str) -> None:
        self.path = path
        self.target = target
        self.fd: int | None = None

    def __enter__(self) -> TargetLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise Failed(f"{self.path}: cannot open the lock file: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Locked(f"another paxos-node holds the lock of {self.target} "
                         f"({self.path}); try again when it is done") from None
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock; the file stays (no unlink race)
            self.fd = None


class PidFile:
    """A daemon's pid file, open. `pid` is set when a live daemon holds its lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.pid: int | None = None

    @classmethod
    def probe(cls, path: str, remove_stale: bool) -> PidFile:
        """Open and test the pid file; a stale one is removed when `remove_stale` (only callers
        holding the target lock may, so no daemon of that target is starting meanwhile)."""
        pf = cls(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return pf
        except OSError as e:
            raise Failed(f"{path}: cannot open the pid file: {e.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Failed(f"{path}: the pid file is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pf.pid = _read_pid(fd, path)
                pf.fd, fd = fd, -1
                return pf
            if remove_stale:
                os.unlink(path)
            return pf
        finally:
            if fd >= 0:
                os.close(fd)

    def alive(self) -> bool:
        """Whether the daemon still holds the lock (it drops it only by exiting)."""
        if self.fd is None:
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _read_pid(fd: int, path: str) -> int:
    data = os.pread(fd, MAX_PID_FILE + 1, 0)
    text = data.decode("ascii", "replace").strip()
    # the daemon writes its pid right after taking the lock: an empty file is a daemon that is
    # just starting, not an error worth failing on
    if len(data) > MAX_PID_FILE or (text and not text.isdigit()):
        raise Failed(f"{path}: the pid file does not hold a pid")
    pid = int(text) if text else 0
    if pid > 1 << 22:
        raise Failed(f"{path}: pid {pid} out of range")
    return pid
