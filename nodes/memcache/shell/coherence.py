"""Drives the delegation manager against CSS: one session, recalls, jeopardy, expiry, flush."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

import msgpack

from nodes.css.client import CssClient
from nodes.css.errors import CssError, RequestError

from .. import VERSION
from ..core import delegation as dm
from ..core.cache import ValueCache
from ..core.meta import META_BLOCK, RELATIVE_MAX, CasBlock, Meta, css_prefix, decode
from ..errors import CSS_DOWN, DELEGATION_TIMEOUT, Reply, server_error

log = logging.getLogger("memcache.css")


class Coherence:
    def __init__(self, members: list[tuple[str, int]], ns: str, proxy_id: int,
                 cache: ValueCache, *, max_items: int = 2000, css_wait: float = 5.0,
                 session_timeout: float = 10.0, backend_timeout: float = 3.0,
                 info: dict | None = None) -> None:
        self.members, self.ns, self.id = members, css_prefix(ns), proxy_id
        self.cache, self.css_wait = cache, css_wait
        self.session_timeout, self.backend_timeout = session_timeout, backend_timeout
        self.mgr = dm.Manager(max_items)
        self.client: CssClient | None = None
        self.ready = asyncio.Event()
        self.waiters: dict[str, list[asyncio.Future]] = {}
        self.last_err: dict[str, str] = {}
        self.ns_version = 0
        self.cas = CasBlock()
        self.cas_lock = asyncio.Lock()
        self.flush_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        self.info = info or {}
        self.stopping = False
        self.main: asyncio.Task | None = None
        self.stats = {"recalls": 0, "grants": 0, "releases": 0, "expiries": 0, "poisoned": 0}

    # ---- session life ----------------------------------------------------------------------
    def start(self) -> None:
        self.main = asyncio.get_running_loop().create_task(self._session_loop())

    async def _session_loop(self) -> None:
        while not self.stopping:
            c = CssClient(self.members, request_timeout=self.css_wait,
                          attempt_timeout=min(1.5, self.css_wait),
                          session_timeout_ms=int(self.session_timeout * 1000),
                          client_name=f"paxos-memcache#{self.id}")
            try:
                await c.open()
            except CssError as e:
                log.warning("css session not open: %s", e)
                c.disconnect()
                await asyncio.sleep(0.5)
                continue
            self.client = c
            log.info("css session open sid=%s", c.sid)
            self.ready.set()
            self._spawn(self._announce(c))
            await self._events(c)  # returns when the session expired
            self.ready.clear()
            self.client = None
            c.disconnect()
            if not self.stopping:
                self.stats["expiries"] += 1
                log.error("css session expired: delegations, metadata and cache dropped")
                self.mgr.reset()
                self.cache.clear()
                self._wake_all()

    async def _announce(self, c: CssClient) -> None:
        data = msgpack.packb({"host": socket.gethostname(), "pid": os.getpid(),
                              "started": time.time(), "version": VERSION, **self.info},
                             use_bin_type=True)
        while not c.expired and not self.stopping:
            try:
                await c.create(f"{self.ns}/proxy/{self.id}", data, ephemeral=True)
                return
            except RequestError as e:
                if e.code != "EEXIST":
                    log.warning("cannot create %s/proxy/%d: %s", self.ns, self.id, e.code)
            except CssError:
                pass
            await asyncio.sleep(1.0)  # an old session of ours still holds it until it expires

    async def _events(self, c: CssClient) -> None:
        while True:
            ev = await c.events.get()
            if ev.get("ev") == "EXPIRED" or c.expired:
                return
            if ev.get("ev") == "GRANTED" and ev.get("late") and isinstance(ev.get("name"), str):
                if ev["name"] == self.ns:
                    if self.mgr.ns == dm.NS_NONE:  # not wanted now: give it back
                        self._spawn(self._unlock_quietly(self.ns))
                elif ev["name"].startswith(self.ns + "/key/"):
                    self._run(self.mgr.late_grant(ev["name"]))
                continue
            if ev.get("ev") != "RECALL" or not isinstance(ev.get("name"), str):
                continue
            name, version = ev["name"], ev.get("version", 0)
            self.stats["recalls"] += 1
            if name == self.ns:
                if version >= self.ns_version:
                    self._run(self.mgr.ns_recall())
            elif name.startswith(self.ns + "/key/"):
                self._run(self.mgr.recall(name, int(version or 0)))
            self._wake(name)

    def jeopardy(self) -> bool:
        c = self.client
        return c is None or c.in_jeopardy()

    def valid_for(self) -> float:
        c = self.client
        return -1.0 if c is None or c.expired else c.valid_until - time.monotonic()

    # ---- waiting ---------------------------------------------------------------------------
    def _wake(self, name: str) -> None:
        for f in self.waiters.pop(name, []):
            if not f.done():
                f.set_result(None)

    def _wake_all(self) -> None:
        for name in list(self.waiters):
            self._wake(name)

    async def _wait(self, name: str, deadline: float) -> None:
        f = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(name, []).append(f)
        try:
            await asyncio.wait_for(f, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass

    async def acquire(self, name: str, key: bytes, mode: str) -> dm.KeyState:
        """Hold `name` locally in `mode` (R or W); Reply(SERVER_ERROR ...) if it cannot."""
        deadline = time.monotonic() + self.css_wait
        while True:
            ks = self.mgr.keys.get(name)
            if self.jeopardy():
                if ks is not None and ks.state in (dm.R, dm.W):
                    raise Reply(CSS_DOWN)  # delegated requests fail at once in jeopardy
            else:
                st, acts = self.mgr.request(name, key, mode)
                self._run(acts)
                if st == dm.READY:
                    return self.mgr.hold(name)
            if time.monotonic() >= deadline:
                err = self.last_err.pop(name, None)
                raise Reply(DELEGATION_TIMEOUT if err == "ETIMEDOUT" else CSS_DOWN)
            await self._wait(name if self.mgr.ns == dm.NS_R else self.ns,
                             min(deadline, time.monotonic() + 0.25))

    def unhold(self, name: str) -> None:
        self._run(self.mgr.unhold(name))
        self._wake(name)

    def check_write(self) -> None:
        """A backend write must land well inside the session's validity: the session may only
        expire after valid_until, so a write that cannot finish before it is refused."""
        if self.valid_for() <= self.backend_timeout:
            raise Reply(CSS_DOWN)

    # ---- actions ---------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    def _run(self, acts: list[dm.Action]) -> None:
        for a in acts:
            self._spawn(getattr(self, "_a_" + a[0])(*a[1:]))

    async def _a_lock(self, name: str, mode: str) -> None:
        c = self.client
        try:
            if c is None:
                raise RequestError("EUNAVAILABLE")
            res = await c.lock(name, mode, wait=True, wait_ms=int(self.css_wait * 1000),
                               recall=True)
            meta = await self._read_meta(c, name)
        except CssError as e:
            self.last_err[name] = getattr(e, "code", "EUNAVAILABLE")
            self._run(self.mgr.failed(name))
        else:
            self.stats["grants"] += 1
            self._run(self.mgr.granted(name, mode, int(res.get("version", 0)), meta))
        self._wake(name)

    async def _read_meta(self, c: CssClient, name: str) -> Meta | None:
        try:
            rep = await c.read(name)
        except RequestError as e:
            if e.code == "ENOENT":
                return None
            raise
        try:
            return decode(rep["data"])
        except (ValueError, KeyError, TypeError):
            log.error("malformed metadata name=%s: treated as absent", name)
            return None

    async def _a_release(self, name: str, write: Any) -> None:
        c = self.client
        try:
            if c is None:
                raise RequestError("EUNAVAILABLE")
            if isinstance(write, Meta):
                await c.write(name, write.encode())
            elif write == dm.DELETE:
                await self._delete(c, name)
            await self._unlock(c, name)
        except CssError as e:
            # metadata could not be written: never unlock over it; abort so CSS's abort rule
            # deletes the files of every W we hold (a miss, never old metadata)
            log.error("release of %s failed (%s): aborting the session", name, e)
            await self.abort_session()
            return
        self.stats["releases"] += 1
        self._run(self.mgr.released(name))
        self._wake(name)

    async def _a_unlock(self, name: str) -> None:
        c = self.client
        if c is not None:
            try:
                await self._unlock(c, name)
            except CssError:
                pass

    async def _unlock_quietly(self, name: str) -> None:
        c = self.client
        if c is not None:
            try:
                await self._unlock(c, name)
            except CssError:
                pass

    async def _a_ns_lock(self) -> None:
        c = self.client
        try:
            if c is None:
                raise RequestError("EUNAVAILABLE")
            res = await c.lock(self.ns, "R", wait=True, wait_ms=int(self.css_wait * 1000),
                               recall=True)
            self.ns_version = int(res.get("version", 0))
            self._run(self.mgr.ns_granted())
        except CssError as e:
            log.warning("name space lock failed: %s", e)
            self.mgr.ns_failed()
        self._wake_all()
        self._wake(self.ns)

    async def _a_ns_unlock(self) -> None:
        c = self.client
        if c is not None:
            try:
                await self._unlock(c, self.ns)
            except CssError:
                pass
        self.mgr.ns_released()
        self.cache.clear()
        self._wake_all()
        self._wake(self.ns)

    @staticmethod
    async def _unlock(c: CssClient, name: str) -> None:
        try:
            await c.unlock(name)
        except RequestError as e:
            if e.code != "ENOENT":
                raise

    @staticmethod
    async def _delete(c: CssClient, name: str) -> None:
        try:
            await c.delete(name)
        except RequestError as e:
            if e.code != "ENOENT":
                raise

    async def abort_session(self) -> None:
        c = self.client
        if c is None:
            return
        try:
            await c.abort()
        except CssError:
            pass  # it will expire: CSS applies the same abort rule then
        c.expired = True
        c.events.put_nowait({"ev": "EXPIRED"})

    # ---- poisoning, meta-CAS, flush --------------------------------------------------------
    async def poison(self, ks: dm.KeyState) -> None:
        """An indeterminate backend write under W: the key becomes a miss, never old data."""
        ks.poisoned = True
        self.stats["poisoned"] += 1
        c = self.client
        try:
            if c is None:
                raise RequestError("EUNAVAILABLE")
            await self._delete(c, ks.name)
            ks.meta, ks.dirty = None, False
        except CssError:
            await self.abort_session()
            return
        ks.poisoned = False

    async def new_cas(self) -> int:
        async with self.cas_lock:
            v = self.cas.take()
            if v is None:
                if self.client is None:
                    raise Reply(CSS_DOWN)
                try:
                    total = await self.client.counter_add(f"{self.ns}/meta-cas", META_BLOCK,
                                                          create=True)
                except CssError:
                    raise Reply(CSS_DOWN) from None
                self.cas.refill(total)
                v = self.cas.take()
            assert v is not None
            return v

    async def flush(self, backend_flush: Any) -> None:
        """flush_all (spec 3.5): take NS W, delete every metadata file, flush our backend."""
        async with self.flush_lock:
            deadline = time.monotonic() + self.css_wait
            self.mgr.flushing = True
            try:
                self._run(self.mgr.ns_recall())
                while self.mgr.ns != dm.NS_NONE or self.mgr.keys:
                    if self.mgr.ns == dm.NS_R:  # an NS grant that was in flight
                        self._run(self.mgr.ns_recall())
                    if time.monotonic() >= deadline:
                        raise Reply(CSS_DOWN)
                    await self._wait(self.ns, min(deadline, time.monotonic() + 0.1))
                c = self.client
                if c is None or self.jeopardy():
                    raise Reply(CSS_DOWN)
                left = max(0.1, deadline - time.monotonic())
                try:
                    await c.lock(self.ns, "W", wait=True, wait_ms=int(left * 1000))
                except RequestError as e:
                    raise server_error("flush timeout" if e.code == "ETIMEDOUT"
                                       else "css unavailable") from None
                except CssError:
                    raise Reply(CSS_DOWN) from None
                try:
                    await c.delete_prefix(f"{self.ns}/key/")
                    self.cache.clear()
                    await backend_flush()
                finally:
                    try:
                        await self._unlock(c, self.ns)
                    except CssError:
                        pass
            finally:
                self.mgr.flushing = False
                self._wake_all()

    def delayed_flush(self, delay: int, backend_flush: Any) -> None:
        """flush_all with a delay: a timer; lost if this proxy stops first (spec 3.5)."""
        if delay > RELATIVE_MAX:
            delay = max(0, int(delay - time.time()))

        async def later() -> None:
            await asyncio.sleep(delay)
            try:
                await self.flush(backend_flush)
            except Reply as e:
                log.error("delayed flush_all failed: %s", e)

        self._spawn(later())

    async def stop(self) -> None:
        """Release every delegation (W metadata written first), then close the session."""
        c = self.client
        self.stopping = True
        if c is not None and not c.expired:
            self.mgr.flushing = True
            self._run(self.mgr.ns_recall())
            deadline = time.monotonic() + self.css_wait
            while (self.mgr.keys or self.mgr.ns == dm.NS_RECALLED) and \
                    time.monotonic() < deadline:
                await self._wait(self.ns, min(deadline, time.monotonic() + 0.1))
            try:
                await c.delete(f"{self.ns}/proxy/{self.id}")
            except CssError:
                pass
            try:
                await c.close()
            except CssError:
                pass
        if self.main:
            self.main.cancel()
        for t in list(self.tasks):
            t.cancel()
        if c is not None:
            c.disconnect()
