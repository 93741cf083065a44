"""`deploy`, `deploy --dry-run` and `status deploy` (§3.9, §3.10, §4.7, §6.7), as functions the
CLI calls: they take the selected hosts and an `SSHSession` and return report documents.

Each host goes through the same steps whether it is reached over SSH or is this machine (rule L,
then through `LocalFS` on $PAXOS_HOME); hosts fail independently and the others continue.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from paxoslog.app import cellkeys
from paxoslog.core.model import Host, Topology
from paxoslog.core.stamp import (
    MAX_STAMP,
    STAMP,
    StampError,
    is_conf_path,
    parse_stamp,
)
from paxoslog.errors import NotFound, RemoteError
from paxoslog.remote.hostfs import HostFiles, LocalFS
from paxoslog.remote.locality import is_local
from paxoslog.remote.remoterepo import (
    REPO,
    Diverged,
    Pack,
    Unreadable,
    check_ancestry,
    missing_objects,
    pack,
    remote_head,
    ship,
)
from paxoslog.remote.ssh import HostSpec
from paxoslog.remote.sshpool import HOST_ERRORS, SSHSession, reason_of
from paxoslog.store.gitlog import EVENT_PATH, EventLog
from paxoslog.store.home import Home, head_state
from paxoslog.yamlfmt import dq

CELL_DIR = "etc/cell"
T = TypeVar("T")


def spec_of(host: Host) -> HostSpec:
    return HostSpec(host.hostname, host.user, host.port, host.use_ssh_config)


def select_targets(topology: Topology, names: Sequence[str] = (),
                   groups: Sequence[str] = ()) -> list[Host]:
    """§3.9: every name must be registered (checked in order, before any connection); then the
    registered hosts, in registration order, named (if names) and sharing a group (if groups)."""
    known = {h.hostname for h in topology.hosts}
    for name in names:
        if name not in known:
            raise NotFound(name)
    wanted = set(groups)
    return [h for h in topology.hosts
            if (not names or h.hostname in names) and (not wanted or wanted & set(h.groups))]


@dataclass
class LocalState:
    """What every host is compared with: HEAD of the local log and its rendered files."""

    log: EventLog
    head: bytes
    rev: int
    history: list[bytes]
    files: dict[str, bytes]
    topology: Topology

    @classmethod
    def load(cls, home: Home) -> LocalState:
        sha, rev, topology = head_state(home)
        if sha is None:
            raise RemoteError("nothing to deploy: the event log is empty")
        log = EventLog(home.repo)
        files = {p: d for p, d in log.files(log.commit(sha)).items() if p != EVENT_PATH}
        for path in files:
            if not is_conf_path(path):
                raise RemoteError(f"refusing to deploy {path}: not a configuration file path")
        return cls(log, sha, rev, log.history(sha), files, topology)


@dataclass
class Outcome:
    """Per-host report documents (hosts that worked) and errors, both in target order."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def error_message(self) -> str:
        return ", ".join(f"{host}: {reason}" for host, reason in self.errors.items())


def _each(home: Home, targets: Sequence[Host], session: SSHSession,
          fn: Callable[[HostFiles, str], T]) -> tuple[dict[str, T], dict[str, str]]:
    local = [h for h in targets if is_local(h)]
    remote = [h for h in targets if not is_local(h)]
    many = session.run_many([spec_of(h) for h in remote],
                            lambda conn: fn(conn, conn.host))
    results, errors = dict(many.results), dict(many.errors)
    for h in local:
        try:
            results[h.hostname] = fn(LocalFS(home.root, h.hostname), h.hostname)
        except HOST_ERRORS as e:
            errors[h.hostname] = reason_of(e)
    order = [h.hostname for h in targets]
    return ({n: results[n] for n in order if n in results},
            {n: errors[n] for n in order if n in errors})


def _their_head(fs: HostFiles, host: str, local: LocalState) -> bytes | None:
    try:
        theirs = remote_head(fs)
        check_ancestry(local.history, theirs)
    except Diverged:
        raise DivergedLog(f"event log on {host} has diverged from the local one") from None
    except Unreadable as e:
        raise RemoteError(f"event log on {host} is unreadable: {e}") from None
    return theirs


class DivergedLog(RemoteError):
    """The host's event log is not HEAD nor an ancestor of it (§6.7 step 2)."""


def _read_stamp(fs: HostFiles) -> dict[str, Any] | None:
    try:
        raw = fs.read_file(STAMP, MAX_STAMP)
    except FileNotFoundError:
        return None
    return parse_stamp(raw)


def _cell_files(fs: HostFiles) -> list[str]:
    try:
        return [f"{CELL_DIR}/{name}" for name in fs.listdir(CELL_DIR)]
    except FileNotFoundError:
        return []


def now_iso() -> str:
    t = time.time()
    offset = time.localtime(t).tm_gmtoff
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f"{sign}{hours:02d}:{minutes:02d}"


def stamp_text(local: LocalState, author: str, when: str) -> bytes:
    """§5.3 `~/etc/DEPLOYED`: YAML with fixed key order, loadable with yaml.safe_load."""
    lines = [f"commit: {dq(local.head.decode())}", f"rev: {local.rev}", f"author: {dq(author)}",
             f"time: {dq(when)}", "files:"]
    for path, data in local.files.items():
        lines.append(f"  {dq(path)}: {dq('sha256:' + hashlib.sha256(data).hexdigest())}")
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------- deploy


def deploy(home: Home, targets: Sequence[Host], session: SSHSession, *, clean: bool = False,
           author: str | None = None) -> Outcome:
    """§6.7 steps 1-7 on every target; returns no documents, only per-host errors."""
    local = LocalState.load(home)
    if author is None:
        from paxoslog.app.session import author as operator

        author = operator()
    # a cell's secret is made on its first deploy; it stays out of the log and the stamp
    keys = cellkeys.ensure_keys(home, local.topology)

    packs: dict[bytes | None, Pack | None] = {}
    packs_lock = threading.Lock()

    def pack_after(theirs: bytes | None) -> Pack | None:
        # Most hosts hold the same head: build what they lack once, not once per host.
        with packs_lock:
            if theirs not in packs:
                objects = missing_objects(local.log, local.history, theirs)
                packs[theirs] = pack(objects) if objects else None
            return packs[theirs]

    def one(fs: HostFiles, host: str) -> None:
        theirs = _their_head(fs, host, local)
        fs.mkdir_p(CELL_DIR)
        fs.mkdir_p("var")
        if clean:
            for path in _cell_files(fs):
                if path not in local.files and not cellkeys.is_kept_key(path, local.files):
                    fs.remove(path)
        for path, data in local.files.items():
            fs.write_atomic(path, data)
        for path, data in cellkeys.keys_for_host(local.topology, keys, host).items():
            fs.write_atomic(path, data, mode=0o600)
        if theirs != local.head:
            ship(fs, pack_after(theirs), local.head)
        fs.write_atomic(STAMP, stamp_text(local, author, now_iso()))

    _, errors = _each(home, targets, session, one)
    return Outcome(errors=errors)


def dry_run(home: Home, targets: Sequence[Host], session: SSHSession, *,
            clean: bool = False) -> Outcome:
    """§4.7 `deploy --dry-run`: what a deploy would change on each host; writes nothing."""
    local = LocalState.load(home)

    def one(fs: HostFiles, host: str) -> dict[str, Any]:
        theirs = _their_head(fs, host, local)
        stamp = _read_stamp_or_none(fs)
        changes = []
        for path, data in local.files.items():
            have = fs.sha256(path)
            if have is None:
                changes.append(f"create {path}")
            elif have != hashlib.sha256(data).hexdigest():
                changes.append(f"modify {path}")
        if clean:
            changes += [f"delete {p}" for p in _cell_files(fs)
                        if p not in local.files and not cellkeys.is_kept_key(p, local.files)]
        if theirs != local.head:
            changes.append(f"update {REPO}")
        return {"hostname": host, "deployed": stamp.get("rev") if stamp else None,
                "changes": changes}

    docs, errors = _each(home, targets, session, one)
    return Outcome(list(docs.values()), errors)


def _read_stamp_or_none(fs: HostFiles) -> dict[str, Any] | None:
    try:
        return _read_stamp(fs)
    except StampError:
        return None  # a damaged stamp only means "not deployed" for the preview


# ---------------------------------------------------------------- status deploy


def status(home: Home, targets: Sequence[Host], session: SSHSession) -> list[dict[str, Any]]:
    """§4.7 `status deploy`: one document per target, unreachable hosts included (`error`)."""
    local = LocalState.load(home)

    def one(fs: HostFiles, host: str) -> dict[str, Any]:
        # A diverged log is not "unreachable or unreadable": the stamp still says what the
        # host runs, so status follows it and the divergence goes into `reason`.
        diverged = None
        try:
            _their_head(fs, host, local)
        except DivergedLog as e:
            diverged = str(e)
        stamp = _read_stamp(fs)
        if stamp is None:
            return {"hostname": host, "status": "none",
                    **({"reason": diverged} if diverged else {})}
        files: dict[str, Any] = stamp["files"]
        commit = stamp["commit"].encode()
        # parse_stamp let through only paths deploy writes: ~/etc/paxos_memcache.conf and
        # ~/etc/cell/<cell>.conf, read as bounded regular files
        if any(fs.sha256(p) != h.removeprefix("sha256:") for p, h in files.items()):
            state = "modified"
        elif commit not in local.history:
            state = "unknown"
        elif commit != local.head:
            state = "outdated"
        else:
            state = "current"
        doc = {"hostname": host, "status": state, "rev": stamp.get("rev")}
        if state == "outdated":
            # not in the spec's key list: how far behind HEAD, which an operator asks first
            doc["behind"] = len(local.history) - 1 - local.history.index(commit)
        doc.update(commit=stamp["commit"], author=stamp.get("author"), time=stamp.get("time"))
        stale = [p for p in _cell_files(fs)
                 if p not in files and not cellkeys.is_kept_key(p, files)]
        if stale:
            doc["stale"] = stale
        if diverged:
            doc["reason"] = diverged
        return doc

    docs, errors = _each(home, targets, session, one)
    out = []
    for h in targets:
        if h.hostname in docs:
            out.append(docs[h.hostname])
        else:
            out.append({"hostname": h.hostname, "status": "error",
                        "reason": errors[h.hostname]})
    return out
