"""Host key checking against an OpenSSH known_hosts file (§6.1).

Kept separate from the connection code so the policy (unknown / changed / trusted) can be read
and tested on its own. Nothing here raises the user-facing errors; `paxoslog.ssh` does.
"""

from __future__ import annotations

import enum
import os
import threading
from pathlib import Path

import paramiko


class KeyStatus(enum.Enum):
    KNOWN = "known"
    UNKNOWN = "unknown"
    CHANGED = "changed"


def known_hosts_name(address: str, port: int) -> str:
    """The name OpenSSH writes in known_hosts: bare for port 22, else `[host]:port`."""
    return address if port == 22 else f"[{address}]:{port}"


def key_type(key: paramiko.PKey) -> str:
    """OpenSSH's display name of a key type: ED25519, RSA, ECDSA."""
    return key.algorithm_name


def fingerprint(key: paramiko.PKey) -> str:
    """`SHA256:<base64 without padding>`, as OpenSSH prints it."""
    return key.fingerprint


class KnownHosts:
    """One known_hosts file, loaded once per session, safe to share between threads.

    Additions are appended to the file (never a rewrite), so comments, hashed entries and lines
    paramiko cannot parse survive untouched.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys = paramiko.HostKeys()
        if self.path.exists():
            self._keys.load(str(self.path))

    def known_types(self, name: str) -> list[str]:
        """Key types recorded for `name`; the transport should ask the server for these first."""
        with self._lock:
            entry = self._keys.lookup(name)
            return list(entry.keys()) if entry else []

    def check(self, name: str, key: paramiko.PKey) -> KeyStatus:
        with self._lock:
            entry = self._keys.lookup(name)
            if not entry:
                return KeyStatus.UNKNOWN
            recorded = entry.get(key.get_name())
            if recorded is None:
                # Another type is known for this host. The transport asked for the known types
                # first, so a server offering only a new type has most likely been replaced.
                return KeyStatus.CHANGED
            return KeyStatus.KNOWN if recorded == key else KeyStatus.CHANGED

    def add(self, name: str, key: paramiko.PKey) -> None:
        """Trust `key` for `name` from now on and append it to the file."""
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            self._keys.add(name, key.get_name(), key)
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            needs_newline = False
            if self.path.exists() and self.path.stat().st_size:
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    needs_newline = f.read(1) != b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(("\n" if needs_newline else "") + line)
