"""Start modes, clean stop with SHUTDOWN marker, crash restart, refusals, status probe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from nodes.css.client import CssClient
from nodes.css.probe import member_status, stopped_status
from nodes.css.shell.storage import Storage


async def write_many(cell, n: int, prefix: str = "k") -> dict[str, int]:
    async with CssClient(cell.addrs()) as cl:
        return {f"{prefix}{i}": await cl.write(f"{prefix}{i}", str(i).encode()) for i in range(n)}


async def read_all(cell, names) -> dict[str, bytes]:
    async with CssClient(cell.addrs()) as cl:
        return {n: (await cl.read(n))["data"] for n in names}


def test_clean_stop_writes_marker_and_restart_resumes(running_cell) -> None:
    cell = running_cell
    written = asyncio.run(write_many(cell, 20))
    leader = asyncio.run(cell.wait_leader())
    order = [i for i in range(3) if i != leader] + [leader]  # followers first
    for i in order:
        assert cell.stop(i) == 0
    markers = [stopped_status(cell.name, i)["next_seq"] for i in range(3)]
    assert markers[0] is not None and markers[0] > 20
    assert len(set(markers)) == 1, f"members stopped at different positions: {markers}"
    cell.start_all()
    sts = asyncio.run(cell.statuses())
    assert {s["start_mode"] for s in sts.values()} == {"clean restart"}
    asyncio.run(cell.wait_leader())
    got = asyncio.run(read_all(cell, written))
    assert got == {n: n[1:].encode() for n in written}
    assert all(stopped_status(cell.name, i)["next_seq"] is None for i in range(3))


def test_kill_all_then_restart_keeps_acknowledged_writes(running_cell) -> None:
    cell = running_cell
    written = asyncio.run(write_many(cell, 30))
    for i in range(3):
        cell.kill(i)
    assert stopped_status(cell.name, 0)["next_seq"] is None  # crashed: no marker
    st = asyncio.run(member_status(cell.name, 0))
    assert st["running"] is False
    cell.start_all()
    assert {s["start_mode"] for s in asyncio.run(cell.statuses()).values()} == {"crash restart"}
    asyncio.run(cell.wait_leader())
    assert set(asyncio.run(read_all(cell, written))) == set(written)


def test_refusals(cell) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nodes.css.server", cell.name, *args,
                               "--log", "stderr"], env=cell.env(), capture_output=True,
                              timeout=20)
    r = run("0")
    assert r.returncode == 10 and b"use --init or --join" in r.stderr
    r = run("0", "--init")
    assert r.returncode == 2
    r = run("0", "--lease", "5")
    assert r.returncode == 2 and b"lease" in r.stderr
    r = run("7")
    assert r.returncode == 2
    cell.start(0, init=True)
    r = run("0", "--init", "--cell-id", cell.cell_id)
    assert r.returncode == 4 and b"data directory present" in r.stderr
    r = run("0")  # same data dir while member 0 runs
    assert r.returncode == 10 and b"LOCK" in r.stderr
    r = run("0", "--unsafe-no-fsync")
    assert r.returncode == 2
    with open(cell.config_path, "a") as f:
        f.write("3 127.0.0.4 1 127.0.0.4 2 extra\n")
    r = run("1")
    assert r.returncode == 2 and b"expected 5 fields" in r.stderr


def test_status_probe_fields(running_cell) -> None:
    cell = running_cell

    async def go() -> None:
        async with CssClient(cell.addrs(), client_name="probe-test") as cl:
            await cl.write("x", b"1")
            leader = await cell.wait_leader()
            st = await member_status(cell.name, leader)
            for k in ("running", "role", "leader", "epoch", "next_seq", "connected", "clients",
                      "pid", "version", "member_id", "cell_id", "commit", "members", "counts",
                      "start_mode", "started", "fsync", "test_hooks", "lease_ms", "config"):
                assert k in st, k
            assert st["role"] == "leader" and st["leader"] == leader and st["epoch"] >= 1
            assert st["config_drift"] is False
            assert sorted(st["connected"]) == [0, 1, 2]
            me = [c for c in st["clients"] if c["sid"] == cl.sid]
            assert me and me[0]["name"] == "probe-test" and me[0]["pid"] == os.getpid()
            assert me[0]["address"][0].startswith("127.")
            assert st["pid"] == cell.procs[leader].pid
    asyncio.run(go())


def test_cli_and_control_socket(running_cell) -> None:
    cell = running_cell
    members = ",".join(f"{h}:{p}" for h, p in cell.addrs())

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nodes.css.cli", "--members", members,
                               *args], capture_output=True, timeout=30, env=cell.env())
    assert cli("put", "cfg/x", "hello").returncode == 0
    r = cli("get", "cfg/x")
    assert r.returncode == 0 and r.stdout.strip() == b"hello"
    assert cli("incr", "ctr", "5").stdout.strip() == b"5"
    assert b"cfg/x" in cli("ls", "cfg/").stdout
    r = cli("lock", "L", "W")
    assert r.returncode == 0 and b'"mode": "W"' in r.stdout
    r = cli("get", "missing")
    assert r.returncode == 1 and b"ENOENT" in r.stderr
    r = subprocess.run([sys.executable, "-m", "nodes.css.cli", "--cell", cell.name, "status"],
                       capture_output=True, timeout=30, env=cell.env())
    assert r.returncode == 0 and r.stdout.count(b'"role"') == 3

    from nodes.css.probe import control
    leader = asyncio.run(cell.wait_leader())
    follower = (leader + 1) % 3
    rep = asyncio.run(control(cell.name, follower, {"t": "status"}))
    assert rep["res"]["no"] == follower
    rep = asyncio.run(control(cell.name, follower, {"t": "shutdown", "comment": "by test"}))
    assert rep["ok"]
    assert cell.procs.pop(follower).wait(10) == 0
    st = Storage(os.path.join(cell.home, "data", cell.name, str(follower)))
    assert st.read_shutdown()[1] == "by test"
