"""The file methods of `paxoslog.remote.ssh.Connection` on a local folder, so a host that is this
machine (rule L, §6.1) is deployed and inspected by the same code, through the file system.

The same confinement as over SFTP, enforced by the kernel here: every component is opened with
O_NOFOLLOW relative to its parent's descriptor, so no symlink under the root is ever followed,
and reads take regular files only (opened O_NONBLOCK, so a FIFO cannot block), with a cap.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from paxoslog import fsutil
from paxoslog.remote.sftpfiles import (
    MAX_LIST,
    BoundedReads,
    check_attr,
    good_name,
    path_parts,
    shown,
    too_big,
)
from paxoslog.remote.ssherrors import UnsafePath


class HostFiles(Protocol):
    """The port: what deploy, status and fetch need of a host's files, relative to its home.
    Implemented by `LocalFS` here and by `ssh.Connection` (`sftpfiles.RemoteFiles`) over SFTP;
    tests/remote/hostfiles_suite.py runs one conformance class against both."""

    host: str

    def read_file(self, path: str, limit: int = ...) -> bytes: ...
    def exists(self, path: str) -> bool: ...
    def mkdir_p(self, path: str, mode: int = 0o755) -> None: ...
    def write_atomic(self, path: str, data: bytes, mode: int = 0o644) -> None: ...
    def listdir(self, path: str) -> list[str]: ...
    def sha256(self, path: str, limit: int = ...) -> str | None: ...
    def remove(self, path: str, *, missing_ok: bool = True) -> None: ...


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalFS(BoundedReads):
    def __init__(self, root: str, host: str) -> None:
        self.root = root
        self.host = host

    @contextmanager
    def _dir(self, parts: Sequence[str], *, create: bool = False, mode: int = 0o755
             ) -> Iterator[int]:
        """A descriptor of directory root/parts, reached without following any symlink."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for i, name in enumerate(parts):
                try:
                    sub = os.open(name, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(name, mode, dir_fd=fd)
                    except FileExistsError:
                        pass
                    sub = self._open_dir(name, fd, parts[: i + 1])
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    self._refuse(fd, name, parts[: i + 1], "dir")
                os.close(fd)
                fd = sub
            yield fd
        finally:
            os.close(fd)

    def _open_dir(self, name: str, fd: int, parts: Sequence[str]) -> int:
        try:
            return os.open(name, _DIR, dir_fd=fd)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            self._refuse(fd, name, parts, "dir")
            raise  # unreachable: _refuse raises

    def _refuse(self, fd: int, name: str, parts: Sequence[str], want: str) -> None:
        check_attr(self.host, parts, os.lstat(name, dir_fd=fd).st_mode, want)
        raise UnsafePath(self.host, f"{shown(parts)} is not usable")

    def _read(self, path: str, limit: int, sink: Callable[[bytes], object]) -> None:
        parts = path_parts(self.host, path)
        with self._dir(parts[:-1]) as d:
            try:
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                             | os.O_CLOEXEC, dir_fd=d)
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                self._refuse(d, parts[-1], parts, "file")
        try:  # before fdopen, which refuses a directory with its own error
            check_attr(self.host, parts, os.fstat(fd).st_mode, "file")
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size > limit:
                raise too_big(self.host, parts, limit)
            got = 0
            while chunk := f.read(min(1 << 20, limit + 1 - got)):
                got += len(chunk)
                if got > limit:
                    raise too_big(self.host, parts, limit)
                sink(chunk)

    def exists(self, path: str) -> bool:
        parts = path_parts(self.host, path)
        try:
            with self._dir(parts[:-1]) as d:
                mode = os.lstat(parts[-1], dir_fd=d).st_mode
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(mode):
            check_attr(self.host, parts, mode, "any")
        return True

    def mkdir_p(self, path: str, mode: int = 0o755) -> None:
        with self._dir(path_parts(self.host, path), create=True, mode=mode):
            pass

    def write_atomic(self, path: str, data: bytes, mode: int = 0o644) -> None:
        parts = path_parts(self.host, path)
        name = parts[-1]
        tmp = f".{name}.tmp-{uuid.uuid4().hex[:12]}"
        with self._dir(parts[:-1]) as d:
            try:
                check_attr(self.host, parts, os.lstat(name, dir_fd=d).st_mode, "file")
            except FileNotFoundError:
                pass
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=d)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fchmod(f.fileno(), mode)
                    if fsutil.fsync_enabled():
                        os.fsync(f.fileno())
                os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=d)
                except OSError:
                    pass
                raise
            if fsutil.fsync_enabled():
                os.fsync(d)

    def listdir(self, path: str) -> list[str]:
        parts = path_parts(self.host, path)
        with self._dir(parts) as d:
            names = os.listdir(d)
        if len(names) > MAX_LIST:
            raise UnsafePath(self.host, f"{shown(parts)} holds more than {MAX_LIST} entries")
        bad = [n for n in names if not good_name(n)]
        if bad:
            raise UnsafePath(self.host, f"{shown(parts)} holds an entry with an illegal name: "
                             f"{bad[0]!r}")
        return sorted(names)

    def remove(self, path: str, *, missing_ok: bool = True) -> None:
        parts = path_parts(self.host, path)
        try:
            with self._dir(parts[:-1]) as d:
                check_attr(self.host, parts, os.lstat(parts[-1], dir_fd=d).st_mode, "file")
                os.unlink(parts[-1], dir_fd=d)
        except FileNotFoundError:
            if not missing_ok:
                raise
