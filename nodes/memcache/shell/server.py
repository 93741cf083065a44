"""Client listeners (one per pair), connections, and the control socket (spec 3.7)."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from nodes.css.errors import ProtocolError
from nodes.css.shell.guard import LISTEN_BACKLOG
from nodes.css.wire import frame, read_frame, unpack

from .. import VERSION
from ..config import Options, Pair, endpoint
from ..core.cache import ValueCache
from ..errors import ProxyConfigError
from .backend import Backend
from .coherence import Coherence
from .commands import Executor
from .conn import ClientConn

log = logging.getLogger("memcache")


class PairServer:
    def __init__(self, pair: Pair, backend: Backend) -> None:
        self.pair, self.backend = pair, backend
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[ClientConn] = set()
        self.closing = False


class Proxy:
    def __init__(self, opts: Options, members: list[tuple[str, int]]) -> None:
        self.o = opts
        self.cache = ValueCache(opts.checksum, opts.checksum_interval / 1000,
                                opts.expire_interval)
        self.coh = Coherence(members, opts.name_space, opts.id, self.cache,
                             max_items=opts.max_cache_item, css_wait=opts.css_wait,
                             session_timeout=opts.session_timeout,
                             backend_timeout=opts.backend_timeout,
                             info={"pairs": [p.plain() for p in opts.pairs]})
        self.exe = Executor(self.coh, self.cache, opts.id)
        self.workers = asyncio.Semaphore(opts.workers)
        self.pairs: dict[str, PairServer] = {}
        self.stopped = asyncio.Event()
        self.control: asyncio.base_events.Server | None = None
        self.started = time.time()
        self.suppressed = 0
        self.exit_code = 0

    # ---- pairs -----------------------------------------------------------------------------
    async def add_pair(self, pair: Pair) -> None:
        """Bind the listener (OSError if it cannot); the backend may be down."""
        if pair.key() in self.pairs:
            raise FileExistsError(pair.key())
        be = Backend(pair.server[0], pair.server[1], self.o.backend_timeout,
                     pool=max(2, self.o.workers), on_reset=self.cache.drop_backend)
        ps = PairServer(pair, be)
        loop = asyncio.get_running_loop()
        ps.server = await loop.create_server(lambda: ClientConn(self, ps), pair.client[0],
                                             pair.client[1], reuse_address=True,
                                             backlog=LISTEN_BACKLOG)
        be.start()
        self.pairs[pair.key()] = ps
        log.info("pair added client=%s server=%s", pair.key(), be.addr)

    async def del_pair(self, key: str) -> None:
        ps = self.pairs.pop(key)
        ps.closing = True
        assert ps.server is not None
        ps.server.close()
        await self._drain([ps])
        await ps.backend.close()
        log.info("pair removed client=%s", key)

    async def _drain(self, servers: list[PairServer]) -> None:
        conns = [c for ps in servers for c in list(ps.conns)]
        for c in conns:
            if c.task is None:  # waiting for a request: closed at once
                c.close()
        busy = [c.task for c in conns if c.task is not None]
        if busy:
            _, pending = await asyncio.wait(busy, timeout=self.o.drain_timeout)
            for t in pending:
                t.cancel()
        for c in conns:
            c.close()

    # ---- control socket --------------------------------------------------------------------
    async def start_control(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            self.control = await asyncio.start_unix_server(self._control, path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    async def _control(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    body = await asyncio.wait_for(read_frame(r), 30)
                except (TimeoutError, ProtocolError):
                    return
                if body is None:
                    return
                try:
                    msg = unpack(body)
                    res = await self.handle(msg)
                except ProtocolError as e:
                    res = {"ok": False, "err": "EPROTO", "msg": str(e)}
                w.write(frame({"t": "reply", **res}))
                await w.drain()
                if res.get("stop"):
                    self.stopped.set()
        except ConnectionError:
            pass
        finally:
            w.close()

    async def handle(self, msg: dict) -> dict:
        t = msg.get("t")
        if t == "ping":
            return {"ok": True, "res": "pong"}
        if t == "status":
            return {"ok": True, "res": self.status()}
        if t == "list_pairs":
            return {"ok": True, "res": self.list_pairs()}
        if t in ("add_pair", "del_pair"):
            try:
                pair = Pair(endpoint(str(msg.get("client", "")), None),
                            endpoint(str(msg.get("server", ""))))
            except ProxyConfigError as e:
                return {"ok": False, "err": "EINVAL", "msg": str(e)}
            if t == "del_pair":
                if pair.key() not in self.pairs:
                    return {"ok": False, "err": "ENOENT"}
                await self.del_pair(pair.key())
                return {"ok": True, "res": "ok"}
            try:
                await self.add_pair(pair)
            except FileExistsError:
                return {"ok": False, "err": "EEXIST"}
            except OSError as e:
                return {"ok": False, "err": "EADDRINUSE", "msg": str(e)}
            return {"ok": True, "res": "ok"}
        if t == "stop":
            return {"ok": True, "res": "ok", "stop": True}
        return {"ok": False, "err": "EINVAL", "msg": f"unknown request {t!r}"}

    def list_pairs(self) -> list[dict]:
        return [{**ps.pair.plain(), "backend": "up" if ps.backend.up else "down",
                 "connections": len(ps.conns)} for ps in self.pairs.values()]

    def status(self) -> dict:
        c = self.coh.client
        return {"id": self.o.id, "pid": os.getpid(), "version": VERSION, "css": self.o.cell,
                "name_space": self.o.name_space, "options": self.o.plain(),
                "started": self.started,
                "session": {"sid": c.sid if c else None, "valid": not self.coh.jeopardy(),
                            "valid_for_ms": int(max(0.0, self.coh.valid_for()) * 1000),
                            "leader": list(c.leader) if c and c.leader else None},
                "pairs": self.list_pairs(), "cache": self.coh.mgr.counts(),
                "stats": {**self.exe.counts, **self.coh.stats, "suppressed": self.suppressed,
                          "cache_hits": self.cache.hits,
                          "checksum_errors": self.cache.checksum_errors}}

    # ---- stop ------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Stop listening, drain, release every delegation, close the session."""
        for ps in self.pairs.values():
            ps.closing = True
            if ps.server:
                ps.server.close()
        await self._drain(list(self.pairs.values()))
        await self.coh.stop()
        for ps in self.pairs.values():
            await ps.backend.close()
        if self.control:
            self.control.close()
