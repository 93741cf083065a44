"""`status deploy -o table` on real sshd test hosts (issue 12 item 4)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Paxos
from tests.deploy_helpers import wipe


def test_status_deploy_table(cluster, tmp_path: Path) -> None:
    a, b = cluster.hosts[0:2]
    for h in (a, b):
        wipe(h)
    home = tmp_path / "admin"
    home.mkdir()
    px = Paxos(home)
    px.env.update(PAXOS_KNOWN_HOSTS=str(cluster.known_hosts_copy(tmp_path / "kh")),
                  PAXOS_SSH_IDENTITY=str(cluster.client_key))
    for h in (a, b):
        px.ok("register", "host", "--user", "paxos", h.addr)
    px.ok("deploy", a.addr)
    proc = px("-o", "table", "status", "deploy")
    assert proc.returncode == 1, proc.stderr  # b has nothing deployed
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["HOSTNAME", "STATUS", "REV"], lines
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[a.addr][1:3] == ["current", "2"], lines
    assert rows[b.addr][1] == "none", lines
    assert "\x1b[" not in proc.stdout  # piped: no colour
    # every column starts at the same offset on every line
    starts = [lines[0].index("STATUS")] + [line.index(r[1]) for line, r in
                                           zip(lines[1:], rows.values(), strict=True)]
    assert len(set(starts)) == 1, lines
