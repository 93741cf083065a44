"""Host key checking against an OpenSSH known_hosts file (§6.1).

Kept separate from the connection code so the policy (unknown / changed / trusted) can be read
and tested on its own. Nothing here raises the user-facing errors; `paxoslog.ssh` does.
"""

from __future__ import annotations

import binascii
import enum
import logging
import os
import threading
from pathlib import Path

import paramiko
import paramiko.hostkeys

log = logging.getLogger(__name__)


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
        self._revoked: set[str] = set()
        if self.path.exists():
            self._load(self.path.read_text(errors="replace"))

    def _load(self, text: str) -> None:
        # Line by line rather than HostKeys.load, which gives up on the whole file at the first
        # `@revoked`/`@cert-authority` marker or malformed line. A revoked key must be known
        # as such: merely unknown, --trust-new-hosts would accept it.
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if fields[0].startswith("@"):
                if fields[0] == "@revoked" and len(fields) >= 4:
                    self._revoked.add(fields[3])
                continue  # @cert-authority: host certificates are not supported
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
            except (paramiko.SSHException, ValueError, binascii.Error) as e:
                log.warning("%s:%d: ignoring unreadable line (%s)", self.path, number, e)
                continue
            if entry is None or entry.key is None:
                continue
            for name in entry.hostnames:
                self._keys.add(name, entry.key.get_name(), entry.key)

    def known_types(self, name: str) -> list[str]:
        """Key types recorded for `name`; the transport should ask the server for these first."""
        with self._lock:
            entry = self._keys.lookup(name)
            return list(entry.keys()) if entry else []

    def check(self, name: str, key: paramiko.PKey) -> KeyStatus:
        with self._lock:
            if key.get_base64() in self._revoked:
                return KeyStatus.CHANGED
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
