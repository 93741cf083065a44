"""The cell secret (nodes.md §2.3): made on the first deploy, shipped to member hosts only,
never in the event log, kept by `--clean` and `status deploy`, restored by `fetch`."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from paxoslog.app.cellkeys import KEY_BYTES, BadKey, ensure_keys, read_key
from paxoslog.app.fetch import fetch
from paxoslog.remote.sshpool import SSHSession
from paxoslog.store.home import Home, head_state
from tests.conftest import Paxos
from tests.deploy_helpers import Env


@pytest.fixture
def env(cluster, tmp_path) -> Env:
    return Env(cluster, tmp_path, cluster.hosts[-4:])  # three members and one other host


def key_of(home: Path) -> Path:
    return home / "etc" / "cell" / "css0.key"


def do_fetch(env: Env, home: Path, name: str):
    with SSHSession(env.opts) as session:
        return fetch(Home(str(home)), session, name)


def test_first_deploy_makes_the_secret_and_ships_it_to_members_only(env):
    assert not key_of(env.px.home).exists()  # registering makes no secret
    assert env.deploy().errors == {}
    local = key_of(env.px.home).read_bytes()
    assert len(local) == KEY_BYTES
    assert stat.S_IMODE(key_of(env.px.home).stat().st_mode) == 0o600
    for h in env.hosts[:3]:
        assert key_of(h.home).read_bytes() == local
        assert stat.S_IMODE(key_of(h.home).stat().st_mode) == 0o600
        assert not [p for p in (h.home / "etc").rglob(".*")]  # no temporary left
    assert not key_of(env.hosts[3].home).exists()
    # never in the event log, in no commit
    repo = env.px.home / "var" / "paxoslog.git"
    revs = subprocess.run(["git", "--git-dir", str(repo), "rev-list", "--all"], check=True,
                          capture_output=True, text=True).stdout.split()
    for rev in revs:
        names = subprocess.run(["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only",
                                rev], check=True, capture_output=True, text=True).stdout
        assert ".key" not in names
    # the stamp does not list it, and status deploy does not call it stale
    for h in env.hosts:
        assert b".key" not in (h.home / "etc" / "DEPLOYED").read_bytes()
    assert [(d["status"], "stale" in d) for d in env.status()] == [("current", False)] * 4
    # nor does `verify` see a local etc/ that differs from HEAD
    out = env.px.ok("verify")
    assert "status: ok" in out and "warnings" not in out
    # a second deploy keeps the same secret
    assert env.deploy().errors == {}
    assert key_of(env.px.home).read_bytes() == local == key_of(env.hosts[0].home).read_bytes()


def test_clean_keeps_the_secret_of_a_rendered_cell(env):
    assert env.deploy().errors == {}
    member = env.hosts[0]
    old = member.home / "etc" / "cell" / "gone.key"
    old.write_bytes(os.urandom(KEY_BYTES))
    assert env.status(member.addr)[0]["stale"] == ["etc/cell/gone.key"]
    assert env.dry_run(member.addr, clean=True).docs[0]["changes"] == ["delete etc/cell/gone.key"]
    assert env.deploy(clean=True).errors == {}
    assert key_of(member.home).exists() and not old.exists()


def test_a_symlink_at_the_hosts_key_is_never_written_through(env, tmp_path):
    member = env.hosts[1]
    assert env.deploy().errors == {}
    target = member.home / "elsewhere"
    target.write_bytes(b"untouched")
    key_of(member.home).unlink()
    key_of(member.home).symlink_to(target)
    out = env.deploy()
    assert list(out.errors) == [member.addr]
    assert target.read_bytes() == b"untouched"
    assert key_of(member.home).is_symlink()


def test_fetch_restores_a_missing_secret_from_a_member_host(env, tmp_path):
    assert env.deploy().errors == {}
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    # from a host that is not a member: the log, but no secret
    assert do_fetch(env, fresh, f"paxos@{env.hosts[3].addr}").warning is None
    assert not key_of(fresh).exists()
    result = do_fetch(env, fresh, env.hosts[0].addr)  # registered now: its own settings
    assert result.warning is None
    assert key_of(fresh).read_bytes() == key_of(env.px.home).read_bytes()
    assert stat.S_IMODE(key_of(fresh).stat().st_mode) == 0o600
    # a local secret is never replaced by a host's
    key_of(env.hosts[1].home).write_bytes(os.urandom(KEY_BYTES))
    before = key_of(fresh).read_bytes()
    assert do_fetch(env, fresh, env.hosts[1].addr).warning is None
    assert key_of(fresh).read_bytes() == before


@pytest.mark.parametrize("bad", [b"short", os.urandom(KEY_BYTES + 1), "link", "dir"])
def test_fetch_refuses_a_bad_secret_on_the_host(env, tmp_path, bad):
    assert env.deploy().errors == {}
    member = env.hosts[2]
    path = key_of(member.home)
    path.unlink()
    if bad == "link":
        (member.home / "real.key").write_bytes(os.urandom(KEY_BYTES))
        path.symlink_to(member.home / "real.key")
    elif bad == "dir":
        path.mkdir()
    else:
        path.write_bytes(bad)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = do_fetch(env, fresh, f"paxos@{member.addr}")
    assert result.action == "adopted"
    assert result.warning and "css0.key" in result.warning and "not restored" in result.warning
    assert not key_of(fresh).exists()


def test_publish_keeps_secrets_and_local_key_is_validated(env, tmp_path):
    assert env.deploy().errors == {}
    px: Paxos = env.px
    p = px("unregister", "css", "--name", "css0")
    assert p.returncode == 0, p.stderr
    assert "counted as not running" in p.stderr
    assert not (px.home / "etc" / "cell" / "css0.conf").exists()
    assert len(key_of(px.home).read_bytes()) == KEY_BYTES  # kept: it may be registered again
    px.ok("undo")
    assert (px.home / "etc" / "cell" / "css0.conf").exists()
    # a damaged local secret is refused, not replaced
    key_of(px.home).write_bytes(b"x" * 5)
    home = Home(str(px.home))
    with pytest.raises(BadKey):
        read_key(home, "css0")
    with pytest.raises(BadKey):
        ensure_keys(home, head_state(home)[2])


def test_dry_run_lists_the_secret_a_deploy_would_create(env):
    before = env.dry_run().docs
    # the first deploy makes the secret: on member hosts only, and the preview makes none
    for doc, h in zip(before, env.hosts, strict=True):
        has = "create etc/cell/css0.key" in doc["changes"]
        assert has == (h in env.hosts[:3]), (h.addr, doc)
    assert not key_of(env.px.home).exists()
    assert env.deploy().errors == {}
    assert [d["changes"] for d in env.dry_run().docs] == [[]] * 4
    # a member host that lost it, or holds another one
    key_of(env.hosts[0].home).unlink()
    key_of(env.hosts[1].home).write_bytes(os.urandom(KEY_BYTES))
    docs = env.dry_run().docs
    assert [d["changes"] for d in docs] == [["create etc/cell/css0.key"],
                                            ["modify etc/cell/css0.key"], [], []]
    # --diff never shows a secret
    with SSHSession(env.opts) as session:
        from paxoslog.app import deploy as dep

        out = dep.dry_run(env.home, env.targets(), session, diff=True)
    assert all(d["diff"] == "" for d in out.docs), out.docs
