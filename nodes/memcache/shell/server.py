"""Client listeners (one per pair), connections, and the control socket (spec 3.7)."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from nodes.css.errors import ProtocolError
from nodes.css.wire import frame, read_frame, unpack

from .. import VERSION
from ..config import Options, Pair, endpoint
from ..core.cache import ValueCache
from ..core.protocol import Close, Command, Parser, Reply
from ..errors import ProxyConfigError
from .backend import Backend
from .coherence import Coherence
from .commands import Executor

log = logging.getLogger("memcache")
READ_CHUNK = 64 * 1024


class PairServer:
    def __init__(self, pair: Pair, backend: Backend) -> None:
        self.pair, self.backend = pair, backend
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[asyncio.Task] = set()
        self.idle: set[asyncio.Task] = set()  # waiting for a request: closed at once on drain
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
        ps.server = await asyncio.start_server(lambda r, w: self._conn(ps, r, w),
                                               pair.client[0], pair.client[1],
                                               limit=READ_CHUNK, reuse_address=True)
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
        for ps in servers:
            for t in list(ps.idle):
                t.cancel()
        tasks = [t for ps in servers for t in ps.conns]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.o.drain_timeout)
            for t in pending:
                t.cancel()

    # ---- client connections ----------------------------------------------------------------
    async def _conn(self, ps: PairServer, r: asyncio.StreamReader,
                    w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        ps.conns.add(task)
        try:
            await self._serve(ps, r, w)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:  # a bug must cost one connection, never the proxy
            log.exception("connection failed client=%s", ps.pair.key())
        finally:
            ps.conns.discard(task)
            w.close()

    async def _serve(self, ps: PairServer, r: asyncio.StreamReader,
                     w: asyncio.StreamWriter) -> None:
        parser = Parser(ps.backend.item_size_max)
        me = asyncio.current_task()
        while not ps.closing:
            ps.idle.add(me)  # type: ignore[arg-type]
            try:
                data = await r.read(READ_CHUNK)
            finally:
                ps.idle.discard(me)  # type: ignore[arg-type]
            if not data:
                return
            parser.feed(data)
            while True:
                item = parser.next()
                if item is None:
                    break
                if isinstance(item, Close):
                    log.warning("closing connection client=%s why=%s", ps.pair.key(),
                                item.reason)
                    w.write(item.data)
                    await w.drain()
                    return
                if isinstance(item, Reply):
                    if item.suppressed:
                        self.suppressed += 1
                    w.write(item.data)
                    continue
                assert isinstance(item, Command)
                if item.name == "quit":
                    await w.drain()
                    return
                async with self.workers:
                    out = await self.exe.run(item, ps.backend)
                w.write(out)
                if ps.closing:
                    break
            await w.drain()

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
