"""Issue 11 item 2: crash points at every durability boundary (spec 5.3, 5.4).

For each point, a cell under continuous writers has one member armed with `crash_at`; it dies
there (os._exit, like kill -9 at that instant), is restarted on its data directory, and the
recorded history must be linearizable with no acknowledged write lost (the method of etcd's
robustness tests with failpoints)."""

from __future__ import annotations

import asyncio
import time
import zlib

import pytest
from css_workload import Workload, verify

from nodes.css.probe import control, status

WAL_POINTS = ["wal_before_fsync", "wal_after_fsync"]
SNAP_POINTS = ["snapshot_mid_write", "snapshot_after_rename", "snapshot_before_truncate"]


async def _died(cell, no: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    p = cell.procs[no]
    while p.poll() is None:
        assert time.monotonic() < deadline, f"member {no} did not reach its crash point"
        await asyncio.sleep(0.05)
    return p.returncode


@pytest.mark.parametrize("point", WAL_POINTS + SNAP_POINTS)
@pytest.mark.parametrize("who", ["leader", "follower"])
def test_crash_point_under_load(cell, point: str, who: str) -> None:
    cell.extra = ["--snapshot-every", "100000"]  # snapshots only when the test asks
    cell.start_all(init=True)
    asyncio.run(cell.wait_leader())
    w = Workload(cell.addrs(), seed=zlib.crc32(f"{point}{who}".encode()) % 1000)

    async def faults() -> None:
        await asyncio.sleep(0.8)
        leader = await cell.wait_leader()
        victim = leader if who == "leader" else (leader + 1) % 3
        rep = await control(cell.name, victim, {"t": "crash_at", "point": point})
        assert rep["ok"]
        if point in SNAP_POINTS:
            assert (await control(cell.name, victim, {"t": "force_snapshot"}))["ok"]
        assert await _died(cell, victim, 10) == 99
        assert f"crash_at {point}" in cell.log(victim)
        cell.procs.pop(victim)
        await asyncio.sleep(0.5)
        cell.start(victim)  # crash restart on the same data directory
        await cell.wait_leader(timeout=10)
        st = await status(cell.tcp(victim))
        assert st["start_mode"] == "crash restart"
        await asyncio.sleep(1.5)  # the restarted member takes part under load again

    asyncio.run(w.run(faults))
    verify(w)

    async def converged() -> None:
        deadline = time.monotonic() + 15
        while True:
            sts = await cell.statuses()
            if len(sts) == 3 and len({s["next_seq"] for s in sts.values()}) == 1:
                return
            assert time.monotonic() < deadline, {n: s["next_seq"] for n, s in sts.items()}
            await asyncio.sleep(0.1)
    asyncio.run(converged())
