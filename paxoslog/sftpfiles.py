"""Remote file operations of a `paxoslog.ssh.Connection`, over SFTP, each under the command
timeout. A mixin, so the file helpers stay readable apart from connecting and commands."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import paramiko
from paramiko.sftp import CMD_EXTENDED

from paxoslog.ssherrors import ConnectFailed, SSHTimeout

if TYPE_CHECKING:
    from paxoslog.ssh import RunResult, SSHOptions


def remote_path(path: str) -> str:
    """SFTP paths are relative to the login directory; accept the spec's `~/x` spelling too."""
    if path == "~":
        return "."
    return path[2:] if path.startswith("~/") else path


class RemoteFiles:
    """Needs `host`, `options`, `_transport` and `run` from the class it is mixed into."""

    host: str
    options: SSHOptions
    _transport: paramiko.Transport
    _lock: threading.Lock  # guards the lazy SFTP session
    _sftp: paramiko.SFTPClient | None = None
    _fsync_supported = True

    def run(self, args: Sequence[str], *, stdin: bytes = b"",
            timeout: float | None = None) -> RunResult:
        raise NotImplementedError

    @property
    def sftp(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._sftp is None:
                with self._sftp_errors("open sftp"):
                    self._sftp = paramiko.SFTPClient.from_transport(self._transport)
                    self._sftp.get_channel().settimeout(self.options.command_timeout)
            return self._sftp

    @contextmanager
    def _sftp_errors(self, what: str) -> Iterator[None]:
        """Timeouts and dead connections become SSHError; SFTP status errors (no such file, ...)
        stay OSError subclasses so callers can tell them apart."""
        try:
            yield
        except TimeoutError:
            raise SSHTimeout(self.host, f"timeout: sftp {what}") from None
        except (paramiko.SSHException, EOFError) as e:
            raise ConnectFailed(self.host, f"connection lost: {e or type(e).__name__}") from None
        except OSError as e:
            if not self._transport.is_active():
                raise ConnectFailed(self.host, "connection lost") from None
            if e.errno is None and "closed" in str(e).lower():
                raise ConnectFailed(self.host, f"connection lost: {e}") from None
            raise

    def read_file(self, path: str) -> bytes:
        path = remote_path(path)
        with self._sftp_errors(f"read {path}"), self.sftp.open(path, "rb") as f:
            f.prefetch()
            return f.read()

    def sha256(self, path: str) -> str | None:
        """Hex digest of a remote file, or None when it does not exist."""
        path = remote_path(path)
        digest = hashlib.sha256()
        try:
            with self._sftp_errors(f"read {path}"), self.sftp.open(path, "rb") as f:
                f.prefetch()
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def exists(self, path: str) -> bool:
        path = remote_path(path)
        try:
            with self._sftp_errors(f"stat {path}"):
                self.sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def listdir(self, path: str) -> list[str]:
        path = remote_path(path)
        with self._sftp_errors(f"list {path}"):
            return sorted(self.sftp.listdir(path))

    def download_tree(self, path: str, dest: str, first: Sequence[str] = ()) -> None:
        """Copy the remote folder `path` into the local folder `dest` (created). Entries named
        in `first` are copied before the others (e.g. a git repository's refs before its
        objects, so the refs read never name objects that were not copied)."""
        path = remote_path(path)
        with self._sftp_errors(f"list {path}"):
            entries = self.sftp.listdir_attr(path)
        os.makedirs(dest, exist_ok=True)
        entries.sort(key=lambda e: (e.filename not in first, e.filename))
        for entry in entries:
            src, dst = posixpath.join(path, entry.filename), os.path.join(dest, entry.filename)
            if stat.S_ISDIR(entry.st_mode or 0):
                self.download_tree(src, dst)
            elif stat.S_ISREG(entry.st_mode or 0):
                with open(dst, "wb") as f:
                    f.write(self.read_file(src))

    def remove(self, path: str, *, missing_ok: bool = True) -> None:
        path = remote_path(path)
        try:
            with self._sftp_errors(f"remove {path}"):
                self.sftp.remove(path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir_p(self, path: str, mode: int = 0o755) -> None:
        path = remote_path(path)
        parts = [p for p in path.split("/") if p and p != "."]
        cur = "/" if path.startswith("/") else ""
        with self._sftp_errors(f"mkdir {path}"):
            for part in parts:
                cur = posixpath.join(cur, part) if cur else part
                try:
                    self.sftp.stat(cur)
                    continue
                except FileNotFoundError:
                    pass
                try:
                    self.sftp.mkdir(cur, mode)
                except OSError:
                    self.sftp.stat(cur)  # created meanwhile by someone else: fine

    def write_atomic(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Readers see the old content or the new, never a part: write a temporary file in the
        same directory, fsync it, then posix-rename it over the target (§6.7 step 5)."""
        path = remote_path(path)
        directory, name = posixpath.split(path)
        tmp = posixpath.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
        sftp = self.sftp
        with self._sftp_errors(f"write {path}"):
            try:
                with sftp.open(tmp, "wb") as f:
                    f.set_pipelined(True)
                    f.write(data)
                    f.flush()
                    f.chmod(mode)
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
