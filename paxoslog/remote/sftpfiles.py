"""Remote file operations of a `paxoslog.remote.ssh.Connection`, over SFTP, each under the command
timeout. A mixin, so the file helpers stay readable apart from connecting and commands."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from paramiko.sftp import CMD_EXTENDED

from paxoslog.remote.paramikoload import paramiko
from paxoslog.remote.ssherrors import ConnectFailed, SSHTimeout, TooLarge, UnsafePath

if TYPE_CHECKING:
    from paxoslog.remote.sshconfig import RunResult, SSHOptions


MAX_READ = 16 << 20  # a stamp, a rendered file or a ref: far smaller in any real topology
MAX_LIST = 100_000  # entries of one remote directory
# Reads longer than the command timeout are allowed at this rate at least (a log's pack file).
MIN_RATE = 1 << 20


@contextmanager
def watchdog(chan: paramiko.Channel, seconds: float) -> Iterator[threading.Event]:
    """Close `chan` if the block runs longer than `seconds` (paramiko waits for some replies
    without any timeout); the event yielded tells whether that happened."""
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        chan.close()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def remote_path(path: str) -> str:
    """SFTP paths are relative to the login directory; accept the spec's `~/x` spelling too."""
    if path == "~":
        return "."
    return path[2:] if path.startswith("~/") else path


def path_parts(host: str, path: str) -> list[str]:
    """The components of a path below the login directory. Refused: absolute paths, empty,
    `.` and `..` components, NUL and other control characters: nothing may resolve outside
    the home, whatever a log or a host supplies."""
    rel = remote_path(path)
    parts = rel.split("/")
    if rel.startswith("/") or not all(good_name(p) for p in parts):
        raise UnsafePath(host, f"refusing path {rel!r}")
    return parts


def good_name(name: str) -> bool:
    return (name not in ("", ".", "..") and "/" not in name and len(name.encode("utf-8",
            "surrogateescape")) <= 255 and not any(ord(c) < 32 or ord(c) == 127 for c in name))


def shown(parts: Sequence[str]) -> str:
    return "~/" + "/".join(parts)


def check_attr(host: str, parts: Sequence[str], mode: int | None, want: str) -> None:
    """`want`: dir or file. Symlinks are never followed; other kinds are not what we read."""
    mode = mode or 0
    if stat.S_ISLNK(mode):
        raise UnsafePath(host, f"refusing to follow symlink {shown(parts)}")
    if want == "dir" and not stat.S_ISDIR(mode):
        raise UnsafePath(host, f"{shown(parts)} is not a directory")
    if want == "file" and not stat.S_ISREG(mode):
        raise UnsafePath(host, f"{shown(parts)} is not a regular file")


def too_big(host: str, parts: Sequence[str], limit: int) -> TooLarge:
    return TooLarge(host, f"{shown(parts)} is larger than {limit} bytes")


class BoundedReads:
    """`read_file` and `sha256` over one bounded, confined `_read(path, limit, sink)`: the SFTP
    and the local implementation differ only in how they open and stream a file."""

    def _read(self, path: str, limit: int, sink: Callable[[bytes], object]) -> None:
        raise NotImplementedError

    def read_file(self, path: str, limit: int = MAX_READ) -> bytes:
        out = bytearray()
        self._read(path, limit, out.extend)
        return bytes(out)

    def sha256(self, path: str, limit: int = MAX_READ) -> str | None:
        """Hex digest of a file, or None when it does not exist."""
        digest = hashlib.sha256()
        try:
            self._read(path, limit, digest.update)
        except FileNotFoundError:
            return None
        return digest.hexdigest()


class RemoteFiles(BoundedReads):
    """Needs `host`, `options`, `_transport` and `run` from the class it is mixed into.

    Every path is below the login directory and no component is ever followed when it is a
    symlink (SFTP has no O_NOFOLLOW: each component is lstat-ed first, directories once per
    connection); reads take regular files only, with a size cap and a deadline.
    """

    host: str
    options: SSHOptions
    _transport: paramiko.Transport
    _lock: threading.Lock  # guards the lazy SFTP session
    _sftp: paramiko.SFTPClient | None = None
    _fsync_supported = True
    _safe_dirs: set[str] | None = None  # directories already lstat-ed on this connection

    def run(self, args: Sequence[str], *, stdin: bytes = b"",
            timeout: float | None = None) -> RunResult:
        raise NotImplementedError

    @property
    def sftp(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._sftp is None:
                self._sftp = self._open_sftp()
            return self._sftp

    def _open_sftp(self) -> paramiko.SFTPClient:
        # paramiko waits without any timeout for the subsystem request and up to an hour for
        # the channel: a host that never answers would hang the command. A watchdog closes
        # the channel when the command timeout expires.
        timeout = self.options.command_timeout
        with self._sftp_errors("open sftp"):
            chan = self._transport.open_session(timeout=timeout)
            chan.settimeout(timeout)
            with watchdog(chan, timeout) as fired:
                try:
                    chan.invoke_subsystem("sftp")
                    return paramiko.SFTPClient(chan)
                except (paramiko.SSHException, EOFError, OSError):
                    if fired.is_set():
                        raise TimeoutError from None
                    raise

    def _drop_sftp(self) -> None:
        # after a timeout the SFTP stream may be cut mid-reply: never reuse it
        with self._lock:
            sftp, self._sftp = self._sftp, None
        if sftp is not None:
            try:
                sftp.close()
            except Exception:  # closing a broken session: nothing more to learn
                pass

    @contextmanager
    def _sftp_errors(self, what: str) -> Iterator[None]:
        """Timeouts and dead connections become SSHError; SFTP status errors (no such file, ...)
        stay OSError subclasses so callers can tell them apart."""
        try:
            yield
        except TimeoutError:
            self._drop_sftp()
            raise SSHTimeout(self.host, f"timeout: sftp {what}") from None
        except (paramiko.SSHException, EOFError) as e:
            raise ConnectFailed(self.host, f"connection lost: {e or type(e).__name__}") from None
        except OSError as e:
            if not self._transport.is_active():
                raise ConnectFailed(self.host, "connection lost") from None
            if e.errno is None and "closed" in str(e).lower():
                raise ConnectFailed(self.host, f"connection lost: {e}") from None
            raise

    # -- confinement

    def _check_dirs(self, parts: Sequence[str]) -> None:
        """Every prefix of `parts` is a real directory (FileNotFoundError when one is missing)."""
        if self._safe_dirs is None:
            self._safe_dirs = set()
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in self._safe_dirs:
                continue
            check_attr(self.host, parts[:i], self.sftp.lstat(prefix).st_mode, "dir")
            self._safe_dirs.add(prefix)

    def _read(self, path: str, limit: int, sink: Callable[[bytes], object]) -> None:
        parts = path_parts(self.host, path)
        rel = "/".join(parts)
        with self._sftp_errors(f"read {rel}"):
            self._check_dirs(parts[:-1])
            attr = self.sftp.lstat(rel)
            check_attr(self.host, parts, attr.st_mode, "file")
            if (attr.st_size or 0) > limit:
                raise too_big(self.host, parts, limit)
            with self.sftp.open(rel, "rb") as f:
                # the file opened may not be the one lstat saw: check the open one too
                attr = f.stat()
                check_attr(self.host, parts, attr.st_mode, "file")
                size = attr.st_size or 0
                if size > limit:
                    raise too_big(self.host, parts, limit)
                deadline = time.monotonic() + max(self.options.command_timeout, size / MIN_RATE)
                if size:
                    f.prefetch(size)
                got = 0
                while chunk := f.read(min(1 << 20, limit + 1 - got)):
                    got += len(chunk)
                    if got > limit:
                        raise too_big(self.host, parts, limit)
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    sink(chunk)

    # -- the file methods

    def exists(self, path: str) -> bool:
        parts = path_parts(self.host, path)
        rel = "/".join(parts)
        try:
            with self._sftp_errors(f"stat {rel}"):
                self._check_dirs(parts[:-1])
                mode = self.sftp.lstat(rel).st_mode or 0
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(mode):
            check_attr(self.host, parts, mode, "any")
        return True

    def _entries(self, parts: list[str]) -> list[paramiko.SFTPAttributes]:
        rel = "/".join(parts)
        with self._sftp_errors(f"list {rel}"):
            self._check_dirs(parts)
            out = []
            for entry in self.sftp.listdir_iter(rel):
                if len(out) >= MAX_LIST:
                    raise UnsafePath(self.host, f"{shown(parts)} holds more than {MAX_LIST} "
                                     "entries")
                if not good_name(entry.filename):
                    raise UnsafePath(self.host, f"{shown(parts)} holds an entry with an illegal "
                                     f"name: {entry.filename!r}")
                out.append(entry)
        return sorted(out, key=lambda e: e.filename)

    def listdir(self, path: str) -> list[str]:
        return [e.filename for e in self._entries(path_parts(self.host, path))]

    def download_tree(self, path: str, dest: str, first: Sequence[str] = (), *,
                      max_total: int = 1 << 30, max_depth: int = 8) -> int:
        """Copy the remote folder `path` into the local folder `dest` (created); returns the
        bytes copied. Entries named in `first` are copied before the others (e.g. a git
        repository's refs before its objects, so the refs read never name objects that were
        not copied). Only directories and regular files; at most `max_total` bytes in all."""
        left = [max_total]
        root = path_parts(self.host, path)

        def copy(parts: list[str], local: str, depth: int, first: Sequence[str]) -> None:
            if depth > max_depth:
                raise UnsafePath(self.host, f"{shown(parts)} is nested too deep")
            os.makedirs(local, exist_ok=True)
            entries = self._entries(parts)
            entries.sort(key=lambda e: (e.filename not in first, e.filename))
            for entry in entries:
                sub, dst = [*parts, entry.filename], os.path.join(local, entry.filename)
                if stat.S_ISDIR(entry.st_mode or 0):
                    copy(sub, dst, depth + 1, ())
                    continue
                check_attr(self.host, sub, entry.st_mode, "file")
                if (entry.st_size or 0) > left[0]:
                    raise TooLarge(self.host, f"{shown(root)} is larger than {max_total} bytes")
                fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as f:
                    try:
                        self._read("/".join(sub), left[0], f.write)
                    except TooLarge:
                        raise TooLarge(self.host, f"{shown(root)} is larger than "
                                       f"{max_total} bytes") from None
                    left[0] -= f.tell()

        copy(root, dest, 0, first)
        return max_total - left[0]

    def remove(self, path: str, *, missing_ok: bool = True) -> None:
        """Remove a regular file; a symlink, directory or device is refused, not removed."""
        parts = path_parts(self.host, path)
        rel = "/".join(parts)
        try:
            with self._sftp_errors(f"remove {rel}"):
                self._check_dirs(parts[:-1])
                check_attr(self.host, parts, self.sftp.lstat(rel).st_mode, "file")
                self.sftp.remove(rel)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir_p(self, path: str, mode: int = 0o755) -> None:
        parts = path_parts(self.host, path)
        if self._safe_dirs is None:
            self._safe_dirs = set()
        with self._sftp_errors(f"mkdir {'/'.join(parts)}"):
            for i in range(1, len(parts) + 1):
                cur = "/".join(parts[:i])
                if cur in self._safe_dirs:
                    continue
                try:
                    attr = self.sftp.lstat(cur)
                except FileNotFoundError:
                    try:
                        self.sftp.mkdir(cur, mode)
                    except OSError:
                        pass  # created meanwhile by someone else: checked below
                    attr = self.sftp.lstat(cur)
                check_attr(self.host, parts[:i], attr.st_mode, "dir")
                self._safe_dirs.add(cur)

    def write_atomic(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Readers see the old content or the new, never a part: write a temporary file in the
        same directory, fsync it, then posix-rename it over the target (§6.7 step 5)."""
        parts = path_parts(self.host, path)
        path = "/".join(parts)
        directory, name = posixpath.split(path)
        tmp = posixpath.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
        with self._sftp_errors(f"write {path}"):
            self._check_dirs(parts[:-1])
            try:
                check_attr(self.host, parts, self.sftp.lstat(path).st_mode, "file")
            except FileNotFoundError:
                pass
        sftp = self.sftp
        with self._sftp_errors(f"write {path}"):
            try:
                # x: exclusive create, so nothing planted under the temporary name is followed
                with sftp.open(tmp, "wbx") as f:
                    # the mode first: a secret (0600) is never readable by others, even briefly
                    f.chmod(mode)
                    f.set_pipelined(True)
                    f.write(data)
                    f.flush()
                    self._fsync(sftp, f)
                sftp.posix_rename(tmp, path)
            except BaseException:
                if self._transport.is_active():
                    try:
                        sftp.remove(tmp)
                    except Exception:  # best effort; the original error matters more
                        pass
                raise

    def _fsync(self, sftp: paramiko.SFTPClient, f: paramiko.SFTPFile) -> None:
        # paramiko's SFTPFile has no fsync: send OpenSSH's extension ourselves. A server without
        # it gets a remote `sync` instead, which flushes everything (slower, same guarantee).
        if self._fsync_supported:
            try:
                sftp._request(CMD_EXTENDED, "fsync@openssh.com", f.handle)
                return
            except OSError as e:
                if self._transport.is_active() and "unsupported" in str(e).lower():
                    self._fsync_supported = False
                else:
                    raise
        result = self.run(["sync"])
        if result.code != 0:
            raise ConnectFailed(self.host, "remote sync failed")
