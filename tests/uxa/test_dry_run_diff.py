"""`deploy --dry-run --diff`: the unified diff of each file that would change on each host,
including a file edited by hand there."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import Paxos
from tests.deploy_helpers import wipe
from tests.hosts_fixture import TestCluster


def _admin(cluster: TestCluster, tmp_path: Path, hosts) -> Paxos:
    for h in hosts:
        wipe(h)
    px = Paxos(tmp_path / "admin")
    px.home.mkdir()
    px.env.update(PAXOS_KNOWN_HOSTS=str(cluster.known_hosts_copy(tmp_path / "kh")),
                  PAXOS_SSH_IDENTITY=str(cluster.client_key))
    for h in hosts:
        px.ok("register", "host", "--user", "paxos", h.addr)
    return px


def test_diff_of_a_hand_edited_file_and_of_a_new_one(cluster: TestCluster, tmp_path: Path):
    a, b = cluster.hosts[8:10]
    wipe(b)  # registered later: what another test deployed there must not look diverged
    px = _admin(cluster, tmp_path, [a])
    px.ok("deploy")
    px.ok("register", "host", "--user", "paxos", b.addr)
    conf = a.home / "etc" / "paxos_memcache.conf"
    before = conf.read_text()
    conf.write_text(before.replace('user: "paxos"', 'user: "root"\x1b[31m', 1) + "# by hand\n")
    proc = px("deploy", "--dry-run", "--diff")
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(proc.stdout))
    assert [d["changes"] for d in docs] == [
        ["modify etc/paxos_memcache.conf", "update var/paxoslog.git"],
        ["create etc/paxos_memcache.conf", "update var/paxoslog.git"]]
    diff_a = docs[0]["diff"].splitlines()
    assert diff_a[:2] == [f"--- {a.addr}:etc/paxos_memcache.conf",
                          "+++ HEAD:etc/paxos_memcache.conf"]
    # the edited line (its escape sequence shown, not sent to the terminal), the added comment
    # and the host registered since
    assert '-    user: "root"\\x1b[31m' in diff_a
    assert '+    user: "paxos"' in diff_a
    assert "-# by hand" in diff_a
    assert f'+  - hostname: "{b.addr}"' in diff_a
    assert "\x1b" not in proc.stdout
    diff_b = docs[1]["diff"].splitlines()
    assert diff_b[:2] == ["--- /dev/null", "+++ HEAD:etc/paxos_memcache.conf"]
    assert all(line.startswith(("+", "@", "-")) for line in diff_b)
    # JSON: the same diffs as strings
    assert [d["diff"] for d in json.loads(px("--json", "deploy", "--dry-run", "--diff").stdout)] \
        == [d["diff"] for d in docs]
    # nothing was written
    assert conf.read_text().endswith("# by hand\n")
    assert not (b.home / "etc" / "paxos_memcache.conf").exists()


def test_no_diff_when_nothing_would_change_and_diff_needs_dry_run(cluster: TestCluster,
                                                                   tmp_path: Path):
    (a,) = cluster.hosts[10:11]
    px = _admin(cluster, tmp_path, [a])
    px.ok("deploy")
    docs = list(yaml.safe_load_all(px.ok("deploy", "--dry-run", "--diff")))
    assert docs == [{"hostname": a.addr, "deployed": 1, "changes": [], "diff": ""}]
    proc = px("deploy", "--diff")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].endswith("error: argument --diff: only with --dry-run")
