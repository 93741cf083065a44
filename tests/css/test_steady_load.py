"""Issue 11 item 1: with the default timings (heartbeat 50 ms, lease 500 ms, election
600-1000 ms) a healthy cell under full load never starts an election, also while it takes
snapshots of a state of tens of MB (encoded off the event loop) and fsyncs every batch.

The issue's CI figure is a 60 s run; CSS_STEADY_SECONDS sets the length (default 15 s, so the
suite stays short on a shared 2-core machine)."""

from __future__ import annotations

import asyncio
import os
import time

from nodes.css.client import CssClient

SECONDS = float(os.environ.get("CSS_STEADY_SECONDS", "15"))


def test_no_election_under_full_load(cell) -> None:
    cell.extra = ["--snapshot-every", "400", "--log-retain", "200"]
    cell.start_all(init=True)

    async def go() -> None:
        leader = await cell.wait_leader()
        before = await cell.statuses()
        epoch = before[leader]["epoch"]
        candidates = [cell.log(no).count("role=candidate") for no in range(3)]
        errors: list[str] = []
        ops = [0]
        clients = [CssClient(cell.addrs(), request_timeout=5) for _ in range(32)]
        await asyncio.gather(*(c.open() for c in clients))
        try:
            # a state of ~24 MB, so that every snapshot has real encoding work
            blob = os.urandom(48 << 10)
            for i in range(0, 512, 32):
                await asyncio.gather(*(c.write(f"big/{i + j}", blob)
                                       for j, c in enumerate(clients)))
            stop = time.monotonic() + SECONDS

            async def writer(i: int, c: CssClient) -> None:
                j = 0
                while time.monotonic() < stop:
                    j += 1
                    try:
                        await c.write(f"w/{i}", b"%d" % j + b"x" * 200)
                        ops[0] += 1
                    except Exception as e:  # every failure counts: none are expected
                        errors.append(repr(e))
            await asyncio.gather(*(writer(i, c) for i, c in enumerate(clients)))
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        after = await cell.statuses()
        assert errors == [], errors[:5]
        assert ops[0] > 100 * SECONDS, f"only {ops[0]} writes in {SECONDS}s"
        assert after[leader]["role"] == "leader"
        assert {st["epoch"] for st in after.values()} == {epoch}, "an election happened"
        assert after[leader]["snapshot_slot"] > before[leader]["snapshot_slot"]
        assert [cell.log(no).count("role=candidate") for no in range(3)] == candidates
    asyncio.run(go())
