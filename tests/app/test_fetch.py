"""paxoslog.app.fetch against real sshd hosts: the event log restored from a host (§6.8)."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path

import pytest

from paxoslog.app.fetch import fetch
from paxoslog.errors import RemoteError
from paxoslog.remote.ssh import ConnectFailed
from paxoslog.remote.sshpool import SSHSession
from paxoslog.store.gitlog import EventLog
from paxoslog.store.home import Home
from tests.conftest import Paxos, etc_snapshot, git_head
from tests.deploy_helpers import Env, make_home, wipe


@pytest.fixture
def env(cluster, tmp_path) -> Env:
    return Env(cluster, tmp_path, cluster.hosts[14:17])


def do_fetch(env: Env, home: Path, name: str, **kw):
    with SSHSession(env.opts) as session:
        return fetch(Home(str(home)), session, name, **kw)


def host_etc(host) -> dict[str, bytes]:
    return {f"etc/{p.relative_to(host.home / 'etc')}": p.read_bytes()
            for p in (host.home / "etc").rglob("*.conf")}


def test_fetch_into_an_empty_home_adopts_the_log_and_renders_etc(env, tmp_path):
    a = env.hosts[0]
    assert env.deploy(a.addr).errors == {}
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = do_fetch(env, fresh, f"paxos@{a.addr}")
    assert (result.action, result.warning) == ("adopted", None)
    assert git_head(fresh) == git_head(env.px.home)
    # the files, and the cell's secret restored from this member host (nodes.md §2.3)
    assert etc_snapshot(fresh) == {**host_etc(a), "etc/cell/css0.key":
                                   (a.home / "etc/cell/css0.key").read_bytes()}
    assert etc_snapshot(fresh) == etc_snapshot(env.px.home)
    px = Paxos(fresh)
    assert px.log_count() == 4
    assert px.ok("verify").count("status: ok") == 1
    assert do_fetch(env, fresh, f"paxos@{a.addr}:22").action == "nothing"


def test_fetch_fast_forwards_and_keeps_a_local_log_that_is_ahead(env, tmp_path):
    a = env.hosts[0]
    behind = tmp_path / "behind"
    shutil.copytree(env.px.home, behind, symlinks=True)  # rev 4
    env.px.ok("register", "memcache", "--css", "css0")
    assert env.deploy(a.addr).errors == {}
    assert do_fetch(env, behind, a.addr).action == "fast-forward"  # registered: own settings
    assert git_head(behind) == git_head(env.px.home)
    assert etc_snapshot(behind) == etc_snapshot(env.px.home)
    ahead = Paxos(behind)
    ahead.ok("register", "memcache", "--css", "css0")
    head = git_head(behind)
    result = do_fetch(env, behind, a.addr)
    assert (result.action, result.warning) == ("local-ahead",
                                               f"local event log is ahead of {a.addr}")
    assert git_head(behind) == head


def test_fetch_refuses_a_diverged_log(env, tmp_path):
    a, b = env.hosts[:2]
    assert env.deploy(a.addr).errors == {}
    other = make_home(tmp_path / "other", [b, a, env.hosts[2]])
    head, etc = git_head(other.home), etc_snapshot(other.home)
    with pytest.raises(RemoteError, match=f"^event log of {a.addr} has diverged from the local one$"):
        do_fetch(env, other.home, a.addr)
    assert (git_head(other.home), etc_snapshot(other.home)) == (head, etc)


def test_fetch_reports_a_missing_or_corrupt_log(env, tmp_path):
    a = env.hosts[1]
    wipe(a)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(RemoteError, match=f"^no event log on {a.addr}$"):
        do_fetch(env, fresh, f"paxos@{a.addr}")
    # a commit whose event claims the wrong revision number
    log = EventLog(str(env.px.home / "var/paxoslog.git"))
    head = log.head()
    files = log.files(log.commit(head))
    bad = log.write_commit(head, files, "corrupt", "x <x@example.invalid>")
    assert log.move_branch(head, bad)
    assert env.deploy(a.addr).errors == {}
    with pytest.raises(RemoteError) as err:
        do_fetch(env, fresh, f"paxos@{a.addr}")
    assert str(err.value).startswith("fetched event log failed verification: rev 5 ")
    assert git_head(fresh) is None


def test_fetch_from_a_local_host_is_a_no_op_and_a_dead_host_fails(env, cluster, tmp_path):
    env.px.ok("register", "host", "--user", getpass.getuser(), "127.0.0.1")
    assert do_fetch(env, env.px.home, "127.0.0.1").action == "local"
    c = env.hosts[2]
    cluster.kill(c.addr)
    with pytest.raises(ConnectFailed, match="^cannot connect: Connection refused$"):
        do_fetch(env, env.px.home, c.addr)
