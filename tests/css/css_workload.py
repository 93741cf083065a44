"""Concurrent client workload against a real cell, recorded as a history for lincheck."""

from __future__ import annotations

import asyncio
import math
import random
import time

from nodes.css.client import CssClient
from nodes.css.errors import CssError, RequestError
from nodes.css.lincheck import Counter, Op, Register, check, describe

KEYS = ["reg/a", "reg/b", "reg/c"]
COUNTER = "ctr"


class Workload:
    def __init__(self, addrs: list[tuple[str, int]], clients: int = 4, seed: int = 1) -> None:
        self.addrs = addrs
        self.n = clients
        self.rng = random.Random(seed)
        self.reg: list[Op] = []
        self.ctr: list[Op] = []
        self.stop = asyncio.Event()
        self.acked_writes: dict[str, list[tuple[bytes, int]]] = {k: [] for k in KEYS}
        self.errors: list[str] = []
        self.ok_count = 0
        self.expired = 0  # sessions that kept alive must survive every failover

    async def _one(self, cl: CssClient, c: int, i: int) -> None:
        key = self.rng.choice(KEYS)
        r = self.rng.random()
        t0 = time.monotonic()
        try:
            if r < 0.3:
                val = f"{c}-{i}".encode()
                ver = await cl.write(key, val)
                self.reg.append(Op(c, "write", val, t0, time.monotonic(), "ok", ver, key))
                self.acked_writes[key].append((val, ver))
            elif r < 0.5:
                try:
                    got = await cl.read(key)
                    res = (got["data"], got["version"])
                except RequestError as e:
                    if e.code != "ENOENT":
                        raise
                    res = None
                self.reg.append(Op(c, "read", None, t0, time.monotonic(), "ok", res, key))
            elif r < 0.7:
                expect = self.last.get((c, key), 0)
                val = f"{c}-{i}c".encode()
                try:
                    ver = await cl.cas(key, expect, val)
                    res2: tuple = ("ok", ver)
                    self.acked_writes[key].append((val, ver))
                except RequestError as e:
                    if e.code != "ECONFLICT":
                        raise
                    res2 = ("conflict", e.info["version"])
                    self.last[(c, key)] = e.info["version"]
                self.reg.append(Op(c, "cas", (expect, val), t0, time.monotonic(), "ok", res2,
                                   key))
            elif r < 0.9:
                d = self.rng.randint(1, 5)
                v = await cl.counter_add(COUNTER, d)
                self.ctr.append(Op(c, "add", d, t0, time.monotonic(), "ok", v, COUNTER))
            else:
                try:
                    v = await cl.counter_get(COUNTER)
                except RequestError as e:
                    if e.code != "ENOENT":
                        raise
                    v = 0
                self.ctr.append(Op(c, "get", None, t0, time.monotonic(), "ok", v, COUNTER))
            self.ok_count += 1
        except (CssError, OSError) as e:
            # outcome unknown: it may take effect any time after t0
            self.errors.append(f"{type(e).__name__}: {e}")
            if r < 0.3:
                self.reg.append(Op(c, "write", f"{c}-{i}".encode(), t0, math.inf, "unknown",
                                   None, key))
            elif 0.5 <= r < 0.7:
                self.reg.append(Op(c, "cas", (self.last.get((c, key), 0), f"{c}-{i}c".encode()),
                                   t0, math.inf, "unknown", None, key))
            elif 0.7 <= r < 0.9:
                self.ctr.append(Op(c, "add", d, t0, math.inf, "unknown", None, COUNTER))

    async def client(self, c: int) -> None:
        cl = CssClient(self.addrs, request_timeout=8.0, attempt_timeout=0.5,
                       session_timeout_ms=8000, client_name=f"w{c}")
        await cl.open()
        i = 0
        try:
            while not self.stop.is_set():
                i += 1
                await self._one(cl, c, i)
        finally:
            if cl.expired:
                self.expired += 1
            try:
                await asyncio.wait_for(cl.close(), 5)
            except RequestError as e:
                if e.code == "ESESSION_EXPIRED":
                    self.expired += 1
            except Exception:
                await cl.aclose()

    async def run(self, faults) -> None:
        self.last: dict = {}
        tasks = [asyncio.create_task(self.client(c)) for c in range(self.n)]
        try:
            await faults()
        finally:
            self.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def final_reads(self) -> None:
        """Reads after everything: no acknowledged write may be lost."""
        async with CssClient(self.addrs, request_timeout=10.0) as cl:
            for key in KEYS:
                t0 = time.monotonic()
                try:
                    got = await cl.read(key)
                    res = (got["data"], got["version"])
                except RequestError:
                    res = None
                self.reg.append(Op(99, "read", None, t0, time.monotonic(), "ok", res, key))
            t0 = time.monotonic()
            try:
                v = await cl.counter_get(COUNTER)
            except RequestError:
                v = 0
            self.ctr.append(Op(99, "get", None, t0, time.monotonic(), "ok", v, COUNTER))


def verify(w: Workload) -> None:
    """No acknowledged write lost, sessions that kept alive survived, histories linearizable."""
    asyncio.run(w.final_reads())
    assert w.ok_count > 50, f"too little progress: {w.ok_count} ok, errors {w.errors[:5]}"
    assert w.expired == 0, "a session that kept alive expired"
    for model, hist in ((Register, w.reg), (Counter, w.ctr)):
        r = check(hist, model)
        assert r.ok, describe(r)
