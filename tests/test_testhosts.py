"""scripts/testhosts: the simulated hosts themselves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from paxoslog.remote.ssh import ConnectFailed, HostSpec, SSHOptions, connect
from tests.hosts_fixture import TESTHOSTS, TestCluster


def opts(cluster: TestCluster, tmp_path: Path) -> SSHOptions:
    return SSHOptions(known_hosts=cluster.known_hosts_copy(tmp_path / "known_hosts"),
                      identity_files=(str(cluster.client_key),), use_agent=False,
                      ask_password=None, connect_timeout=5, command_timeout=10)


def state_of(cluster: TestCluster) -> dict:
    return json.loads((cluster.state / "state.json").read_text())


def run_testhosts(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TESTHOSTS), "--state", str(state), *args],
                          capture_output=True, text=True, timeout=120)


def test_every_host_has_its_own_home(cluster, tmp_path):
    a, b = cluster.hosts[:2]
    o = opts(cluster, tmp_path)
    with connect(HostSpec(a.addr, "paxos"), o) as conn:
        conn.run(["sh", "-c", "echo mine > ~/only-on-a"])
        # sshd really is on port 22 of the host's own address
        assert conn.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout.split()[2:] == [
            a.addr.encode(), b"22"]
    assert (a.home / "only-on-a").read_text() == "mine\n"
    with connect(HostSpec(b.addr, "paxos"), o) as conn:
        assert conn.run(["test", "-e", "/home/paxos/only-on-a"]).code == 1
        assert conn.run(["pwd"]).stdout == b"/home/paxos\n"
    (a.home / "only-on-a").unlink()


def test_sshd_runs_in_a_private_mount_namespace(cluster):
    ours = os.readlink("/proc/self/ns/mnt")
    spaces = set()
    for h in state_of(cluster)["hosts"]:
        ns = os.readlink(f"/proc/{h['pid']}/ns/mnt")
        assert ns == h["ns"] != ours
        spaces.add(ns)
    assert len(spaces) == len(cluster.hosts)
    # the account is usable (not locked) and key-only
    shadow = next(line for line in Path("/etc/shadow").read_text().splitlines()
                  if line.startswith("paxos:"))
    assert shadow.split(":")[1] == "*"


def test_kill_stops_sshd_and_every_process_of_the_host(cluster, tmp_path):
    host = cluster.hosts[10]
    before = next(h for h in state_of(cluster)["hosts"] if h["addr"] == host.addr)
    conn = connect(HostSpec(host.addr, "paxos"), opts(cluster, tmp_path))
    chan = conn._transport.open_session()
    chan.exec_command("sleep 300")  # a session process inside the host's namespace
    (host.home / "kept").write_text("still here")

    def in_ns() -> list[int]:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()
                and _ns(int(p)) == before["ns"] and _running(int(p))]

    deadline = time.monotonic() + 5
    while len(in_ns()) < 3 and time.monotonic() < deadline:  # sshd, its session, sleep
        time.sleep(0.05)
    assert len(in_ns()) >= 3
    cluster.kill(host.addr)
    assert in_ns() == []
    assert not _running(before["pid"])
    with pytest.raises(ConnectFailed):
        connect(HostSpec(host.addr, "paxos"), opts(cluster, tmp_path))
    conn.close()
    listed = json.loads(run_testhosts(cluster.state, "list", "--json").stdout)
    assert [h["up"] for h in listed["hosts"] if h["addr"] == host.addr] == [False]
    # revive: same home, same host key (the old known_hosts still matches)
    cluster.revive(host.addr)
    with connect(HostSpec(host.addr, "paxos"), opts(cluster, tmp_path)) as conn:
        assert conn.read_file("kept") == b"still here"


def _ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def test_up_and_down_of_a_second_cluster(cluster, tmp_path):
    state = tmp_path / "second"
    up = run_testhosts(state, "up", "2", "--base", "auto", "--json")
    assert up.returncode == 0, up.stderr
    hosts = json.loads(up.stdout)["hosts"]
    # auto picks addresses no other cluster uses, all loopback
    assert not {h["addr"] for h in hosts} & set(cluster.addrs)
    assert all(h["addr"].startswith("127.0.0.") and h["up"] for h in hosts)
    again = run_testhosts(state, "up", "1")
    assert again.returncode == 1 and "already up" in again.stderr
    down = run_testhosts(state, "down")
    assert down.returncode == 0, down.stderr
    assert not state.exists()
    assert not any(_running(h["pid"]) and _ns(h["pid"]) == h["ns"] for h in hosts)


def test_addresses_stay_within_loopback(tmp_path):
    bad = run_testhosts(tmp_path / "s", "up", "3", "--base", "253")
    assert bad.returncode == 1 and "127.0.0.1-254" in bad.stderr
    assert not (tmp_path / "s" / "state.json").exists()


def test_revive_waits_for_the_killed_hosts_port(cluster, tmp_path):
    """A port still held when `revive` starts (the old sshd not yet gone) delays it, not fails it."""
    host = cluster.hosts[11]
    cluster.kill(host.addr)
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind((host.addr, 22))
    holder.listen(1)
    with ThreadPoolExecutor(1) as pool:
        try:
            revived = pool.submit(cluster.revive, host.addr)
            time.sleep(0.5)  # what is tested: revive is still waiting while the port is held
            assert not revived.done()
        finally:
            holder.close()
        revived.result(timeout=60)
    with connect(HostSpec(host.addr, "paxos"), opts(cluster, tmp_path)) as conn:
        assert conn.run(["true"]).code == 0
