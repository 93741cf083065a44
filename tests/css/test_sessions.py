"""Sessions on a real cell: expiry of a killed client, abort rules, FIFO grants, recall events."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from nodes.css.client import CssClient
from nodes.css.errors import RequestError

HOLDER = r"""
import asyncio, sys
from nodes.css.client import CssClient
async def main():
    addrs = [(h, int(p)) for h, p in (a.split(":") for a in sys.argv[1].split(","))]
    cl = CssClient(addrs, session_timeout_ms=3000)
    await cl.open()
    await cl.write("data/w", b"locked")
    await cl.lock("data/w", "W")
    await cl.lock("data/r", "R")
    await cl.create("eph/me", b"x", ephemeral=True)
    print("HELD", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def test_killed_client_expires_and_abort_rules_apply(running_cell) -> None:
    cell = running_cell
    addrs = ",".join(f"{h}:{p}" for h, p in cell.addrs())
    p = subprocess.Popen([sys.executable, "-c", HOLDER, addrs], stdout=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert p.stdout.readline().strip() == b"HELD"

        async def go() -> float:
            async with CssClient(cell.addrs()) as cl:
                await cl.write("data/r", b"kept")
                with pytest.raises(RequestError) as e:
                    await cl.lock("data/w", "W")
                assert e.value.code == "EBUSY"
                assert (await cl.read("eph/me"))["data"] == b"x"
                p.send_signal(signal.SIGKILL)
                p.wait()
                t0 = time.monotonic()
                got = await cl.lock("data/w", "W", wait=True, wait_ms=15000)
                waited = time.monotonic() - t0
                assert got["mode"] == "W"
                for gone in ("data/w", "eph/me"):  # write-locked and ephemeral files deleted
                    with pytest.raises(RequestError) as e:
                        await cl.read(gone)
                    assert e.value.code == "ENOENT"
                assert (await cl.read("data/r"))["data"] == b"kept"  # read lock: file stays
                await cl.lock("data/r", "W")  # the dead session's R lock was released
                return waited
        waited = asyncio.run(go())
        assert 1.5 < waited < 3.0 + 2.0, f"lock granted after {waited:.2f}s (timeout 3 s)"
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_blocked_requests_granted_in_order_with_recall(running_cell) -> None:
    cell = running_cell

    async def go() -> None:
        a, b, c = (CssClient(cell.addrs(), client_name=n) for n in "abc")
        for x in (a, b, c):
            await x.open()
        try:
            v = await a.lock("L", "W", recall=True)
            order: list[str] = []

            async def want(cl: CssClient, name: str, mode: str) -> None:
                await cl.lock("L", mode, wait=True)
                order.append(name)

            tb = asyncio.create_task(want(b, "b", "W"))
            ev = await asyncio.wait_for(a.events.get(), 5)
            assert ev["ev"] == "RECALL" and ev["name"] == "L" and ev["version"] == v["version"]
            await asyncio.sleep(0.2)
            tc = asyncio.create_task(want(c, "c", "R"))
            await asyncio.sleep(0.3)
            assert order == []
            await a.unlock("L")
            await asyncio.wait_for(tb, 5)
            assert order == ["b"]
            await b.unlock("L")
            await asyncio.wait_for(tc, 5)
            assert order == ["b", "c"]
            with pytest.raises(RequestError) as e:
                await a.lock("L", "W", wait=True, wait_ms=300)
            assert e.value.code == "ETIMEDOUT"
            # close releases locks and deletes ephemeral files, but not write-locked files
            await c.unlock("L")
            await c.write("cw", b"1")
            await c.lock("cw", "W")
            await c.create("ce", b"", ephemeral=True)
            await c.close()
            assert (await a.read("cw"))["data"] == b"1"
            with pytest.raises(RequestError):
                await a.read("ce")
            assert (await a.lock("cw", "W"))["mode"] == "W"
        finally:
            for x in (a, b):
                await x.close()
    asyncio.run(go())


def test_retry_with_same_seq_runs_once(running_cell) -> None:
    async def go() -> None:
        async with CssClient(running_cell.addrs()) as cl:
            seq_before = cl.seq
            r1 = await cl.counter_add("once", 1)
            # resend the very same request (same sid, seq) as a retry after a lost reply would
            msg = {"t": "counter_add", "sid": cl.sid, "tok": cl.tok, "seq": seq_before + 1,
                   "ack": 0, "name": "once", "delta": 1, "create": True}
            rep = await cl._request(msg)
            assert rep["ok"] and rep["res"]["value"] == r1 == 1
            assert await cl.counter_get("once") == 1
    asyncio.run(go())
