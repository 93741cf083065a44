"""`paxos deploy`, `status deploy` and `fetch` through the console script, on real sshd hosts:
the guide's walk-through on five simulated hosts (two proxies, a three-member cell)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import Paxos, git_head
from tests.deploy_helpers import wipe
from tests.hosts_fixture import TestCluster


class Site:
    """An admin home whose `paxos` reaches the simulated hosts (key, known_hosts)."""

    def __init__(self, cluster: TestCluster, tmp_path: Path, name: str = "admin") -> None:
        self.cluster = cluster
        self.known_hosts = cluster.known_hosts_copy(tmp_path / f"{name}-known_hosts")
        home = tmp_path / name
        home.mkdir()
        self.px = Paxos(home)
        self.px.env.update(PAXOS_KNOWN_HOSTS=str(self.known_hosts),
                           PAXOS_SSH_IDENTITY=str(cluster.client_key))


@pytest.fixture
def site(cluster: TestCluster, tmp_path: Path):
    hosts = cluster.hosts[0:5]
    for h in hosts:
        wipe(h)
    s = Site(cluster, tmp_path)
    px = s.px
    proxies, css = hosts[:2], hosts[2:]
    for h in proxies:
        px.ok("register", "host", "--user", "paxos", h.addr)
    px.ok("register", "css", "--name", "css0", *[f"{h.addr}:24111" for h in css for _ in (0, 1)])
    px.ok("register", "memcache", "--css", "css0")
    px.ok("register", "pair", "--id", "0", "--server-address", "127.0.0.1")
    s.hosts, s.proxies, s.css = hosts, proxies, css
    return s


def _stamp(host) -> dict:
    return yaml.safe_load((host.home / "etc" / "DEPLOYED").read_text())


def _files(host) -> dict[str, bytes]:
    root = host.home
    return {str(p.relative_to(root)): p.read_bytes()
            for sub in ("etc", "var") if (root / sub).exists()
            for p in sorted((root / sub).rglob("*")) if p.is_file()}


def test_walkthrough_deploy_status_and_drift(site) -> None:
    px = site.px
    short = px("status", "deploy", "-s")
    assert short.returncode == 1
    assert short.stdout == "".join(f"{h.addr}: none\n" for h in site.hosts)

    assert px("deploy").returncode == 0
    head = git_head(px.home)
    for h in site.hosts:
        assert (h.home / "etc/paxos_memcache.conf").read_bytes() == \
            (px.home / "etc/paxos_memcache.conf").read_bytes()
        assert (h.home / "etc/cell/css0.conf").read_bytes() == \
            (px.home / "etc/cell/css0.conf").read_bytes()
        stamp = _stamp(h)
        assert (stamp["commit"], stamp["rev"]) == (head, 5)
    assert px("status", "deploy", "-s").stdout == "".join(f"{h.addr}: current\n"
                                                          for h in site.hosts)
    assert px("status", "deploy", "-q").returncode == 0

    # one more change: every host is one revision behind
    px.ok("register", "memcache", "--css", "css0", "-N", "spaceB")
    docs = list(yaml.safe_load_all(px("status", "deploy").stdout))
    assert [(d["hostname"], d["status"], d["rev"], d["behind"]) for d in docs] == \
        [(h.addr, "outdated", 5, 1) for h in site.hosts]
    assert list(docs[0])[:4] == ["hostname", "status", "rev", "behind"]
    assert json.loads(px("--json", "status", "deploy").stdout) == docs

    # --dry-run writes nothing and says what would change
    before = {h.addr: _files(h) for h in site.hosts}
    dry = list(yaml.safe_load_all(px.ok("deploy", "--dry-run")))
    assert dry[0] == {"hostname": site.hosts[0].addr, "deployed": 5,
                      "changes": ["modify etc/paxos_memcache.conf", "update var/paxoslog.git"]}
    assert {h.addr: _files(h) for h in site.hosts} == before

    # -g css0 updates only the cell's hosts
    assert px("deploy", "-g", "css0").returncode == 0
    assert [_stamp(h)["rev"] for h in site.hosts] == [5, 5, 6, 6, 6]
    short = px("status", "deploy", "-s").stdout.splitlines()
    assert short == [f"{h.addr}: {'outdated' if h in site.proxies else 'current'}"
                     for h in site.hosts]

    # a stale cell file stays without --clean and goes with it
    stale = site.css[0].home / "etc/cell/old.conf"
    stale.write_text("0 a 1 a 1\n")
    doc = list(yaml.safe_load_all(px("status", "deploy", site.css[0].addr).stdout))[0]
    assert doc["stale"] == ["etc/cell/old.conf"]
    assert px("deploy", site.css[0].addr).returncode == 0 and stale.exists()
    assert px("deploy", "--clean", site.css[0].addr).returncode == 0 and not stale.exists()


def test_dead_host_fails_alone_and_converges_after_revival(site) -> None:
    px, dead = site.px, site.hosts[1]
    site.cluster.kill(dead.addr)
    proc = px("deploy")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{dead.addr}: ") and "Traceback" not in proc.stderr
    assert [(h.home / "etc/DEPLOYED").exists() for h in site.hosts] == \
        [h is not dead for h in site.hosts]
    doc = [d for d in yaml.safe_load_all(px("status", "deploy").stdout)
           if d["hostname"] == dead.addr][0]
    assert doc["status"] == "error" and doc["reason"]
    site.cluster.revive(dead.addr)
    assert px("deploy").returncode == 0
    assert px("status", "deploy", "-q").returncode == 0


def test_unknown_host_names_are_refused_before_any_connection(site) -> None:
    proc = site.px("deploy", "192.168.1.99")
    assert (proc.returncode, proc.stderr.strip()) == (1, "not found: 192.168.1.99")
    proc = site.px("deploy", "-g", "nosuchgroup")
    assert (proc.returncode, proc.stderr.strip()) == (0, "WARNING: no host matches")


def test_host_keys_unknown_refused_then_trusted_with_the_flag(site) -> None:
    px, host = site.px, site.hosts[0]
    site.known_hosts.write_text("")
    proc = px("deploy", host.addr)
    assert proc.returncode == 1
    assert f"{host.addr}: host key is not known (" in proc.stderr
    assert "--trust-new-hosts" in proc.stderr
    assert not (host.home / "etc/DEPLOYED").exists()
    assert px("--trust-new-hosts", "deploy", host.addr).returncode == 0
    assert host.addr in site.known_hosts.read_text()
    assert px("deploy", host.addr).returncode == 0  # recorded: no flag needed any more


def test_changed_host_key_is_always_refused(site) -> None:
    px, host = site.px, site.hosts[2]
    site.cluster.revive(host.addr, new_host_key=True)  # the copy still holds the old key
    try:
        for args in (["deploy", host.addr], ["--trust-new-hosts", "deploy", host.addr]):
            proc = px(*args)
            assert proc.returncode == 1
            assert (f"{host.addr}: host key does not match known_hosts; refusing to connect"
                    in proc.stderr)
    finally:
        site.cluster.revive(host.addr)


def test_fetch_into_an_empty_home_restores_the_same_history(site, tmp_path: Path) -> None:
    px = site.px
    assert px("deploy").returncode == 0
    fresh = Site(site.cluster, tmp_path, "fresh").px
    # an empty home knows no host: the [user@]host[:port] form names it
    assert fresh("fetch", f"paxos@{site.hosts[2].addr}:22").returncode == 0
    ours = px.ok("--json", "log")
    assert fresh.ok("--json", "log") == ours
    assert git_head(fresh.home) == git_head(px.home)
    for rel in ("etc/paxos_memcache.conf", "etc/cell/css0.conf"):
        assert (fresh.home / rel).read_bytes() == (px.home / rel).read_bytes()
    assert yaml.safe_load(fresh.ok("verify"))["status"] == "ok"
    # diverged histories are refused unless --force, which keeps the old head
    fresh.ok("register", "host", "only-here")
    px.ok("register", "host", "only-there")
    assert px("deploy", site.hosts[2].addr).returncode == 0
    proc = fresh("fetch", site.hosts[2].addr)  # registered now: its own settings
    assert proc.returncode == 1 and "has diverged from the local one" in proc.stderr
    old = git_head(fresh.home)
    assert fresh("fetch", "--force", site.hosts[2].addr).returncode == 0
    assert git_head(fresh.home) == git_head(px.home)
    backup = fresh.home / "var/paxoslog.git/refs/paxos/pre-fetch"
    assert backup.read_text().strip() == old
    shutil.rmtree(fresh.home)
