"""Speed work of issue 11 that must not silently regress: followers' CHOSEN records cost no
fsync of their own, and members run on uvloop (a package dependency) when it is installed."""

from __future__ import annotations

import asyncio

from nodes.css.client import CssClient
from nodes.css.core.paxos import Paxos
from nodes.css.core.types import Persist, Send, Timing
from nodes.css.probe import status


def test_a_followers_chosen_record_is_lazy_and_its_accept_is_not() -> None:
    px = Paxos(1, [0, 1, 2], Timing(), seed=1, now=0.0)
    out = px.handle(0, {"t": "ACCEPT", "b": [1, 0], "s": 1, "val": [], "commit": 0}, 0.01)
    (acc,) = [a for a in out.actions if isinstance(a, Persist)]
    assert acc.records[0]["r"] == "ACCEPT" and not acc.lazy
    (ack,) = [a for a in out.actions if isinstance(a, Send)]
    assert ack.after == acc.token  # the ACCEPTED still waits for the fsync
    out = px.handle(0, {"t": "HB", "b": [1, 0], "commit": 1, "n": 1}, 0.02)
    (chosen,) = [a for a in out.actions if isinstance(a, Persist)]
    assert chosen.records[0]["r"] == "CHOSEN" and chosen.lazy
    assert not any(isinstance(a, Send) and a.after == chosen.token for a in out.actions)
    assert px.commit == 1


def test_members_run_on_uvloop(running_cell) -> None:
    st = asyncio.run(status(running_cell.tcp(0)))
    assert st["event_loop"] == "uvloop"


def test_followers_acknowledge_from_the_writer_thread(running_cell) -> None:
    """A follower's ACCEPTED leaves right after its fsync (peers.take_direct), and the writes
    it acknowledges that way are durable and readable as before."""
    cell = running_cell

    async def go() -> None:
        leader = await cell.wait_leader()
        async with CssClient(cell.addrs()) as cl:
            for i in range(20):
                await cl.write(f"k{i}", b"v%d" % i)
            assert (await cl.read("k19"))["data"] == b"v19"
        sts = await cell.statuses()
        assert all(sts[n]["direct_sent"] > 0 for n in sts if n != leader)
    asyncio.run(go())
