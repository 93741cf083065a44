"""Issue 11 item 3: a state far larger than one message (50 MB) streams in chunks to a new
learner while the leader serves writes, and the transfer resumes after its connection is cut
mid-way (spec 2.7)."""

from __future__ import annotations

import asyncio
import os
import time

from css_joiner import Joiner

from nodes.css.client import CssClient
from nodes.css.probe import control, status

MB = int(os.environ.get("CSS_SNAPSHOT_MB", "50"))


def test_large_snapshot_streams_to_a_learner_and_resumes(cell, tmp_path) -> None:
    cell.extra = ["--snapshot-every", "1000000", "--log-retain", "10",
                  "--learner-timeout", "120"]
    cell.start_all(init=True)
    j = Joiner(cell, tmp_path, "127.0.0.4", no=0, extra=["--learner-timeout", "120"])

    async def go() -> None:
        leader = await cell.wait_leader()
        blob = os.urandom(64 << 10)
        n = MB * 16  # 64 KiB files
        clients = [CssClient(cell.addrs(), request_timeout=30) for _ in range(16)]
        await asyncio.gather(*(c.open() for c in clients))
        try:
            for i in range(0, n, 16):
                await asyncio.gather(*(c.write(f"big/{i + k}", blob[k:] + blob[:k])
                                       for k, c in enumerate(clients)))
            for no in range(3):
                assert (await control(cell.name, no, {"t": "force_snapshot"}))["ok"]
                # every member cuts the first transfer it serves after 40 chunks (10 MB)
                assert (await control(cell.name, no, {"t": "snap_cut", "after": 40}))["ok"]

            async def snapped() -> bool:
                sts = await cell.statuses()
                return len(sts) == 3 and all(s["snapshot_slot"] > 0 for s in sts.values())
            await _until(snapped, 30, "snapshots on every member")
            stop = asyncio.Event()
            writes = [0]

            async def writer() -> None:  # the leader keeps serving writes meanwhile
                k = 0
                while not stop.is_set():
                    k += 1
                    await clients[0].write(f"live/{k % 50}", b"%d" % k)
                    writes[0] += 1
            wtask = asyncio.create_task(writer())
            j.start()
            await asyncio.to_thread(j.ready)
            mid = await j.admitted(timeout=60)

            async def caught_up() -> bool:
                st = await status(j.addr)
                lst = await status(cell.tcp(await cell.wait_leader()))
                return st["snapshot_slot"] > 0 and lst["commit"] - st["commit"] <= 16
            await _until(caught_up, 120, "learner caught up")
            stop.set()
            await wtask
            assert writes[0] > 20
            st = await status(j.addr)
            xfer = st["snapshot_transfer"]
            assert xfer["received"] >= 1 and xfer["resumes"] >= 1, xfer
            assert xfer["current"]["size"] > MB * 1000 * 1000
            assert st["counts"]["files"] >= n
            assert "resuming at" in j.log() and mid
            served = [(await status(cell.tcp(no)))["snapshot_transfer"]["chunks_served"]
                      for no in range(3)]
            assert sum(served) >= xfer["current"]["size"] // (256 << 10)
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        assert leader in cell.procs

    try:
        asyncio.run(go())
    finally:
        j.close()


async def _until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.2)
