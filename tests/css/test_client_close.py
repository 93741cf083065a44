"""Issue 6: CssClient.close() leaves no pending tasks (the benchmark printed "Task was
destroyed but it is pending!" for every client)."""

from __future__ import annotations

import asyncio
import gc
import logging

from nodes.css.client import CssClient


def _others() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def test_close_leaves_no_pending_tasks(running_cell, caplog) -> None:
    cell = running_cell
    caplog.set_level(logging.ERROR, logger="asyncio")

    async def go() -> None:
        clients = [CssClient(cell.addrs(), session_timeout_ms=4000) for _ in range(8)]
        await asyncio.gather(*(c.open() for c in clients))
        await asyncio.gather(*(c.write(f"close/{i}", b"x") for i, c in enumerate(clients)))
        leader = await cell.wait_leader()
        # one client's link is cut under it (a follower redirect, then a reconnect)
        clients[0].disconnect()
        await clients[0].write("close/again", b"y")
        assert _others(), "the clients run keep-alive and reader tasks"
        await asyncio.gather(*(c.close() for c in clients))
        assert _others() == [], _others()
        async with CssClient([cell.tcp((leader + 1) % 3), *cell.addrs()]) as cl:
            await cl.read("close/0")
        assert _others() == [], _others()
        plain = CssClient(cell.addrs())
        await plain.hello()  # no session: a link without keep-alive
        await plain.aclose()
        assert _others() == [], _others()

    asyncio.run(go())
    gc.collect()
    assert "destroyed but it is pending" not in caplog.text
