"""CSS client fixes the proxy relies on (real CSS cell): the at-most-once window, expiry seen
on any request, late lock grants."""

from __future__ import annotations

import asyncio

from nodes.css.client import WINDOW, CssClient
from nodes.css.errors import RequestError


def test_a_waiting_lock_does_not_push_later_requests_out_of_the_window(cell):
    async def go() -> None:
        async with CssClient(cell.addrs()) as a, CssClient(cell.addrs()) as b:
            await a.lock("win/k", "W")
            waiting = asyncio.ensure_future(b.lock("win/k", "W", wait=True, wait_ms=20000))
            await asyncio.sleep(0)
            # more logged requests than the window while the lock still waits at a low seq:
            # the old client sent seq > ack + 128 and drew ESTALE_SEQ
            writes = [asyncio.ensure_future(b.write(f"win/f{i % 5}", b"x"))
                      for i in range(WINDOW + 40)]
            done, _ = await asyncio.wait(writes, timeout=3)
            errors = [t.exception() for t in done if t.exception()]
            assert errors == []
            assert len(done) >= WINDOW - 2  # the rest queue in the client, none is refused
            await a.unlock("win/k")
            assert (await asyncio.wait_for(waiting, 10))["mode"] == "W"
            await asyncio.wait_for(asyncio.gather(*writes), 10)

    asyncio.run(go())


def test_session_expired_reply_on_any_request_marks_the_session_expired(cell):
    async def go() -> None:
        c = CssClient(cell.addrs())
        await c.open()
        try:
            c.tok = "0" * 24  # the server now sees a session it does not know
            try:
                await c.write("exp/x", b"x")
            except RequestError as e:
                assert e.code == "ESESSION_EXPIRED"
            assert c.expired
            ev = await asyncio.wait_for(c.events.get(), 5)
            assert ev["ev"] == "EXPIRED"
        finally:
            await c.aclose()

    asyncio.run(go())


def test_a_grant_after_the_caller_gave_up_is_reported_with_its_name(cell):
    async def go() -> None:
        async with CssClient(cell.addrs()) as a, CssClient(cell.addrs()) as b:
            await a.lock("late/k", "W")
            waiting = asyncio.ensure_future(b.lock("late/k", "W", wait=True, wait_ms=20000))
            await asyncio.sleep(0.3)  # queued on the leader
            waiting.cancel()  # the caller gives up; the leader still has it queued
            await asyncio.gather(waiting, return_exceptions=True)
            await a.unlock("late/k")  # ...and grants it to b now
            ev = await asyncio.wait_for(b.events.get(), 5)
            assert (ev["ev"], ev.get("late"), ev.get("name")) == ("GRANTED", True, "late/k")
            await b.unlock("late/k")  # the owner can give it back
            await a.lock("late/k", "W")

    asyncio.run(go())
