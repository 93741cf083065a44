"""Host key checking against an OpenSSH known_hosts file (§6.1).

Kept separate from the connection code so the policy (unknown / changed / revoked / trusted) can
be read and tested on its own. How lines and host patterns are read is `paxoslog.remote.hostpatterns`
(pure, OpenSSH's rules); this module owns the file: reading it bounded, appending to it under a
lock, and OpenSSH's port-less fallback. Nothing here raises the user-facing SSH errors;
`paxoslog.remote.ssh` does.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import threading
from pathlib import Path

from paxoslog import fsutil
from paxoslog.errors import PaxosError
from paxoslog.remote.hostpatterns import (
    PLAIN_KEY_TYPES,
    Entry,
    KeyStatus,
    Marker,
    ascii_lower,
    blob_type,
    is_revoked,
    key_status,
    matching,
    parse,
    parse_line,
    recordable,
)
from paxoslog.remote.paramikoload import paramiko

__all__ = ["KeyStatus", "KnownHosts", "KnownHostsError", "fingerprint", "key_type",
           "known_hosts_name", "recordable"]

log = logging.getLogger(__name__)

# A known_hosts this large is not one anybody maintains; refusing it beats a slow, partial read
# (ignoring its tail could turn a changed key into an unknown one).
MAX_KNOWN_HOSTS_BYTES = 64 << 20


class KnownHostsError(PaxosError):
    """known_hosts cannot be read: no host key can be checked against it."""


def known_hosts_name(address: str, port: int) -> str:
    """The name OpenSSH looks up and writes: bare for port 22, else `[host]:port`."""
    return address if port == 22 else f"[{address}]:{port}"


def key_type(key: paramiko.PKey) -> str:
    """OpenSSH's display name of a key type: ED25519, RSA, ECDSA."""
    return key.algorithm_name


def fingerprint(key: paramiko.PKey) -> str:
    """`SHA256:<base64 without padding>`, as OpenSSH prints it."""
    return key.fingerprint


def _read_bounded(path: Path) -> bytes | None:
    """The file's bytes, None if it does not exist; KnownHostsError if it cannot be used (a
    FIFO in its place must not hang the command; the operator's symlink is followed)."""
    try:
        return fsutil.read_regular(str(path), MAX_KNOWN_HOSTS_BYTES, follow=True)
    except FileNotFoundError:
        return None
    except fsutil.FileTooLarge:
        raise KnownHostsError(f"cannot read {path}: larger than "
                              f"{MAX_KNOWN_HOSTS_BYTES >> 20} MiB") from None
    except fsutil.NotRegularFile:
        raise KnownHostsError(f"cannot read {path}: not a regular file") from None
    except OSError as e:
        raise KnownHostsError(f"cannot read {path}: {e.strerror or e}") from None


class KnownHosts:
    """One known_hosts file, loaded once per session, safe to share between threads.

    Additions are appended to the file (never a rewrite), so comments, hashed entries and lines
    we skip survive untouched. A file that cannot be read is remembered, and every check then
    fails with KnownHostsError: no host is trusted (or trusted anew) without it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._error: KnownHostsError | None = None
        self._matches: dict[str, list[Entry]] = {}
        try:
            data = _read_bounded(self.path)
        except KnownHostsError as e:
            self._error = e
            return
        if data is not None:
            self._entries, skipped = parse(data)
            for number, reason in skipped:
                log.debug("%s:%d: ignoring line (%s)", self.path, number, reason)

    def _matching(self, name: str) -> list[Entry]:
        found = self._matches.get(name)
        if found is None:
            found = self._matches[name] = matching(self._entries, name)
        return found

    def known_types(self, address: str, port: int) -> list[str]:
        """Key types recorded for the host; the transport should ask the server for these first
        (as OpenSSH orders its host key algorithms)."""
        with self._lock:
            if self._error is not None:
                return []
            names = [known_hosts_name(address, port)] + ([address] if port != 22 else [])
            for name in names:
                # plain key types only: host certificates are never asked for
                types = [t for e in self._matching(name) if e.marker is Marker.NONE
                         and (t := blob_type(e.blob)) in PLAIN_KEY_TYPES]
                if types:
                    return list(dict.fromkeys(types))
            return []

    def check(self, address: str, port: int, key: paramiko.PKey) -> KeyStatus:
        with self._lock:
            if self._error is not None:
                raise self._error
            blob = key.asbytes()
            if is_revoked(self._entries, blob):
                return KeyStatus.REVOKED
            status = key_status(self._matching(known_hosts_name(address, port)), blob)
            if status is KeyStatus.UNKNOWN and port != 22:
                # OpenSSH (sshconnect.c, "checking without port identifier"): nothing recorded
                # for [host]:port, but this very key recorded for the bare host, is known. A
                # different key there does not make it changed: each port may have its own.
                if key_status(self._matching(address), blob) is KeyStatus.KNOWN:
                    return KeyStatus.KNOWN
            return status

    def add(self, address: str, port: int, key: paramiko.PKey) -> bool:
        """Trust `key` for the host from now on and append it to the file, lowercased as OpenSSH
        writes it. Returns False (after a warning) when the file cannot be written: the key stays
        trusted for this session, as OpenSSH does."""
        if not recordable(address):
            raise ValueError(f"not a host name known_hosts can record: {address!r}")
        name = ascii_lower(known_hosts_name(address, port))
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            entry = parse_line(line.rstrip("\n"), 0)
            if isinstance(entry, Entry):
                self._entries.append(entry)
                self._matches.clear()
            try:
                self._append(line.encode())
            except OSError as e:
                log.warning("%s: cannot record the host key for %s: %s", self.path, name,
                            e.strerror or e)
                return False
            return True

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOCTTY | os.O_NONBLOCK,
                     0o600)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{self.path} is not a regular file")
            # Other paxos processes may append at the same time: one at a time, and the
            # "does the file end in a newline" question answered under the same lock.
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            # One write(2) with O_APPEND: the line lands whole, at the end.
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)  # releases the lock
