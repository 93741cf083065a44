"""Compaction and snapshot catch-up on a real cell (small snapshot_every to force them)."""

from __future__ import annotations

import asyncio
import os

from nodes.css.client import CssClient


def test_lagging_member_catches_up_by_snapshot_and_restarts_from_it(cell) -> None:
    cell.extra = ["--snapshot-every", "40", "--log-retain", "10"]
    cell.start_all(init=True)
    asyncio.run(cell.wait_leader())

    async def go() -> None:
        leader = await cell.wait_leader()
        lagger = (leader + 1) % 3
        cell.stop(lagger)
        async with CssClient(cell.addrs()) as cl:
            for i in range(150):
                await cl.write(f"s/{i % 7}", str(i).encode())
                await cl.counter_add("n", 1)
        cell.start(lagger)
        for _ in range(100):
            sts = await cell.statuses()
            if len({s["commit"] for s in sts.values()}) == 1 and len(sts) == 3:
                break
            await asyncio.sleep(0.1)
        sts = await cell.statuses()
        assert sts[lagger]["commit"] == sts[leader]["commit"]
        assert sts[lagger]["snapshot_slot"] > 0, "the lagging member should get a snapshot"
        assert sts[lagger]["counts"] == sts[leader]["counts"]
        assert "installing peer snapshot" in cell.log(lagger)
        snaps = os.listdir(os.path.join(cell.home, "data", cell.name, str(lagger), "snap"))
        assert snaps and all(n.startswith("snap-") for n in snaps)
        # restart from snapshot + WAL, everyone at once
        for i in range(3):
            cell.kill(i)
        cell.start_all()
        await cell.wait_leader()
        async with CssClient(cell.addrs()) as cl:
            assert await cl.counter_get("n") == 150
            assert (await cl.read("s/3"))["data"] == b"143"
        wal = os.listdir(os.path.join(cell.home, "data", cell.name, str(leader), "wal"))
        assert len(wal) <= 3, f"old WAL segments should be deleted: {wal}"
    asyncio.run(go())
