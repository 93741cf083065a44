"""The cell secrets (nodes.md §2.3): `$PAXOS_HOME/etc/cell/<cell>.key`, 32 random bytes, 0600.

A secret is created the first time a cell is deployed, never enters the event log (the log is
shipped to every host), and goes only to the cell's member hosts (the TCP hosts of its servers).
`fetch` from a member host restores a missing local secret. A key file is never written or read
through a symbolic link, and one read from anywhere must be a regular file of exactly 32 bytes.

`publish()` (etc/ equals HEAD) removes only stale `.conf` files, so it keeps every key: also those
of cells HEAD no longer renders, because an operator may register the cell again (undo) and its
members still hold that secret.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable

from paxoslog import fsutil
from paxoslog.core.model import Topology
from paxoslog.errors import PaxosError, RemoteError
from paxoslog.store.home import Home

KEY_BYTES = 32
CELL_DIR = "etc/cell"
_KEY = re.compile(r"([A-Za-z0-9_]+)\.key\Z", re.ASCII)


class BadKey(RemoteError):
    """A key file that is not a regular file of exactly 32 bytes."""


def key_path(cell: str) -> str:
    return f"{CELL_DIR}/{cell}.key"


def key_cell(path: str) -> str | None:
    """The cell a path `etc/cell/<cell>.key` belongs to, else None."""
    head, _, name = path.rpartition("/")
    m = _KEY.fullmatch(name)
    return m.group(1) if head == CELL_DIR and m else None


def is_kept_key(path: str, rendered: Iterable[str]) -> bool:
    """A key of a cell whose `.conf` is in `rendered` (paths): not stale, never cleaned."""
    cell = key_cell(path)
    return cell is not None and f"{CELL_DIR}/{cell}.conf" in set(rendered)


def check_key(data: bytes | None, where: str) -> bytes:
    if data is None or len(data) != KEY_BYTES:
        raise BadKey(f"{where}: not a cell secret (a regular file of exactly {KEY_BYTES} bytes)")
    return data


def _cell_dir(home: Home, create: bool) -> int | None:
    try:
        return fsutil.open_dir(home.root, ("etc", "cell"), create=create,
                               where=home.path(""))
    except FileNotFoundError:
        return None


def read_key(home: Home, cell: str) -> bytes | None:
    """The local secret of `cell`, None when there is none; BadKey when it is not valid."""
    d = _cell_dir(home, create=False)
    if d is None:
        return None
    try:
        try:
            st = os.stat(f"{cell}.key", dir_fd=d, follow_symlinks=False)
        except FileNotFoundError:
            return None
        where = home.path(key_path(cell))
        if not stat.S_ISREG(st.st_mode):
            raise BadKey(f"{where}: not a regular file")
        return check_key(fsutil.read_at(d, f"{cell}.key"), where)
    finally:
        os.close(d)


def write_key(home: Home, cell: str, data: bytes) -> None:
    """Write a secret atomically, mode 0600 from its creation on, never through a link."""
    check_key(data, key_path(cell))
    d = _cell_dir(home, create=True)
    assert d is not None
    try:
        fsutil.atomic_write_at(d, f"{cell}.key", data, mode=0o600)
    finally:
        os.close(d)


def has_key(home: Home, cell: str) -> bool:
    try:
        return read_key(home, cell) is not None
    except BadKey:
        return True  # a key is there (damaged): the cell may well have been deployed


def ensure_keys(home: Home, topology: Topology) -> dict[str, bytes]:
    """Every cell's secret, creating the missing ones (a cell's first deploy)."""
    keys = {}
    for cell in topology.cells:
        key = read_key(home, cell.name)
        if key is None:
            key = os.urandom(KEY_BYTES)
            write_key(home, cell.name, key)
        keys[cell.name] = key
    return keys


def member_cells(topology: Topology, hostname: str) -> list[str]:
    """The cells that have a server whose TCP host is `hostname`."""
    return [c.name for c in topology.cells if any(s.taddr == hostname for s in c.servers)]


def keys_for_host(topology: Topology, keys: dict[str, bytes], hostname: str
                  ) -> dict[str, bytes]:
    """path -> secret of the cells `hostname` is a member host of."""
    return {key_path(c): keys[c] for c in member_cells(topology, hostname) if c in keys}


def restore_keys(home: Home, topology: Topology, fs, hostname: str) -> list[str]:
    """Fetch: copy the secrets of the cells `hostname` serves that are missing here. Returns
    warnings (a bad key on the host is not copied; the fetch itself still succeeded)."""
    warnings = []
    for cell in member_cells(topology, hostname):
        if has_key(home, cell):
            continue
        try:
            data = fs.read_file(key_path(cell), KEY_BYTES)
        except FileNotFoundError:
            continue
        except (PaxosError, OSError) as e:
            warnings.append(f"{hostname}: {key_path(cell)} not restored: {e}")
            continue
        try:
            write_key(home, cell, check_key(data, f"{key_path(cell)} on {hostname}"))
        except BadKey as e:
            warnings.append(f"{e.message}; not restored")
    return warnings
