"""A pair's memcached backend: a small pool of connections, timeouts, up/down and restarts.

Every failure (connect error, no reply within `timeout`, a garbled reply) closes the connection,
marks the backend down and raises `BackendError`; a monitor task reconnects, and on the way up
(or when it sees memcached's pid or uptime go back: a restart we did not notice) drops every value
cached for this backend through `on_reset`, since memcached may have come back empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import BACKEND_DOWN, Reply

log = logging.getLogger("memcache.backend")
MAX_REPLY = 8 << 20


class BackendError(Reply):
    def __init__(self, why: str) -> None:
        super().__init__(BACKEND_DOWN)
        self.why = why


class Conn:
    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w = r, w

    async def line(self) -> bytes:
        ln = await self.r.readuntil(b"\r\n")
        return ln

    async def values(self) -> dict[bytes, tuple[int, bytes, int | None]]:
        """VALUE blocks up to END: {key: (flags, data, cas)}."""
        out: dict[bytes, tuple[int, bytes, int | None]] = {}
        while True:
            ln = await self.line()
            if ln == b"END\r\n":
                return out
            f = ln.split()
            if len(f) not in (4, 5) or f[0] != b"VALUE":
                raise ValueError(f"unexpected reply {ln[:80]!r}")
            n = int(f[3])
            if n < 0 or n > MAX_REPLY:
                raise ValueError("value length out of range")
            data = await self.r.readexactly(n + 2)
            if data[-2:] != b"\r\n":
                raise ValueError("bad value block")
            out[f[1]] = (int(f[2]), data[:-2], int(f[4]) if len(f) == 5 else None)

    async def block(self) -> bytes:
        """A stats-like reply: lines up to END/OK/RESET or an error line."""
        out = bytearray()
        while True:
            ln = await self.line()
            out += ln
            if len(out) > MAX_REPLY:
                raise ValueError("reply too large")
            if ln in (b"END\r\n", b"OK\r\n", b"RESET\r\n", b"ERROR\r\n") or ln.startswith(
                    (b"CLIENT_ERROR", b"SERVER_ERROR")):
                return bytes(out)


class Backend:
    def __init__(self, host: str, port: int, timeout: float = 3.0, pool: int = 8,
                 on_reset: Callable[[str], None] | None = None) -> None:
        self.host, self.port, self.timeout, self.pool_size = host, port, timeout, pool
        self.addr = f"{host}:{port}"
        self.idle: list[Conn] = []
        self.up = False
        self.on_reset = on_reset or (lambda addr: None)
        self.identity: tuple[int, int] | None = None  # (pid, uptime) seen last
        self.item_size_max = 1 << 20
        self.version: bytes | None = None
        self.task: asyncio.Task | None = None
        self.changed = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._monitor())

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        for c in self.idle:
            c.w.close()
        self.idle.clear()

    async def _open(self) -> Conn:
        r, w = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                      self.timeout)
        return Conn(r, w)

    async def call(self, request: bytes, read: Callable[[Conn], Awaitable[Any]]) -> Any:
        """Send `request`, read the reply with `read`; BackendError on any failure."""
        if not self.up:
            raise BackendError("marked down")
        conn = None
        try:
            conn = self.idle.pop() if self.idle else await self._open()
            conn.w.write(request)
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps every read in a new task
            async with asyncio.timeout(self.timeout):
                res = await read(conn)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ValueError) as e:
            if conn is not None:
                conn.w.close()
            self._down(f"{e.__class__.__name__}: {e}")
            raise BackendError(str(e)) from None
        except BaseException:
            if conn is not None:  # cancelled mid-reply: the stream is out of step
                conn.w.close()
            raise
        if len(self.idle) < self.pool_size:
            self.idle.append(conn)
        else:
            conn.w.close()
        return res

    def _down(self, why: str) -> None:
        if self.up:
            log.error("backend down addr=%s why=%s", self.addr, why)
        self.up = False
        for c in self.idle:
            c.w.close()
        self.idle.clear()

    async def _probe(self) -> tuple[int, int]:
        c = await self._open()
        try:
            c.w.write(b"stats\r\n")
            text = await asyncio.wait_for(c.block(), self.timeout)
            st = _stats(text)
            if self.version is None or self.identity is None:
                c.w.write(b"stats settings\r\n")
                settings = _stats(await asyncio.wait_for(c.block(), self.timeout))
                if settings.get(b"item_size_max", b"").isdigit():
                    self.item_size_max = int(settings[b"item_size_max"])
            self.version = st.get(b"version", self.version)
            return int(st.get(b"pid", b"0")), int(st.get(b"uptime", b"0"))
        finally:
            c.w.close()

    async def _monitor(self) -> None:
        # why a probe loop: a restarted memcached is empty, so values cached from before the
        # restart must go even when no request failed in between
        while True:
            try:
                ident = await self._probe()
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError, ValueError) as e:
                self._down(f"probe: {e.__class__.__name__}")
                await asyncio.sleep(0.2)
                continue
            restarted = self.identity is not None and (
                ident[0] != self.identity[0] or ident[1] < self.identity[1])
            if not self.up or restarted:
                self.on_reset(self.addr)
                for c in self.idle:
                    c.w.close()
                self.idle.clear()
                log.info("backend up addr=%s pid=%d restarted=%s", self.addr, ident[0],
                         restarted)
            self.identity = ident
            self.up = True
            self.changed.set()
            await asyncio.sleep(0.25)


def _stats(text: bytes) -> dict[bytes, bytes]:
    out = {}
    for ln in text.split(b"\r\n"):
        f = ln.split(b" ", 2)
        if len(f) == 3 and f[0] == b"STAT":
            out[f[1]] = f[2]
    return out
