"""Runs one parsed command for one pair under the delegations of spec 3.4 and 3.5."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..core import delegation as dm
from ..core.cache import ValueCache
from ..core.meta import Meta, absolute_exptime, key_name
from ..core.protocol import TOO_LARGE, Command, value_block
from ..errors import COLLISION, CSS_DOWN, POISONED, Reply
from .backend import Backend, BackendError, Conn
from .coherence import Coherence

log = logging.getLogger("memcache.cmd")

STORED, NOT_STORED = b"STORED\r\n", b"NOT_STORED\r\n"
NOT_FOUND, EXISTS, END = b"NOT_FOUND\r\n", b"EXISTS\r\n", b"END\r\n"


class Executor:
    def __init__(self, coh: Coherence, cache: ValueCache, proxy_id: int,
                 wall: Callable[[], float] = time.time) -> None:
        self.coh, self.cache, self.id, self.wall = coh, cache, proxy_id, wall
        self.counts = {"get_hits": 0, "get_misses": 0, "writes": 0, "errors": 0,
                       "flushes": 0, "meta_mismatch": 0}
        self.names: dict[bytes, str] = {}

    async def run(self, cmd: Command, be: Backend) -> bytes:
        """The reply bytes (empty under noreply); Reply errors become their line."""
        try:
            if cmd.too_large:
                if cmd.name == "set":  # memcached drops the old value too
                    await self._write(cmd, be, self._delete)
                out = TOO_LARGE
            else:
                out = await getattr(self, "_c_" + cmd.name)(cmd, be)
        except Reply as e:
            self.counts["errors"] += 1
            out = e.line
        return b"" if cmd.noreply else out

    # ---- reads -----------------------------------------------------------------------------
    def fast_get(self, cmd: Command, be: Backend) -> bytes | None:
        """A one-key get answered from a delegation already held and a valid cached value,
        synchronously (no await, so no other request can interleave); None means the full
        path is needed. Same rules as _c_get: the hold a request takes is only needed across
        an await, and there is none here."""
        coh = self.coh
        mgr = coh.mgr
        if len(cmd.keys) != 1 or mgr.ns != dm.NS_R or coh.jeopardy():
            return None
        key = cmd.keys[0]
        name = self.name_of(key)
        ks = mgr.keys.get(name)
        if ks is None or ks.state not in (dm.R, dm.W) or ks.holders or ks.release_after_use:
            return None
        m = ks.meta
        if m is not None and m.key != key:
            return None  # a collision: the full path gives the error
        mgr.keys.move_to_end(name)
        if m is None or not m.live(self.wall()) or not m.on(be.addr):
            self.counts["get_misses"] += 1
            return END
        if not be.up:
            return None
        e = self.cache.get(be.addr, key, m.meta_cas, time.monotonic())
        if e is None:
            return None
        self.counts["get_hits"] += 1
        return value_block(key, m.flags, e.data, m.meta_cas if cmd.name == "gets" else None) + END

    def name_of(self, key: bytes) -> str:
        # why memoized: a blake2b per request showed in profiles; bounded like the LRU
        name = self.names.get(key)
        if name is None:
            if len(self.names) >= 4 * self.coh.mgr.max_items + 1024:
                self.names.clear()
            name = self.names[key] = key_name(self.coh.ns, key)
        return name

    async def _c_get(self, cmd: Command, be: Backend) -> bytes:
        out = []
        for key in cmd.keys:  # one key at a time: never wait for a key while holding another
            name = self.name_of(key)
            ks = await self.coh.acquire(name, key, dm.R)
            try:
                v = await self._read(ks, key, be)
            finally:
                self.coh.unhold(name)
            if v is None:
                self.counts["get_misses"] += 1
            else:
                self.counts["get_hits"] += 1
                out.append(value_block(key, v[0], v[1], v[2] if cmd.name == "gets" else None))
        return b"".join(out) + END

    _c_gets = _c_get

    def _present(self, ks: dm.KeyState, key: bytes, be: Backend | None = None) -> Meta | None:
        m = ks.meta
        if m is not None and m.key != key:
            raise Reply(COLLISION)
        if m is None or not m.live(self.wall()):
            return None
        if be is not None and not m.on(be.addr):
            return None
        return m

    async def _read(self, ks: dm.KeyState, key: bytes, be: Backend) -> tuple | None:
        if self.coh.jeopardy():
            raise Reply(CSS_DOWN)
        m = self._present(ks, key, be)
        if m is None:
            return None
        if not be.up:
            raise BackendError("down")
        now = time.monotonic()
        e = self.cache.get(be.addr, key, m.meta_cas, now)
        if e is not None:
            return m.flags, e.data, m.meta_cas
        vals = await be.call(b"get " + key + b"\r\n", Conn.values)
        v = vals.get(key)
        if v is None:
            return None  # evicted: legal
        if v[0] != m.flags or (m.bytes is not None and len(v[1]) != m.bytes):
            self.counts["meta_mismatch"] += 1
            log.warning("backend value differs from metadata key=%r: served as a miss", key)
            return None
        if self.coh.jeopardy():
            raise Reply(CSS_DOWN)
        self.cache.put(be.addr, key, m.meta_cas, m.flags, v[1], now)
        return m.flags, v[1], m.meta_cas

    # ---- writes ----------------------------------------------------------------------------
    async def _write(self, cmd: Command, be: Backend,
                     fn: Callable[[Command, Backend, dm.KeyState], Awaitable[bytes]]) -> bytes:
        name = self.name_of(cmd.key)
        ks = await self.coh.acquire(name, cmd.key, dm.W)
        try:
            if ks.poisoned:
                raise Reply(POISONED)
            if self.coh.jeopardy():
                raise Reply(CSS_DOWN)
            self.counts["writes"] += 1
            return await fn(cmd, be, ks)
        finally:
            self.coh.unhold(name)

    async def _backend_write(self, be: Backend, ks: dm.KeyState, req: bytes,
                             read: Callable[[Conn], Awaitable[Any]] = Conn.line) -> Any:
        """A backend write under W: refused near jeopardy; indeterminate failure poisons."""
        if not be.up:
            raise BackendError("down")
        self.coh.check_write()
        try:
            return await be.call(req, read)
        except BackendError:
            self.cache.drop(be.addr, ks.key)
            await self.coh.poison(ks)
            raise

    def _set_meta(self, ks: dm.KeyState, be: Backend, meta: Meta | None) -> None:
        ks.meta, ks.dirty = meta, True
        if meta is None:
            self.cache.drop(be.addr, ks.key)

    def _new_meta(self, ks: dm.KeyState, be: Backend, cas: int, flags: int, nbytes: int | None,
                  exptime: float) -> Meta:
        epoch = (ks.meta.epoch if ks.meta is not None else 0) + 1
        return Meta(ks.key, cas, flags, nbytes, exptime, [{"addr": be.addr, "epoch": epoch}],
                    epoch, self.id)

    async def _store(self, cmd: Command, be: Backend, ks: dm.KeyState) -> bytes:
        present = self._present(ks, cmd.key) is not None  # presence by metadata alone
        if (cmd.name == "add" and present) or (cmd.name == "replace" and not present):
            return NOT_STORED
        cas = await self.coh.new_cas()
        exp = absolute_exptime(cmd.exptime, self.wall())
        req = b"set %s %d %d %d\r\n%s\r\n" % (cmd.key, cmd.flags, cmd.exptime, len(cmd.data),
                                               cmd.data)
        rep = await self._backend_write(be, ks, req)
        if rep != STORED:  # out of memory / too large: memcached may have dropped the old one
            self._set_meta(ks, be, None)
            return rep
        self._set_meta(ks, be, self._new_meta(ks, be, cas, cmd.flags, len(cmd.data), exp))
        self.cache.put(be.addr, cmd.key, cas, cmd.flags, cmd.data, time.monotonic())
        return STORED

    async def _c_set(self, cmd: Command, be: Backend) -> bytes:
        return await self._write(cmd, be, self._store)

    _c_add = _c_replace = _c_set

    async def _c_append(self, cmd: Command, be: Backend) -> bytes:
        return await self._write(cmd, be, self._append)

    _c_prepend = _c_append

    async def _append(self, cmd: Command, be: Backend, ks: dm.KeyState) -> bytes:
        m = self._present(ks, cmd.key, be)
        if m is None:
            return NOT_STORED
        cas = await self.coh.new_cas()
        req = b"%s %s 0 0 %d\r\n%s\r\n" % (cmd.name.encode(), cmd.key, len(cmd.data), cmd.data)
        rep = await self._backend_write(be, ks, req)
        if rep == NOT_STORED:
            self._set_meta(ks, be, None)
            return NOT_STORED
        if rep != STORED:
            return rep
        nbytes = None if m.bytes is None else m.bytes + len(cmd.data)
        old = self.cache.get(be.addr, cmd.key, m.meta_cas, time.monotonic())
        self._set_meta(ks, be, self._new_meta(ks, be, cas, m.flags, nbytes, m.exptime))
        if old is not None and nbytes is not None:
            data = old.data + cmd.data if cmd.name == "append" else cmd.data + old.data
            self.cache.put(be.addr, cmd.key, cas, m.flags, data, time.monotonic())
        else:
            self.cache.drop(be.addr, cmd.key)
        return STORED

    async def _c_cas(self, cmd: Command, be: Backend) -> bytes:
        return await self._write(cmd, be, self._cas)

    async def _cas(self, cmd: Command, be: Backend, ks: dm.KeyState) -> bytes:
        m = self._present(ks, cmd.key, be)
        if m is None:
            return NOT_FOUND
        if cmd.cas != m.meta_cas:
            return EXISTS
        if not be.up:
            raise BackendError("down")
        vals = await be.call(b"gets " + cmd.key + b"\r\n", Conn.values)
        v = vals.get(cmd.key)
        if v is None or v[2] is None:
            self._set_meta(ks, be, None)
            return NOT_FOUND
        cas = await self.coh.new_cas()
        exp = absolute_exptime(cmd.exptime, self.wall())
        req = b"cas %s %d %d %d %d\r\n%s\r\n" % (cmd.key, cmd.flags, cmd.exptime,
                                                  len(cmd.data), v[2], cmd.data)
        rep = await self._backend_write(be, ks, req)
        if rep != STORED:  # someone wrote behind the proxies' back: show a miss from now on
            self._set_meta(ks, be, None)
            return NOT_FOUND if rep == NOT_FOUND else rep
        self._set_meta(ks, be, self._new_meta(ks, be, cas, cmd.flags, len(cmd.data), exp))
        self.cache.put(be.addr, cmd.key, cas, cmd.flags, cmd.data, time.monotonic())
        return STORED

    async def _c_delete(self, cmd: Command, be: Backend) -> bytes:
        return await self._write(cmd, be, self._delete)

    async def _delete(self, cmd: Command, be: Backend, ks: dm.KeyState) -> bytes:
        if self._present(ks, cmd.key) is None:
            return NOT_FOUND
        rep = await self._backend_write(be, ks, b"delete " + cmd.key + b"\r\n")
        self._set_meta(ks, be, None)
        return rep

    async def _c_incr(self, cmd: Command, be: Backend) -> bytes:
        return await self._write(cmd, be, self._incr)

    _c_decr = _c_incr

    async def _incr(self, cmd: Command, be: Backend, ks: dm.KeyState) -> bytes:
        m = self._present(ks, cmd.key, be)
        if m is None:
            return NOT_FOUND
        cas = await self.coh.new_cas()
        rep = await self._backend_write(
            be, ks, b"%s %s %d\r\n" % (cmd.name.encode(), cmd.key, cmd.delta))
        if rep == NOT_FOUND:
            self._set_meta(ks, be, None)
            return NOT_FOUND
        if not rep[:-2].isdigit():
            return rep  # non-numeric value: nothing changed
        # memcached pads a shorter result in place, so the stored length is not known here
        self._set_meta(ks, be, self._new_meta(ks, be, cas, m.flags, None, m.exptime))
        self.cache.drop(be.addr, cmd.key)
        return rep

    async def _c_touch(self, cmd: Command, be: Backend) -> bytes:
        return await self._write(cmd, be, self._touch)

    async def _touch(self, cmd: Command, be: Backend, ks: dm.KeyState) -> bytes:
        m = self._present(ks, cmd.key, be)
        if m is None:
            return NOT_FOUND
        rep = await self._backend_write(be, ks, b"touch %s %d\r\n" % (cmd.key, cmd.exptime))
        if rep == b"TOUCHED\r\n":
            m.exptime = absolute_exptime(cmd.exptime, self.wall())
            ks.dirty = True
        elif rep == NOT_FOUND:
            self._set_meta(ks, be, None)
        return rep

    # ---- the rest --------------------------------------------------------------------------
    async def _c_flush_all(self, cmd: Command, be: Backend) -> bytes:
        async def backend_flush() -> None:
            if not be.up:
                raise BackendError("down")
            await be.call(b"flush_all\r\n", Conn.line)

        self.counts["flushes"] += 1
        if cmd.delay > 0:
            self.coh.delayed_flush(cmd.delay, backend_flush)
            return b"OK\r\n"
        await self.coh.flush(backend_flush)
        return b"OK\r\n"

    async def _c_stats(self, cmd: Command, be: Backend) -> bytes:
        if cmd.args and cmd.args[0] == b"paxos":
            return self.paxos_stats()
        if not be.up:
            raise BackendError("down")
        return await be.call(cmd.line + b"\r\n", Conn.block)

    def paxos_stats(self) -> bytes:
        st = {**self.counts, **self.coh.stats, **self.coh.mgr.counts(),
              "cache_items": len(self.cache.entries), "cache_hits": self.cache.hits,
              "checksum_errors": self.cache.checksum_errors,
              "session_valid_ms": int(max(0.0, self.coh.valid_for()) * 1000),
              "jeopardy": int(self.coh.jeopardy())}
        return b"".join(b"STAT %s %d\r\n" % (k.encode(), v) for k, v in st.items()) + END

    async def _c_version(self, cmd: Command, be: Backend) -> bytes:
        if be.version is None:
            if not be.up:
                raise BackendError("down")
            ln = await be.call(b"version\r\n", Conn.line)
            if ln.startswith(b"VERSION "):
                be.version = ln[8:-2]
            return ln
        return b"VERSION " + be.version + b"\r\n"

    async def _c_verbosity(self, cmd: Command, be: Backend) -> bytes:
        return b"OK\r\n"
