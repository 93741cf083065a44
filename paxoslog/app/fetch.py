"""`fetch [--use-ssh-config] hostname` (§3.10, §6.8): restore the event log from a host.

Download the host's `~/var/paxoslog.git` into a temporary folder, verify it as `verify` does,
then merge by fast-forward only (adopt, nothing, fast-forward, keep ours, or diverged), and
render $PAXOS_HOME/etc from the resulting HEAD.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass

from dulwich.objects import ShaFile

from paxoslog import fsutil
from paxoslog.core.model import Topology
from paxoslog.errors import LogError, RemoteError, UsageError
from paxoslog.remote.hostfs import LocalFS
from paxoslog.remote.locality import is_local
from paxoslog.remote.remoterepo import REPO, Unreadable, objects_of_commit, remote_head
from paxoslog.remote.ssh import HostSpec, TooLarge, check_port
from paxoslog.remote.sshpool import SSHSession
from paxoslog.store.gitlog import EventLog
from paxoslog.store.history import verify
from paxoslog.store.home import Home, head_state, publish
from paxoslog.store.safepack import sanitize

# What a fetch may cost, whatever the host serves: bytes downloaded (compressed, as stored)
# and bytes the reachable objects inflate to. Each object is also capped (fastread.MAX_OBJECT).
MAX_DOWNLOAD = 1 << 30
MAX_INFLATED = 4 << 30
_TARGET = re.compile(r"(?:(?P<user>[^@:/\s]+)@)?(?P<host>[^@:/\s]+)(?::(?P<port>[^:]*))?")


@dataclass
class FetchResult:
    """`action`: nothing | adopted | fast-forward | local-ahead | local (a local host: no-op)."""

    action: str
    warning: str | None = None


def target_spec(topology: Topology, name: str, use_ssh_config: bool) -> HostSpec | None:
    """§6.8 step 1: a registered host's own settings (None when it is this machine), else
    `[user@]host[:port]`."""
    for h in topology.hosts:
        if h.hostname == name:
            flag = h.use_ssh_config or use_ssh_config
            if not flag and is_local(h):
                return None
            return HostSpec(h.hostname, h.user, h.port, flag)
    m = _TARGET.fullmatch(name)
    if m is None or not (m["host"] + (m["user"] or "")).isprintable():
        raise RemoteError("illegal host name")
    port = None
    if m["port"] is not None:
        try:
            port = check_port(m["port"])
        except ValueError as e:
            raise UsageError(f"argument hostname: {e}") from None
    return HostSpec(m["host"], m["user"], port, use_ssh_config)


def _reachable(log: EventLog, history: list[bytes]) -> list[ShaFile]:
    out: dict[bytes, ShaFile] = {}
    for sha in history:
        objects_of_commit(log, sha, out)
    return list(out.values())


def _adopt(local: EventLog, fetched: EventLog, pack: str, old: bytes | None,
           new: bytes) -> None:
    """Copy the objects, make them durable, then compare-and-swap the ref (§5.1). Without
    a common history the sanitized pack is copied as it is: no object is read again."""
    local.create()
    history = fetched.history(new)
    if old in history:
        store = local.repo.object_store
        missing = [o for o in _reachable(fetched, history[history.index(old) + 1:])
                   if o.id not in store]
        if missing:
            store.add_objects([(o, None) for o in missing])
    else:
        pack_dir = os.path.join(local.path, "objects", "pack")
        os.makedirs(pack_dir, exist_ok=True)
        for ext in (".pack", ".idx"):  # the index last: a pack is found through it
            target = os.path.join(pack_dir, os.path.basename(pack) + ext)
            tmp = f"{target}.{os.getpid()}.tmp"
            shutil.copyfile(pack + ext, tmp)
            os.chmod(tmp, 0o444)
            os.rename(tmp, target)
    if fsutil.fsync_enabled():
        fsutil.syncfs(local.path)
    if not local.move_branch(old, new):
        raise RemoteError("the event log is being changed concurrently; try again")


def _download(conn, host: str, tmp: str) -> tuple[EventLog, str, bytes]:
    """§6.8 step 2: the host's log, bounded, its HEAD checked, sanitized (safepack)."""
    raw = os.path.join(tmp, "raw")
    if not conn.exists(f"{REPO}/HEAD"):
        raise RemoteError(f"no event log on {host}")
    try:
        conn.download_tree(REPO, os.path.join(raw, REPO), first=("HEAD", "refs", "packed-refs"),
                           max_total=MAX_DOWNLOAD)
    except TooLarge:
        raise RemoteError(f"event log on {host} is larger than {MAX_DOWNLOAD} bytes; "
                          "refusing to fetch it") from None
    try:
        theirs = remote_head(LocalFS(raw, host))
    except Unreadable as e:
        raise RemoteError(f"event log on {host} is unreadable: {e}") from None
    if theirs is None:
        raise RemoteError(f"no event log on {host}")
    clean = os.path.join(tmp, "clean")
    try:
        pack = sanitize(os.path.join(raw, REPO, "objects"), theirs, clean,
                        max_total=MAX_INFLATED)
    except LogError as e:
        raise RemoteError(f"fetched event log failed verification: {e.message}") from None
    shutil.rmtree(raw)
    return EventLog(clean), pack, theirs


BACKUP_REF = b"refs/paxos/pre-fetch"


def fetch(home: Home, session: SSHSession, name: str, *, use_ssh_config: bool = False,
          force: bool = False) -> FetchResult:
    """§6.8; with `force`, a diverged local log is replaced by the host's, its old head kept
    under refs/paxos/pre-fetch so nothing is lost."""
    local_head, _, topology = head_state(home)
    spec = target_spec(topology, name, use_ssh_config)
    if spec is None:
        return FetchResult("local")
    host = spec.hostname
    conn = session.connect(spec)
    with tempfile.TemporaryDirectory(prefix="paxos-fetch-") as tmp:
        fetched, pack, theirs = _download(conn, host, tmp)
        checked = verify(fetched)
        if checked.problems:
            raise RemoteError(f"fetched event log failed verification: {checked.problems[0]}")
        log = EventLog(home.repo)
        if local_head == theirs:
            result = FetchResult("nothing")
        elif local_head is None:
            _adopt(log, fetched, pack, None, theirs)
            result = FetchResult("adopted")
        elif local_head in fetched.history(theirs):
            _adopt(log, fetched, pack, local_head, theirs)
            result = FetchResult("fast-forward")
        elif log.exists() and theirs in log.repo.object_store and theirs in log.history():
            result = FetchResult("local-ahead", f"local event log is ahead of {host}")
        elif force:
            log.repo.refs[BACKUP_REF] = local_head
            _adopt(log, fetched, pack, local_head, theirs)
            result = FetchResult("forced", f"local event log replaced by the one of {host}; "
                                 f"the previous head is kept as {BACKUP_REF.decode()}")
        else:
            raise RemoteError(f"event log of {host} has diverged from the local one")
        publish(home)  # §6.8 step 4: etc/ equal to the new HEAD, stale cell files removed
        # a member host holds its cells' secrets: restore the ones missing here (nodes.md §2.3)
        from paxoslog.app.cellkeys import restore_keys

        warnings = restore_keys(home, head_state(home)[2], conn, host)
    if warnings:
        extra = "; ".join(warnings)
        result.warning = f"{result.warning}; {extra}" if result.warning else extra
    return result
