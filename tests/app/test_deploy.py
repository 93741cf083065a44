"""paxoslog.app.deploy (deploy, --dry-run, status deploy) against real sshd hosts."""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from paxoslog.app import deploy as dep
from paxoslog.errors import NotFound
from paxoslog.remote.sshpool import SSHSession
from paxoslog.store.home import Home, head_state
from tests.conftest import etc_snapshot, git_head
from tests.deploy_helpers import AUTHOR, Env, make_home, wipe


@pytest.fixture
def env(cluster, tmp_path) -> Env:
    return Env(cluster, tmp_path, cluster.hosts[11:14])


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def test_deploy_ships_files_event_log_and_stamp(env):
    assert env.status() == [{"hostname": h.addr, "status": "none"} for h in env.hosts]
    out = env.deploy()
    assert out.errors == {}
    head = git_head(env.px.home)
    local_etc = {str(p.relative_to(env.px.home)): p.read_bytes()
                 for p in (env.px.home / "etc").rglob("*.conf")}
    assert set(local_etc) == {"etc/paxos_memcache.conf", "etc/cell/css0.conf"}
    for h in env.hosts:
        for rel, data in local_etc.items():
            assert (h.home / rel).read_bytes() == data
        repo = h.home / "var" / "paxoslog.git"
        assert git(repo, "rev-parse", "refs/heads/main").strip() == head
        git(repo, "fsck", "--strict", "--no-dangling")
        assert git(repo, "log", "--format=%s") == git(env.px.home / "var/paxoslog.git", "log",
                                                      "--format=%s")
        stamp = yaml.safe_load((h.home / "etc/DEPLOYED").read_text())
        assert list(stamp) == ["commit", "rev", "author", "time", "files"]
        assert (stamp["commit"], stamp["rev"], stamp["author"]) == (head, 4, AUTHOR)
        assert set(stamp["files"]) == set(local_etc)
        assert not [p for p in (h.home / "etc").rglob(".*")]  # no temporary left
    docs = env.status()
    assert [(d["hostname"], d["status"], d["rev"], d["commit"]) for d in docs] == [
        (h.addr, "current", 4, head) for h in env.hosts]
    # deploying again changes nothing but the stamp
    assert env.dry_run().docs == [{"hostname": h.addr, "deployed": 4, "changes": []}
                                  for h in env.hosts]


def test_new_commits_make_hosts_outdated_until_redeployed(env):
    assert env.deploy().errors == {}
    env.px.ok("register", "memcache", "--css", "css0")
    assert {d["status"] for d in env.status()} == {"outdated"}
    preview = env.dry_run(env.hosts[0].addr)
    assert preview.docs == [{"hostname": env.hosts[0].addr, "deployed": 4,
                             "changes": ["modify etc/paxos_memcache.conf",
                                         "update var/paxoslog.git"]}]
    assert env.deploy().errors == {}
    assert {(d["status"], d["rev"]) for d in env.status()} == {("current", 5)}
    repo = env.hosts[0].home / "var/paxoslog.git"
    assert len(git(repo, "rev-list", "refs/heads/main").split()) == 5
    git(repo, "fsck", "--strict", "--no-dangling")


def test_status_reports_modified_unknown_stale_and_error(env, cluster):
    a, b, c = env.hosts
    assert env.deploy().errors == {}
    (a.home / "etc/cell/css0.conf").write_text("edited\n")
    (b.home / "etc/cell/css9.conf").write_text("0 x 1 y 2\n")
    stamp = (c.home / "etc/DEPLOYED").read_text()
    head = git_head(env.px.home)
    (c.home / "etc/DEPLOYED").write_text(stamp.replace(head, "f" * 40))
    docs = {d["hostname"]: d for d in env.status()}
    assert docs[a.addr]["status"] == "modified"
    assert (docs[b.addr]["status"], docs[b.addr]["stale"]) == ("current", ["etc/cell/css9.conf"])
    assert (docs[c.addr]["status"], docs[c.addr]["commit"]) == ("unknown", "f" * 40)
    cluster.kill(b.addr)
    assert env.status(b.addr) == [{"hostname": b.addr, "status": "error",
                                   "reason": "cannot connect: Connection refused"}]


def test_clean_removes_only_cell_files_head_does_not_render(env):
    a = env.hosts[0]
    assert env.deploy(a.addr).errors == {}
    (a.home / "etc/cell/old.conf").write_text("stale\n")
    assert env.dry_run(a.addr, clean=True).docs[0]["changes"] == ["delete etc/cell/old.conf"]
    assert env.deploy(a.addr).errors == {}
    assert (a.home / "etc/cell/old.conf").exists()  # without --clean stale files stay
    assert env.deploy(a.addr, clean=True).errors == {}
    # a member host keeps its cell's secret (nodes.md §2.3)
    assert sorted(p.name for p in (a.home / "etc/cell").iterdir()) == ["css0.conf", "css0.key"]


def test_a_diverged_host_log_is_refused_and_left_alone(env, tmp_path):
    a, b = env.hosts[:2]
    other = make_home(tmp_path / "other", [b, a, env.hosts[2]])  # other order: other commits
    with SSHSession(env.opts) as session:
        other_home = Home(str(other.home))
        targets = dep.select_targets(head_state(other_home)[2], [a.addr])
        assert dep.deploy(other_home, targets, session, author=AUTHOR).errors == {}
    before = {p: p.read_bytes() for p in a.home.rglob("*") if p.is_file()}
    out = env.deploy()
    message = (f"event log on {a.addr} has diverged from the local one; if the host is ahead, "
               f"`paxos fetch {a.addr}` brings its events here, and `paxos fetch --force "
               f"{a.addr}` adopts its log in place of the local one")
    assert out.errors == {a.addr: message}
    assert out.error_message() == f"{a.addr}: {message}"
    assert {p: p.read_bytes() for p in a.home.rglob("*") if p.is_file()} == before
    # reachable, with a stamp of a commit the local log lacks: `unknown` (§4.7), not `error`
    (doc,) = env.status(a.addr)
    stamp = yaml.safe_load((a.home / "etc/DEPLOYED").read_text())
    assert (doc["status"], doc["commit"], doc["reason"]) == ("unknown", stamp["commit"], message)
    assert stamp["commit"] != git_head(env.px.home)
    (a.home / "etc/DEPLOYED").unlink()  # no stamp: `none`, the divergence still said
    assert env.status(a.addr) == [{"hostname": a.addr, "status": "none", "reason": message}]


def test_a_dead_host_fails_alone_and_converges_after_it_comes_back(env, cluster):
    a, b, c = env.hosts
    cluster.kill(b.addr)
    out = env.deploy()
    assert out.errors == {b.addr: "cannot connect: Connection refused"}
    assert [d["status"] for d in env.status(a.addr, c.addr)] == ["current", "current"]
    cluster.revive(b.addr)
    assert env.deploy().errors == {}
    assert {d["status"] for d in env.status()} == {"current"}


def test_targets_are_checked_before_any_connection(env):
    topology = head_state(env.home)[2]
    with pytest.raises(NotFound, match="^not found: 192.168.1.10$"):
        dep.select_targets(topology, [env.hosts[0].addr, "192.168.1.10"])
    assert dep.select_targets(topology, [], ["nogroup"]) == []
    assert [h.hostname for h in dep.select_targets(topology, [env.hosts[2].addr,
                                                              env.hosts[0].addr])] == [
        env.hosts[0].addr, env.hosts[2].addr]


DEPLOY_PROCESS = """
import sys
from pathlib import Path
from paxoslog.app import deploy as dep
from paxoslog.store.home import Home, head_state
from paxoslog.remote.ssh import SSHOptions
from paxoslog.remote.sshpool import SSHSession
home = Home.from_env()
opts = SSHOptions(known_hosts=Path(sys.argv[1]), identity_files=(sys.argv[2],), use_agent=False,
                  ask_password=None)
with SSHSession(opts) as session:
    out = dep.deploy(home, dep.select_targets(head_state(home)[2], sys.argv[3:]), session)
sys.exit(out.error_message() or 0)
"""


def test_deploy_to_twenty_hosts_from_a_fresh_process(cluster, tmp_path):
    # The speed targets (20 vs 1 host, vs parallel-scp) are measured by
    # scripts/bench/bench_deploy.py, not asserted here; this checks the 20-host run itself.
    hosts = cluster.hosts[:20]
    assert len(hosts) == 20
    px = make_home(tmp_path / "home", hosts)
    kh = cluster.known_hosts_copy(tmp_path / "known_hosts")
    for h in hosts:
        wipe(h)
    subprocess.run([sys.executable, "-c", DEPLOY_PROCESS, str(kh), str(cluster.client_key),
                    *(h.addr for h in hosts)], env=px.env, check=True, timeout=120)
    assert {d["status"] for d in Env.status_of(px, kh, cluster)} == {"current"}


def test_a_local_host_is_deployed_through_the_file_system(env):
    # rule (L): 127.0.0.1 with the login user is this machine; nothing listens on its port 22,
    # so any SSH attempt would fail the test
    env.px.ok("register", "host", "--user", getpass.getuser(), "127.0.0.1")
    before = etc_snapshot(env.px.home)
    assert env.deploy("127.0.0.1").errors == {}
    stamp = yaml.safe_load((env.px.home / "etc/DEPLOYED").read_text())
    assert (stamp["commit"], stamp["rev"]) == (git_head(env.px.home), 5)
    after = etc_snapshot(env.px.home)
    # the stamp, and the cell's secret made by this first deploy, are the only new files
    assert len(after.pop("etc/cell/css0.key")) == 32
    assert {k: v for k, v in after.items() if k != "etc/DEPLOYED"} == before
    assert env.status("127.0.0.1")[0]["status"] == "current"
    assert env.dry_run("127.0.0.1").docs == [{"hostname": "127.0.0.1", "deployed": 5,
                                              "changes": []}]
