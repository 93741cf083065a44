"""`fetch [--use-ssh-config] hostname` (§3.10, §6.8): restore the event log from a host.

Download the host's `~/var/paxoslog.git` into a temporary folder, verify it as `verify` does,
then merge by fast-forward only (adopt, nothing, fast-forward, keep ours, or diverged), and
render $PAXOS_HOME/etc from the resulting HEAD.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass

from dulwich.objects import ShaFile

from paxoslog import fsutil
from paxoslog.errors import RemoteError
from paxoslog.gitlog import EventLog
from paxoslog.history import verify
from paxoslog.home import Home, head_state, write_cache, write_etc
from paxoslog.locality import is_local
from paxoslog.model import Topology
from paxoslog.remoterepo import REPO, objects_of_commit
from paxoslog.render import render
from paxoslog.ssh import HostSpec
from paxoslog.sshpool import SSHSession

_TARGET = re.compile(r"^(?:(?P<user>[^@:/\s]+)@)?(?P<host>[^@:/\s]+)(?::(?P<port>\d+))?$")


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
    m = _TARGET.match(name)
    if m is None:
        raise RemoteError("illegal host name")
    port = int(m["port"]) if m["port"] else None
    return HostSpec(m["host"], m["user"], port, use_ssh_config)


def _reachable(log: EventLog, head: bytes) -> list[ShaFile]:
    out: dict[bytes, ShaFile] = {}
    for sha in log.history(head):
        objects_of_commit(log, sha, out)
    return list(out.values())


def _adopt(local: EventLog, fetched: EventLog, old: bytes | None, new: bytes) -> None:
    """Copy the objects, make them durable, then compare-and-swap the ref (§5.1)."""
    local.create()
    store = local.repo.object_store
    missing = [o for o in _reachable(fetched, new) if o.id not in store]
    if missing:
        store.add_objects([(o, None) for o in missing])
    if fsutil.fsync_enabled():
        fsutil.syncfs(local.path)
    if not local.move_branch(old, new):
        raise RemoteError("the event log is being changed concurrently; try again")


def _render(home: Home) -> None:
    """§6.8 step 4 / §5.2: etc equal to HEAD, under the lock, stale cell files removed."""
    with fsutil.locked(home.lock):
        sha, rev, topology = head_state(home)
        if sha is not None:
            write_cache(home, sha, rev, topology)
        write_etc(home, render(topology))


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
        if not conn.exists(f"{REPO}/HEAD"):
            raise RemoteError(f"no event log on {host}")
        conn.download_tree(REPO, tmp, first=("HEAD", "refs", "packed-refs"))
        fetched = EventLog(tmp)
        theirs = fetched.head()
        if theirs is None:
            raise RemoteError(f"no event log on {host}")
        checked = verify(fetched)
        if checked.problems:
            raise RemoteError(f"fetched event log failed verification: {checked.problems[0]}")
        log = EventLog(home.repo)
        if local_head == theirs:
            result = FetchResult("nothing")
        elif local_head is None:
            _adopt(log, fetched, None, theirs)
            result = FetchResult("adopted")
        elif local_head in fetched.history(theirs):
            _adopt(log, fetched, local_head, theirs)
            result = FetchResult("fast-forward")
        elif log.exists() and theirs in log.repo.object_store and theirs in log.history():
            result = FetchResult("local-ahead", f"local event log is ahead of {host}")
        elif force:
            log.repo.refs[BACKUP_REF] = local_head
            _adopt(log, fetched, local_head, theirs)
            result = FetchResult("forced", f"local event log replaced by the one of {host}; "
                                 f"the previous head is kept as {BACKUP_REF.decode()}")
        else:
            raise RemoteError(f"event log of {host} has diverged from the local one")
    _render(home)
    return result
