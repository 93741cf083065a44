"""Local state under $PAXOS_HOME (§5.2): the log, HEAD's rendering in etc/, the snapshot cache."""

from __future__ import annotations

import os
from dataclasses import dataclass

import msgpack

from . import fsutil
from .model import EMPTY, Topology, from_plain, to_plain
from .schema import ID_MAX, integer

CACHE_VERSION = 1


@dataclass(frozen=True)
class Home:
    root: str

    @classmethod
    def from_env(cls) -> Home:
        return cls(os.environ.get("PAXOS_HOME") or os.path.expanduser("~"))

    @property
    def repo(self) -> str:
        return os.path.join(self.root, "var", "paxoslog.git")

    @property
    def lock(self) -> str:
        return os.path.join(self.root, "var", "paxoslog.lock")

    @property
    def cache(self) -> str:
        return os.path.join(self.root, "var", "topology.cache")

    @property
    def history(self) -> str:
        return os.path.join(self.root, ".paxos_history")

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)


def read_head_ref(home: Home) -> bytes | None:
    """HEAD's commit id read straight from the ref file: no dulwich import on the hot path."""
    try:
        with open(os.path.join(home.repo, "refs", "heads", "main"), "rb") as f:
            sha = f.read().strip()
        if len(sha) == 40:
            return sha
    except FileNotFoundError:
        pass
    if not os.path.isfile(os.path.join(home.repo, "HEAD")):
        return None
    from .gitlog import EventLog  # packed refs or anything unusual: ask dulwich

    return EventLog(home.repo).head()


def head_state(home: Home) -> tuple[bytes | None, int, Topology]:
    """(HEAD commit, its rev, its topology), from the cache when it matches HEAD."""
    sha = read_head_ref(home)
    if sha is None:
        return None, 0, EMPTY
    cached = _read_cache(home, sha)
    if cached is not None:
        return sha, cached[0], cached[1]
    from .gitlog import EventLog

    log = EventLog(home.repo)
    topology = log.topology(sha)
    rev = log.rev(sha)
    write_cache(home, sha, rev, topology)
    return sha, rev, topology


def _read_cache(home: Home, sha: bytes) -> tuple[int, Topology] | None:
    try:
        with open(home.cache, "rb") as f:
            raw = msgpack.unpackb(f.read(), raw=False)
        if raw.get("v") == CACHE_VERSION and raw.get("commit") == sha.decode():
            # Validated like the snapshot it copies: a bad cache is rebuilt from the log.
            return integer(raw["rev"], 1, ID_MAX, "rev"), from_plain(raw["topology"])
    except Exception:  # a damaged cache is only a cache: rebuild it from the log
        return None
    return None


def write_cache(home: Home, sha: bytes, rev: int, topology: Topology) -> None:
    data = msgpack.packb({"v": CACHE_VERSION, "commit": sha.decode(), "rev": rev,
                          "topology": to_plain(topology)}, use_bin_type=True)
    os.makedirs(os.path.dirname(home.cache), exist_ok=True)
    fsutil.atomic_write(home.cache, data, durable=False)


def write_etc(home: Home, files: dict[str, bytes]) -> list[str]:
    """Make $PAXOS_HOME/etc equal `files`: changed files rewritten atomically, stale cell
    files removed. Returns the paths it changed."""
    changed = []
    for rel, data in files.items():
        if not rel.startswith("etc/"):
            continue
        path = home.path(rel)
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        fsutil.atomic_write(path, data)
        changed.append(rel)
    cell_dir = home.path("etc/cell")
    if os.path.isdir(cell_dir):
        for name in sorted(os.listdir(cell_dir)):
            rel = f"etc/cell/{name}"
            if name.endswith(".conf") and rel not in files:
                os.unlink(os.path.join(cell_dir, name))
                changed.append(rel)
    return changed
