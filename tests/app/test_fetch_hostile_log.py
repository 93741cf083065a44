"""`fetch` from a host whose event log was crafted (issue 7, item 1): a well-formed commit
registering the cell `../../../x` must be refused by verification, before anything is adopted
or rendered, so no file is ever written outside $PAXOS_HOME."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from paxoslog.app.fetch import fetch
from paxoslog.errors import RemoteError
from paxoslog.remote.sshpool import SSHSession
from paxoslog.store.gitlog import EventLog
from paxoslog.store.home import Home
from tests.conftest import etc_snapshot, git_head
from tests.crafted import traversal
from tests.deploy_helpers import Env


@pytest.fixture
def env(cluster, tmp_path) -> Env:
    return Env(cluster, tmp_path, cluster.hosts[-3:])


def _fetch(env: Env, home: Path, name: str):
    with SSHSession(env.opts) as session:
        return fetch(Home(str(home)), session, name)


def _stray(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.rglob("x.conf"))


def test_fetch_refuses_a_log_whose_event_names_a_path(env, tmp_path) -> None:
    a = env.hosts[0]
    assert env.deploy(a.addr).errors == {}
    behind = tmp_path / "behind"
    shutil.copytree(env.px.home, behind, symlinks=True)  # rev 4, as deployed
    # The host's own log gets the crafted commit (we are root: its home is ours to write).
    bad = traversal(EventLog(str(a.home / "var" / "paxoslog.git")))
    # Two layers refuse it: the sanitized copy (a tree entry named `../../../x.conf`) and,
    # behind it, the event schema (`illegal css name`, checked on its own in test_hostile_log).
    expected = (f"fetched event log failed verification: rev 5 (commit {bad[:12]}): "
                "css_registered: illegal css name '../../../x'",
                "fetched event log failed verification: tree ")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(RemoteError) as err:
        _fetch(env, fresh, f"paxos@{a.addr}")
    assert str(err.value) == expected[0] or (str(err.value).startswith(expected[1])
                                             and "../../../x.conf" in str(err.value))
    assert git_head(fresh) is None and not (fresh / "etc").exists()
    # a local log that the crafted one would fast-forward is left exactly as it was
    head, etc = git_head(behind), etc_snapshot(behind)
    with pytest.raises(RemoteError) as err:
        _fetch(env, behind, a.addr)
    assert str(err.value) == expected[0] or (str(err.value).startswith(expected[1])
                                             and "../../../x.conf" in str(err.value))
    assert (git_head(behind), etc_snapshot(behind)) == (head, etc)
    assert _stray(tmp_path) == [] and _stray(a.home_root) == []
