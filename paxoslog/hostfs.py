"""The file methods of `paxoslog.ssh.Connection` on a local folder, so a host that is this
machine (rule L, §6.1) is deployed and inspected by the same code, through the file system."""

from __future__ import annotations

import hashlib
import os

from paxoslog import fsutil


class LocalFS:
    def __init__(self, root: str, host: str) -> None:
        self.root = root
        self.host = host

    def _p(self, path: str) -> str:
        path = path[2:] if path.startswith("~/") else path
        return os.path.join(self.root, path)

    def read_file(self, path: str) -> bytes:
        with open(self._p(path), "rb") as f:
            return f.read()

    def exists(self, path: str) -> bool:
        return os.path.exists(self._p(path))

    def mkdir_p(self, path: str, mode: int = 0o755) -> None:
        os.makedirs(self._p(path), mode=mode, exist_ok=True)

    def write_atomic(self, path: str, data: bytes, mode: int = 0o644) -> None:
        fsutil.atomic_write(self._p(path), data, mode=mode)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(self._p(path)))

    def sha256(self, path: str) -> str | None:
        try:
            return hashlib.sha256(self.read_file(path)).hexdigest()
        except FileNotFoundError:
            return None

    def remove(self, path: str, *, missing_ok: bool = True) -> None:
        try:
            os.unlink(self._p(path))
        except FileNotFoundError:
            if not missing_ok:
                raise
