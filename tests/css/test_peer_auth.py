"""Issue 11, hostile input on the member port: peer messages are authenticated (spec 2.3)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import time

import msgpack
from css_cell import poll_until

from nodes.css.client import CssClient
from nodes.css.config import member_id
from nodes.css.probe import leader_request, status
from nodes.css.shell.auth import Auth


def _alive(cell) -> None:
    for no, p in cell.procs.items():
        assert p.poll() is None, f"member {no} died: {cell.log(no)[-2000:]}"


def test_forged_heartbeats_are_dropped_and_counted(running_cell) -> None:
    """The report: a forged UDP heartbeat crashed a member. Unsigned, or signed with another
    key, with the right envelope and wrongly typed fields: dropped, counted, no crash."""
    cell = running_cell
    leader = asyncio.run(cell.wait_leader())
    follower = (leader + 1) % 3
    env = {"v": 1, "cell_id": cell.cell_id, "no": leader,
           "from": member_id(cell.cell_id, leader)}
    forged = [{**env, "t": "HB", "b": "x", "commit": {}, "n": []},
              {**env, "t": "HB", "b": [10 ** 6, leader], "commit": 10 ** 9, "n": 1},
              {**env, "t": "ACCEPT", "b": [10 ** 6, leader], "s": 1, "val": [{"op": 1}],
               "commit": 5},
              {**env, "t": "PREPARE", "b": [10 ** 6, leader], "fs": 1}]
    wrong_key = Auth(os.urandom(32))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    before = asyncio.run(status(cell.tcp(follower)))
    for m in forged * 25:
        body = msgpack.packb(m, use_bin_type=True)
        s.sendto(body, (cell.hosts[follower], cell.base))
        s.sendto(wrong_key.sign(body), (cell.hosts[follower], cell.base))
    s.close()

    async def go() -> None:
        async def counted():
            st = await status(cell.tcp(follower))
            return st if st["auth_failures"] >= before["auth_failures"] + 150 else None
        st = await poll_until(counted, what="auth failures counted")
        assert st["auth"] is True
        assert st["epoch"] < 10 ** 6 and st["commit"] < 10 ** 9
        _alive(cell)
        async with CssClient(cell.addrs()) as cl:
            await cl.write("after", b"forgery")
        assert await cell.wait_leader() == leader  # no election was provoked
    asyncio.run(go())
    _alive(cell)


def test_forged_join_adds_nobody_and_sends_nothing(running_cell) -> None:
    """The report: a forged JOIN added a learner and made the cell send 85,000 datagrams to an
    address of the sender's choosing. Now nothing answers it and the configuration stays."""
    cell = running_cell
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.9", 0))
    victim.settimeout(0.2)
    vaddr = list(victim.getsockname())
    cfg0 = asyncio.run(leader_request(cell.addrs(), {"t": "config"}))
    join = {"v": 1, "t": "JOIN", "cell_id": cell.cell_id, "no": -1, "from": "f00d",
            "cno": 0, "member_id": "f00dfeedf00dfeed", "udp": vaddr, "tcp": vaddr,
            "expect_cfg": cfg0["version"]}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for no in range(3):
        for _ in range(20):
            s.sendto(msgpack.packb(join, use_bin_type=True), (cell.hosts[no], cell.base))
    s.close()

    async def counted():
        sts = [await status(cell.tcp(n)) for n in range(3)]
        return all(st["auth_failures"] >= 20 for st in sts)
    asyncio.run(poll_until(counted, what="the forged JOINs counted"))
    received = 0
    end = time.monotonic() + 1.5  # the old bug sent tens of thousands of datagrams per second
    while time.monotonic() < end:
        try:
            victim.recv(65536)
            received += 1
        except TimeoutError:
            pass
    victim.close()
    assert received == 0
    cfg1 = asyncio.run(leader_request(cell.addrs(), {"t": "config"}))
    assert cfg1["version"] == cfg0["version"] and cfg1["members"] == cfg0["members"]
    _alive(cell)


def test_unsigned_peer_link_is_closed(running_cell) -> None:
    """A PEER_HELLO on the TCP port (the door to 512 MiB frames) must be signed."""
    cell = running_cell

    async def go() -> None:
        before = (await status(cell.tcp(0)))["auth_failures"]
        hello = msgpack.packb({"v": 1, "t": "PEER_HELLO", "cell_id": cell.cell_id, "no": 1,
                               "from": member_id(cell.cell_id, 1)}, use_bin_type=True)
        for body in (hello, Auth(os.urandom(32)).sign(hello)):
            r, w = await asyncio.open_connection(*cell.tcp(0))
            w.write(struct.pack(">I", len(body)) + body)
            w.write(struct.pack(">I", 400 << 20))  # then announce a huge frame
            await w.drain()
            data = await asyncio.wait_for(r.read(), 5)  # the member closes the link
            assert b"PEER_HELLO" not in data
            w.close()
        st = await status(cell.tcp(0))
        assert st["auth_failures"] >= before + 1
    asyncio.run(go())
    _alive(cell)


def test_key_file_is_required(cell) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nodes.css.server", cell.name, "0",
                               "--init", "--cell-id", cell.cell_id, "--log", "stderr", *args],
                              env=cell.env(), capture_output=True, timeout=20)
    os.chmod(cell.key_path, 0o644)
    r = run()
    assert r.returncode == 10 and cell.key_path.encode() in r.stderr and b"0600" in r.stderr
    os.unlink(cell.key_path)
    r = run()
    assert r.returncode == 10 and cell.key_path.encode() in r.stderr
    with open(cell.key_path, "wb") as f:
        f.write(b"short")
    os.chmod(cell.key_path, 0o600)
    r = run()
    assert r.returncode == 10 and b"32 bytes" in r.stderr
    assert not os.path.exists(os.path.join(cell.home, "data")), "refused before touching data"


def test_no_auth_mode_is_reported(cell) -> None:
    os.unlink(cell.key_path)
    cell.extra = ["--no-auth"]
    cell.start_all(init=True)

    async def go() -> None:
        await cell.wait_leader()
        st = await status(cell.tcp(0))
        assert st["auth"] is False
        async with CssClient(cell.addrs()) as cl:
            await cl.write("k", b"v")
    asyncio.run(go())
    assert "--no-auth" in cell.log(0)


def test_cli_generates_the_secret_once(tmp_path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("PAXOS_CELL_CONFIG", None)
    cmd = [sys.executable, "-m", "nodes.css.cli", "--cell", "c9", "gen-key"]
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=30)
    path = tmp_path / "etc" / "cell" / "c9.key"
    assert r.returncode == 0 and r.stdout.decode().strip() == str(path)
    assert (path.stat().st_mode & 0o777) == 0o600 and len(path.read_bytes()) == 32
    key = path.read_bytes()
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=30)
    assert r.returncode == 1 and b"already exists" in r.stderr
    assert path.read_bytes() == key
