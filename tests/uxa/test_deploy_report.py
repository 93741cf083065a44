"""`deploy` speaks per host: a line as each host finishes, a recap, one stderr line per failure,
JSON results with the failed hosts, and Ctrl-C that returns at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import PAXOS, Paxos
from tests.deploy_helpers import wipe
from tests.hosts_fixture import TestCluster


@pytest.fixture
def three(cluster: TestCluster, tmp_path: Path):
    hosts = cluster.hosts[5:8]
    for h in hosts:
        wipe(h)
    px = Paxos(tmp_path / "admin")
    px.home.mkdir()
    px.env.update(PAXOS_KNOWN_HOSTS=str(cluster.known_hosts_copy(tmp_path / "kh")),
                  PAXOS_SSH_IDENTITY=str(cluster.client_key))
    for h in hosts:
        px.ok("register", "host", "--user", "paxos", h.addr)
    return px, [h.addr for h in hosts]


def test_a_line_per_host_a_recap_and_one_stderr_line_per_failure(three, cluster) -> None:
    px, (a, b, c) = three
    cluster.kill(b)
    cluster.kill(c)
    proc = px("deploy")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert sorted(lines[:3]) == sorted([f"{a}: changed",
                                        f"{b}: unreachable: cannot connect: Connection refused",
                                        f"{c}: unreachable: cannot connect: Connection refused"])
    assert lines[3:] == ["recap: 3 hosts: " + ", ".join(
        f"{n} {s}" for s, n in _counts(lines[:3]).items())]
    # failures one line each, not joined with commas
    assert proc.stderr.splitlines() == [f"{b}: cannot connect: Connection refused",
                                        f"{c}: cannot connect: Connection refused"]
    proc = px("deploy", a)
    assert (proc.returncode, proc.stdout) == (0, f"{a}: ok\nrecap: 1 host: 1 ok\n")


def _counts(lines: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        status = line.split(": ")[1]
        out[status] = out.get(status, 0) + 1
    return out


def test_json_deploy_and_dry_run_list_every_host_failed_ones_included(three, cluster) -> None:
    px, (a, b, c) = three
    cluster.kill(b)
    proc = px("--json", "deploy")
    assert proc.returncode == 1
    reason = "cannot connect: Connection refused"
    assert json.loads(proc.stdout) == [
        {"hostname": a, "status": "changed"},
        {"hostname": b, "status": "unreachable", "reason": reason},
        {"hostname": c, "status": "changed"}]
    proc = px("deploy", "--dry-run", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == [
        {"hostname": a, "deployed": 3, "changes": []},
        {"hostname": b, "status": "unreachable", "reason": reason},
        {"hostname": c, "deployed": 3, "changes": []}]
    docs = list(yaml.safe_load_all(px("deploy", "--dry-run").stdout))
    assert docs[1] == {"hostname": b, "status": "unreachable", "reason": reason}


def test_a_diverged_host_says_how_to_resolve_it(three, tmp_path: Path) -> None:
    px, (a, _b, _c) = three
    other = Paxos(tmp_path / "other")
    other.home.mkdir()
    other.env.update({k: v for k, v in px.env.items() if k.startswith("PAXOS_") and
                      k not in ("PAXOS_HOME",)})
    other.ok("register", "host", "--user", "paxos", "-g", "x", a)
    other.ok("deploy", a)
    proc = px("deploy", a)
    assert proc.returncode == 1
    assert proc.stderr == (f"{a}: event log on {a} has diverged from the local one; if the host "
                           f"is ahead, `paxos fetch {a}` brings its events here, and "
                           f"`paxos fetch --force {a}` adopts its log in place of the local "
                           "one\n")
    assert proc.stdout.splitlines()[0].startswith(f"{a}: failed: event log on {a} has diverged")


def test_ctrl_c_stops_a_deploy_to_a_hung_host_at_once(three, cluster) -> None:
    px, (a, b, c) = three
    with cluster.hung(b):
        proc = subprocess.Popen([PAXOS, "deploy"], env=px.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            seen = []
            deadline = time.monotonic() + 30
            while len(seen) < 2 and time.monotonic() < deadline:
                line = proc.stdout.readline()  # the two live hosts finish first
                assert line, proc.stderr.read()
                seen.append(line.strip())
            assert sorted(seen) == [f"{a}: changed", f"{c}: changed"]
            start = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
            elapsed = time.monotonic() - start
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130
    assert elapsed < 1.0, elapsed
    assert "recap" not in out
    assert err.splitlines() == [
        f"interrupted: finished: {seen[0].replace(': changed', ' (changed)')}, "
        f"{seen[1].replace(': changed', ' (changed)')}; not finished: {b}",
        "WARNING: interrupted!"]


def test_a_hung_host_is_one_timeout_line_and_nothing_from_paramiko(three, cluster) -> None:
    """A host whose sshd accepts and never answers fails after the 10 s connect timeout with
    its one line: paramiko's transport thread, which meets the closed socket, used to log
    `Exception (client): Error reading SSH protocol banner` and a traceback on stderr."""
    px, (a, b, c) = three
    with cluster.hung(b):
        proc = px("deploy")
    assert proc.returncode == 1
    assert sorted(proc.stdout.splitlines()[:3]) == sorted(
        [f"{a}: changed", f"{b}: unreachable: timeout: connect to {b} port 22", f"{c}: changed"])
    assert proc.stderr.splitlines() == [f"{b}: timeout: connect to {b} port 22"]


def test_progress_bar_on_a_terminal(three) -> None:
    import pty

    px, addrs = three
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([PAXOS, "deploy"], env={**px.env, "COLUMNS": "80"},
                                stdin=follower, stdout=follower, stderr=follower)
        os.close(follower)
        raw = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            raw += chunk
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(leader)
    text = raw.decode()
    assert "Traceback" not in text
    assert "hosts" in text and "/3" in text  # rich's bar: "hosts ━━━ 1/3"
    for addr in addrs:
        assert f"{addr}: changed" in text
    assert "recap: 3 hosts: 3 changed" in text
