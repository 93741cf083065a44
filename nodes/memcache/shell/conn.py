"""One client connection as an asyncio protocol.

Why a protocol and not streams: a get whose key is already delegated and cached is answered
inside `data_received`, with no task switch and no future per request (streams cost one of
each per request, the larger part of the proxy's CPU per get). The first command that must
wait (CSS, backend) starts a task, which then serves every later command of the connection in
order until the parsed input runs dry, so replies always leave in request order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ..core.protocol import Close, Command, Parser, Reply

log = logging.getLogger("memcache")


# What a connection uses of the proxy and of its pair's server (`shell.server` makes both and
# imports this module, so they are described here rather than imported back).
class Proxy(Protocol):
    suppressed: int
    workers: Any  # asyncio.Semaphore
    exe: Any  # the request executor


class PairServer(Protocol):
    backend: Any
    closing: bool
    conns: set[Any]
    pair: Any


class ClientConn(asyncio.Protocol):
    def __init__(self, proxy: Proxy, ps: PairServer) -> None:
        self.proxy, self.ps = proxy, ps
        self.parser = Parser(ps.backend.item_size_max)
        # input held while a task runs: a value block must fit whole, so twice the item size
        self.max_buffer = 2 * ps.backend.item_size_max + 64 * 1024
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task | None = None
        self.closed = False
        self.reading_paused = False
        self.writable: asyncio.Future | None = None
        self.eof = False

    # ---- transport callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ps.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.ps.conns.discard(self)
        self._wake_writer()

    def eof_received(self) -> bool:
        # the client half-closed: answer what it sent, then close (as memcached does)
        self.eof = True
        if self.task is None:
            self.close()
        return True  # keep the transport open for the replies still to come

    def pause_writing(self) -> None:
        # the client does not read its replies: stop reading its requests
        self.writable = asyncio.get_running_loop().create_future()
        self._pause_reading()

    def resume_writing(self) -> None:
        self._wake_writer()
        if self.task is None:
            self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.parser.feed(data)
        if self.task is not None:
            if len(self.parser.buf) > self.max_buffer:
                self._pause_reading()  # the task reads on when it has caught up
            return
        try:
            self._pump()
        except Exception:  # a bug must cost one connection, never the proxy
            log.exception("connection failed client=%s", self.ps.pair.key())
            self.close()

    # ---- serving ---------------------------------------------------------------------------
    def _pump(self) -> None:
        """Serve parsed input synchronously until it runs dry or a command must wait."""
        out: list[bytes] = []
        while not self.closed:
            item = self.parser.next()
            if item is None:
                break
            if not self._quick(item, out):
                self._write(out)
                self.task = asyncio.get_running_loop().create_task(self._slow(item))
                return
        self._write(out)

    def _quick(self, item: object, out: list[bytes]) -> bool:
        """Handle `item` without waiting if it can be; False for a command that must wait."""
        if isinstance(item, Close):
            log.warning("closing connection client=%s why=%s", self.ps.pair.key(), item.reason)
            out.append(item.data)
            self._write(out)
            self.close()
            return True
        if isinstance(item, Reply):
            if item.suppressed:
                self.proxy.suppressed += 1
            out.append(item.data)
            return True
        assert isinstance(item, Command)
        if item.name == "quit":
            self._write(out)
            self.close()
            return True
        if item.name in ("get", "gets") and not self.ps.closing:
            fast = self.proxy.exe.fast_get(item, self.ps.backend)
            if fast is not None:
                out.append(fast)
                return True
        return False

    async def _slow(self, cmd: Command) -> None:
        try:
            item: object = cmd
            while not self.closed:
                async with self.proxy.workers:
                    res = await self.proxy.exe.run(item, self.ps.backend)  # type: ignore[arg-type]
                self._write([res])
                if self.ps.closing:
                    self.close()
                    return
                if self.writable is not None:
                    await self.writable
                out: list[bytes] = []
                while not self.closed:
                    item = self.parser.next()
                    if item is None or not self._quick(item, out):
                        break
                self._write(out)
                if item is None:
                    return
        except Exception:
            log.exception("connection failed client=%s", self.ps.pair.key())
            self.close()
        finally:
            self.task = None
            if self.eof:
                self.close()
            elif not self.closed and self.writable is None:
                self._resume_reading()

    # ---- helpers ---------------------------------------------------------------------------
    def _write(self, out: list[bytes]) -> None:
        if out and not self.closed and self.transport is not None:
            data = b"".join(out)
            if data:
                self.transport.write(data)
        out.clear()

    def close(self) -> None:
        """Close after the replies already written (the transport flushes them first)."""
        if not self.closed:
            self.closed = True
            self.ps.conns.discard(self)
            if self.transport is not None:
                self.transport.close()
            self._wake_writer()

    def _wake_writer(self) -> None:
        w, self.writable = self.writable, None
        if w is not None and not w.done():
            w.set_result(None)

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()
