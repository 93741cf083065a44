"""The fault hooks of spec 5.4 exist only under --test-hooks and check their arguments."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from nodes.css.client import CssClient
from nodes.css.errors import RequestError
from nodes.css.probe import control, status


async def _err(cell, no: int, msg: dict) -> str:
    try:
        await control(cell.name, no, msg)
    except RequestError as e:
        return e.code
    return "ok"


def test_hooks_check_arguments_pause_and_delay(running_cell) -> None:
    cell = running_cell

    async def go() -> None:
        leader = await cell.wait_leader()
        f = (leader + 1) % 3
        assert await _err(cell, f, {"t": "crash_at", "point": "nowhere"}) == "EINVAL"
        assert await _err(cell, f, {"t": "crash_at", "point": "replace_after_apply",
                                    "kind": "x"}) == "EINVAL"
        assert await _err(cell, f, {"t": "pause", "ms": -1}) == "EINVAL"
        assert await _err(cell, f, {"t": "delay"}) == "EINVAL"
        # pause freezes the member: a status asked meanwhile is answered only afterwards
        assert await _err(cell, f, {"t": "pause", "ms": 600}) == "ok"
        t0 = time.monotonic()
        await status(cell.tcp(f), timeout=5)
        assert time.monotonic() - t0 >= 0.4
        # the leader's datagrams delayed beyond the election timeout: another member leads
        assert await _err(cell, leader, {"t": "delay", "peer": -1, "ms": 1500}) == "ok"
        new = await cell.wait_leader(timeout=15, exclude=leader)
        assert new != leader
        assert await _err(cell, leader, {"t": "delay", "peer": -1, "ms": 0}) == "ok"
        async with CssClient(cell.addrs()) as cl:
            await cl.write("hooks", b"ok")
    asyncio.run(go())


def test_hooks_absent_without_the_flag(cell) -> None:
    args = [sys.executable, "-m", "nodes.css.server", cell.name, "0", "--log", "file",
            "--init", "--cell-id", cell.cell_id]
    p = subprocess.Popen(args, env=cell.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    cell.procs[0] = p
    assert p.stdout.readline().startswith(b"READY")

    async def go() -> None:
        for msg in ({"t": "crash_at", "point": "wal_before_fsync"}, {"t": "pause", "ms": 10},
                    {"t": "delay", "ms": 10}, {"t": "drop"}, {"t": "force_snapshot"}):
            assert await _err(cell, 0, msg) == "EINVAL"
        assert (await control(cell.name, 0, {"t": "status"}))["res"]["test_hooks"] is False
    asyncio.run(go())
