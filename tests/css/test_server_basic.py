"""A real 3-process cell: election, writes and reads through the client library."""

from __future__ import annotations

import asyncio

from nodes.css.client import CssClient


def test_cell_serves_writes_and_reads(running_cell) -> None:
    async def go() -> None:
        async with CssClient(running_cell.addrs()) as cl:
            v = await cl.write("a/b", b"hello")
            r = await cl.read("a/b")
            assert r == {"data": b"hello", "version": v}
            assert await cl.counter_add("n", 2) == 2
            assert await cl.counter_get("n") == 2
    asyncio.run(go())
