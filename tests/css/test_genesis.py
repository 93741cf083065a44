"""Issue 11 item 5: `--init` waits for every genesis member (spec 2.6); a member that lost its
data refuses to rejoin under its old identity."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

from css_cell import poll_until

from nodes.css.client import CssClient
from nodes.css.probe import status


def test_init_waits_for_every_genesis_member(cell) -> None:
    cell.start(0, init=True)
    cell.start(1, init=True)

    async def go() -> None:
        async def waiting():
            sts = [await status(cell.tcp(n)) for n in (0, 1)]
            return sts if all(st["waiting_for"] == [2] for st in sts) else None
        sts = await poll_until(waiting, 10, "both waiting for member 2")
        # two members would form a quorum, but they must not elect before member 2 is seen
        t_end = time.monotonic() + 2 * 1.0  # twice election_max
        while time.monotonic() < t_end:
            for n in (0, 1):
                st = await status(cell.tcp(n))
                assert st["role"] != "leader" and st["epoch"] == 0 and st["next_seq"] == 1
            await asyncio.sleep(0.1)
        assert all(st["incarnation"] for st in sts)
        cell.start(2, init=True)
        await cell.wait_leader(timeout=15)
        for n in range(3):
            assert (await status(cell.tcp(n)))["waiting_for"] == []
        async with CssClient(cell.addrs()) as cl:
            await cl.write("genesis", b"ok")
    asyncio.run(go())


def _run(cell, no: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodes.css.server", cell.name, str(no),
                           "--log", "stderr", *args], env=cell.env(), capture_output=True,
                          timeout=60)


def test_member_that_lost_its_data_refuses_its_old_identity(running_cell) -> None:
    cell = running_cell

    async def write() -> None:
        async with CssClient(cell.addrs()) as cl:
            for i in range(20):
                await cl.write(f"k/{i}", b"v")
    asyncio.run(write())
    victim = (asyncio.run(cell.wait_leader()) + 1) % 3
    cell.kill(victim)
    data = os.path.join(cell.home, "data", cell.name, str(victim))
    # the WAL (promises, accepts) is gone but MEMBER remains: it must not vote again
    shutil.rmtree(os.path.join(data, "wal"))
    os.makedirs(os.path.join(data, "wal"))
    r = _run(cell, victim)
    assert r.returncode == 10 and b"data was lost" in r.stderr, r.stderr
    # the whole directory is gone: --init under the same cell id is refused by the live peers
    shutil.rmtree(data)
    r = _run(cell, victim, "--init", "--cell-id", cell.cell_id)
    assert r.returncode == 4 and b"already initialized" in r.stderr, r.stderr
    shutil.rmtree(data)
    r = _run(cell, victim)
    assert r.returncode == 10 and b"use --init or --join" in r.stderr

    async def still_serves() -> None:
        async with CssClient(cell.addrs()) as cl:
            assert (await cl.read("k/19"))["data"] == b"v"
    asyncio.run(still_serves())
