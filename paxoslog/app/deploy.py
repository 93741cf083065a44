"""`deploy`, `deploy --dry-run` and `status deploy` (§3.9, §3.10, §4.7, §6.7), as functions the
CLI calls: they take the selected hosts and an `SSHSession` and return report documents.

Each host goes through the same steps whether it is reached over SSH or is this machine (rule L,
then through `LocalFS` on $PAXOS_HOME); hosts fail independently and the others continue.
"""

from __future__ import annotations

import hashlib
import io
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
from paxoslog.remote.hostreport import HostReporter
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
    """Per-host report documents (hosts that worked) and errors, both in target order;
    `statuses` has every target's final status (`ok`, `changed`, `failed`, `unreachable`)."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    def error_message(self) -> str:
        """One line per failed host, `<host>: <reason>`."""
        return "\n".join(f"{host}: {reason}" for host, reason in self.errors.items())

    def results(self) -> list[dict[str, Any]]:
        """Every target in order: `{hostname, status[, reason]}` (the `--json deploy` report)."""
        return [{"hostname": h, "status": s, **({"reason": self.errors[h]}
                                                if h in self.errors else {})}
                for h, s in self.statuses.items()]


def _each(home: Home, targets: Sequence[Host], session: SSHSession,
          fn: Callable[[HostFiles, str], T], reporter: HostReporter | None = None,
          label: Callable[[T], str] | None = None
          ) -> tuple[dict[str, T], dict[str, str], dict[str, str]]:
    """`fn` on every target (SSH, or the local file system by rule L); (results, errors,
    statuses), each in target order. Hosts are reported to `reporter` as they finish."""
    reporter = reporter or HostReporter(_NULL, _NULL, lines=False, progress=False)
    if not reporter.total:
        reporter.start(len(targets))
    local = [h for h in targets if is_local(h)]
    remote = [h for h in targets if not is_local(h)]
    many = session.run_many([spec_of(h) for h in remote],
                            lambda conn: fn(conn, conn.host), reporter=reporter, label=label)
    results, errors = dict(many.results), dict(many.errors)
    for h in local:
        try:
            value = fn(LocalFS(home.root, h.hostname), h.hostname)
        except HOST_ERRORS as e:
            errors[h.hostname] = reason_of(e)
            reporter.done(h.hostname, "failed", errors[h.hostname])
        else:
            results[h.hostname] = value
            reporter.done(h.hostname, label(value) if label else "ok")
    order = [h.hostname for h in targets]
    return ({n: results[n] for n in order if n in results},
            {n: errors[n] for n in order if n in errors},
            {n: reporter.statuses[n] for n in order if n in reporter.statuses})


class _Null(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


_NULL = _Null()


def _their_head(fs: HostFiles, host: str, local: LocalState) -> bytes | None:
    try:
        theirs = remote_head(fs)
        check_ancestry(local.history, theirs)
    except Diverged:
        raise DivergedLog(f"event log on {host} has diverged from the local one; if the host "
                          f"is ahead, `paxos fetch {host}` brings its events here, and "
                          f"`paxos fetch --force {host}` adopts its log in place of the "
                          "local one") from None
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
           author: str | None = None, reporter: HostReporter | None = None) -> Outcome:
    """§6.7 steps 1-7 on every target; per-host errors and statuses (`changed` when a file or
    the log changed, `ok` when only the stamp was rewritten)."""
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

    def one(fs: HostFiles, host: str) -> bool:
        theirs = _their_head(fs, host, local)
        fs.mkdir_p(CELL_DIR)
        fs.mkdir_p("var")
        changed = theirs != local.head
        if clean:
            for path in _cell_files(fs):
                if path not in local.files and not cellkeys.is_kept_key(path, local.files):
                    fs.remove(path)
                    changed = True
        for path, data in local.files.items():
            changed = changed or fs.sha256(path) != hashlib.sha256(data).hexdigest()
            fs.write_atomic(path, data)
        for path, data in cellkeys.keys_for_host(local.topology, keys, host).items():
            fs.write_atomic(path, data, mode=0o600)
        if theirs != local.head:
            ship(fs, pack_after(theirs), local.head)
        fs.write_atomic(STAMP, stamp_text(local, author, now_iso()))
        return changed

    _, errors, statuses = _each(home, targets, session, one, reporter,
                                lambda changed: "changed" if changed else "ok")
    return Outcome(errors=errors, statuses=statuses)


def dry_run(home: Home, targets: Sequence[Host], session: SSHSession, *,
            clean: bool = False, reporter: HostReporter | None = None,
            diff: bool = False) -> Outcome:
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
        changes += _key_changes(home, local, fs, host)
        if clean:
            changes += [f"delete {p}" for p in _cell_files(fs)
                        if p not in local.files and not cellkeys.is_kept_key(p, local.files)]
        if theirs != local.head:
            changes.append(f"update {REPO}")
        doc = {"hostname": host, "deployed": stamp.get("rev") if stamp else None,
               "changes": changes}
        if diff:
            doc["diff"] = _diffs(fs, host, local, changes)
        return doc

    docs, errors, statuses = _each(home, targets, session, one, reporter,
                                   lambda doc: "changed" if doc["changes"] else "ok")
    return Outcome(list(docs.values()), errors, statuses)


def _key_changes(home: Home, local: LocalState, fs: HostFiles, host: str) -> list[str]:
    """The secrets a deploy would write on a member host: `create` where the host has none
    (the cell's first deploy makes the admin's own), `modify` where it holds another one.
    Read only: the preview makes no secret."""
    changes = []
    for cell in cellkeys.member_cells(local.topology, host):
        path = cellkeys.key_path(cell)
        have = fs.sha256(path)
        if have is None:
            changes.append(f"create {path}")
            continue
        try:
            mine = cellkeys.read_key(home, cell)
        except cellkeys.BadKey:
            mine = None  # the deploy itself reports a damaged local secret
        if mine is not None and have != hashlib.sha256(mine).hexdigest():
            changes.append(f"modify {path}")
    return changes


def _diffs(fs: HostFiles, host: str, local: LocalState, changes: list[str]) -> str:
    """The unified diffs of the files `changes` creates, modifies or deletes."""
    from paxoslog.app.filediff import host_file, unified

    out = []
    for change in changes:
        action, path = change.split(" ", 1)
        if cellkeys.key_cell(path) is not None and path not in local.files:
            continue  # a secret is never shown
        if action in ("create", "modify", "delete"):
            before = None if action == "create" else host_file(fs, path)
            out.append(unified(host, path, before, local.files.get(path)))
    return "".join(out)


def _read_stamp_or_none(fs: HostFiles) -> dict[str, Any] | None:
    try:
        return _read_stamp(fs)
    except StampError:
        return None  # a damaged stamp only means "not deployed" for the preview


# ---------------------------------------------------------------- status deploy


def _agent_keys(fs: HostFiles, host: str) -> dict[str, Any]:
    """An agent that is not this admin's build, on a host reached over SSH (a local host runs
    the admin's own); its failure to answer is not this report's business."""
    if isinstance(fs, LocalFS):
        return {}
    from paxoslog.app.agentversion import version_keys

    try:
        return version_keys(fs, host)
    except HOST_ERRORS:
        return {}


def status(home: Home, targets: Sequence[Host], session: SSHSession,
           reporter: HostReporter | None = None) -> list[dict[str, Any]]:
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
        agent = _agent_keys(fs, host)
        if stamp is None:
            return {"hostname": host, "status": "none",
                    **({"reason": diverged} if diverged else {}), **agent}
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
        doc.update(agent)
        return doc

    docs, errors, _ = _each(home, targets, session, one, reporter, lambda doc: doc["status"])
    out = []
    for h in targets:
        if h.hostname in docs:
            out.append(docs[h.hostname])
        else:
            out.append({"hostname": h.hostname, "status": "error",
                        "reason": errors[h.hostname]})
    return out


# ---------------------------------------------------------------- extra files (replace)


def put_files(home: Home, host: Host, session: SSHSession,
              files: dict[str, tuple[bytes, int]], remove: Sequence[str] = ()) -> str | None:
    """Write `files` (path -> (data, mode)) atomically on one host and remove `remove`;
    the host's error reason, or None. For replace's provisional join file and the cell key,
    which HEAD does not render."""
    def one(fs: HostFiles, _host: str) -> None:
        for path, (data, mode) in files.items():
            fs.mkdir_p(path.rsplit("/", 1)[0])
            fs.write_atomic(path, data, mode)
        for path in remove:
            fs.remove(path)

    _, errors, _ = _each(home, [host], session, one)
    return errors.get(host.hostname)
