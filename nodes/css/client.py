"""Asyncio client library of CSS.

Finds the leader (redirect hints, else round-robin with backoff 50 ms doubling to 1 s), retries
across failover with the same (session, seq) so a request runs at most once, keeps the session
alive every timeout/4, tracks client-side validity (jeopardy) and delivers pushed events
(RECALL, GRANTED, EXPIRED) on `events`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from typing import Any

from .core.validate import MAX_CLIENT_STR
from .errors import RequestError, Unavailable
from .wire import frame, read_frame, unpack

RETRY_CODES = ("ENOT_LEADER", "ESTOPPING")
# the server keeps replies only for ack < seq <= ack + WINDOW (spec 2.9, max_inflight) and
# refuses a seq beyond it with ESTALE_SEQ: the library queues instead of sending such a seq
WINDOW = 128


class _Link:
    def __init__(self, addr: tuple[str, int], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, owner: CssClient) -> None:
        self.addr, self.reader, self.writer, self.owner = addr, reader, writer, owner
        self.futs: dict[int, asyncio.Future] = {}
        self.task = asyncio.get_event_loop().create_task(self._read())
        self.closed = False

    async def _read(self) -> None:
        try:
            while True:
                body = await read_frame(self.reader, 64 << 20)
                if body is None:
                    break
                msg = unpack(body)
                if msg.get("t") == "event":
                    self.owner._event(msg)
                    continue
                fut = self.futs.pop(msg.get("id"), None)  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                if msg.get("seq") in self.owner.abandoned:
                    self.owner._late_reply(msg["seq"], msg)  # type: ignore[index]
        except Exception:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.task is not asyncio.current_task():
            self.task.cancel()
        for f in self.futs.values():
            if not f.done():
                f.set_exception(ConnectionError("connection lost"))
                f.exception()  # mark retrieved: the waiter may already have timed out
        self.futs.clear()
        try:
            self.writer.close()
        except Exception:
            pass


class CssClient:
    def __init__(self, members: list[tuple[str, int]], *, request_timeout: float = 10.0,
                 attempt_timeout: float = 1.5, session_timeout_ms: int = 10000,
                 client_name: str = "css-client", rho: float = 0.05,
                 margin: float = 0.2) -> None:
        self.members = [tuple(m) for m in members]
        self.request_timeout = request_timeout
        self.attempt_timeout = attempt_timeout
        self.session_timeout_ms = session_timeout_ms
        # the server refuses longer strings (EPROTO): status lists them (spec 2.10)
        self.info = {"host": socket.gethostname()[:MAX_CLIENT_STR], "pid": os.getpid(),
                     "name": client_name[:MAX_CLIENT_STR]}
        self.rho, self.margin = rho, margin
        self.target = 0
        self.leader: tuple[str, int] | None = None
        self.link: _Link | None = None
        self.ids = itertools.count(1)
        self.sid: int | None = None
        self.tok = os.urandom(12).hex()
        self.seq = 0
        self.done: set[int] = set()
        self.ack = 0
        self.valid_until = 0.0
        self.expired = False
        self.events: asyncio.Queue = asyncio.Queue()
        self.grants: dict[int, dict] = {}
        self.grant_waiters: dict[int, asyncio.Future] = {}
        self.ka_task: asyncio.Task | None = None
        self.old_links: list[_Link] = []  # links whose reader task may still run
        self.window_waiters: list[asyncio.Future] = []
        self.lock_names: dict[int, str] = {}  # seq -> name of a blocking lock under way
        self.abandoned: dict[int, str] = {}  # blocking locks given up on: a grant may follow

    # ---- connections -----------------------------------------------------------------------
    async def _connect(self) -> _Link:
        if self.link is not None and not self.link.closed:
            return self.link
        addr = self.leader or self.members[self.target % len(self.members)]
        self._prune_links()
        r, w = await asyncio.wait_for(asyncio.open_connection(addr[0], addr[1]),
                                      self.attempt_timeout)
        self.link = _Link(addr, r, w, self)
        self.old_links.append(self.link)
        return self.link

    def _prune_links(self) -> None:
        # finished reader tasks need no waiting (aclose); keep only those still running
        self.old_links = [lk for lk in self.old_links if not lk.task.done()]

    def _next_member(self, hint: dict | None) -> None:
        if self.link is not None:
            self.link.close()
            self._prune_links()
            self.link = None
        if hint and hint.get("tcp"):
            self.leader = (hint["tcp"][0], int(hint["tcp"][1]))
        else:
            self.leader = None
            self.target += 1

    def _event(self, msg: dict) -> None:
        if msg.get("ev") == "GRANTED":
            seq, reply = msg.get("seq"), msg.get("reply")
            if not isinstance(reply, dict):
                return
            fut = self.grant_waiters.pop(seq, None)  # type: ignore[arg-type]
            if fut is not None and not fut.done():
                fut.set_result({"ok": True, **reply} if reply.get("ok") else reply)
                return
            if seq in self.abandoned:
                self._late_reply(seq, reply)  # type: ignore[arg-type]
            return
        self.events.put_nowait(msg)

    def _late_reply(self, seq: int, reply: dict) -> None:
        """The reply to a blocking lock its caller gave up on (timed out, cancelled): if it
        is a grant, the lock is ours now; tell the owner of `events` so it can unlock it
        (else it stays held, and nobody here knows)."""
        name = self.abandoned.pop(seq, None)
        if name and reply.get("ok"):
            self.events.put_nowait({"ev": "GRANTED", "late": True, "name": name, "seq": seq,
                                    "reply": reply})

    def _mark_expired(self) -> None:
        if not self.expired:
            self.expired = True
            self.events.put_nowait({"ev": "EXPIRED", "sid": self.sid})

    async def _request(self, msg: dict, timeout: float | None = None) -> dict:
        """Send `msg` to the leader until it answers with anything but a redirect."""
        deadline = time.monotonic() + (timeout or self.request_timeout)
        backoff = 0.05
        dead = full = 0
        seq = msg.get("seq")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"no leader answered {msg.get('t')} in time")
            rep = None
            try:
                link = await self._connect()
                rid = next(self.ids)
                fut = asyncio.get_event_loop().create_future()
                link.futs[rid] = fut
                waiters = [fut]
                if seq is not None and msg.get("t") == "lock":
                    g = asyncio.get_event_loop().create_future()
                    self.grant_waiters[seq] = g
                    waiters.append(g)
                link.writer.write(frame({**msg, "v": 1, "id": rid}))
                done, _ = await asyncio.wait(waiters, timeout=min(left, self.attempt_timeout),
                                             return_when=asyncio.FIRST_COMPLETED)
                for d in done:
                    rep = d.result()
                    break
                if rep is None:
                    link.futs.pop(rid, None)
                    if msg.get("t") == "lock" and msg.get("wait"):
                        continue  # still queued on the leader: keep waiting on the same link
            except (TimeoutError, OSError, ConnectionError):
                rep = None
            disk = rep is not None and rep.get("err") == "ENOSPC" and (
                rep.get("info") or {}).get("disk")
            if disk:
                # that member's disk is full: another may lead; all of them full is an answer
                full += 1
                if full >= len(self.members):
                    return rep
                rep = None
            elif rep is not None:
                full = 0
            if rep is not None and rep.get("err") not in RETRY_CODES:
                return rep
            if rep is not None:
                dead = 0
            self._next_member(rep.get("leader") if rep else None)
            if rep is not None and not rep.get("leader"):
                # a live member without a leader: an election is running; poll at a steady
                # 50 ms so the new leader is found at once (backoff is for dead members)
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            elif rep is None:
                dead += 1
                if dead >= len(self.members):  # a whole round without an answer: back off
                    dead = 0
                    await asyncio.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                    backoff = min(backoff * 2, 1.0)

    # ---- sessions --------------------------------------------------------------------------
    async def open(self) -> int:
        """Open a session; returns its id and starts the keep-alive task."""
        rep = await self._request({"t": "open", "tok": self.tok, "client": self.info,
                                   "timeout_ms": self.session_timeout_ms})
        if not rep.get("ok"):
            raise RequestError(rep.get("err", "EPROTO"))
        self.sid = rep["res"]["sid"]
        self.session_timeout_ms = rep["res"]["timeout_ms"]
        self.valid_until = time.monotonic() + self._valid_for()
        self.ka_task = asyncio.get_event_loop().create_task(self._keepalive_loop())
        return self.sid

    def _valid_for(self) -> float:
        t = self.session_timeout_ms / 1000
        return t * (1 - self.rho) / (1 + self.rho) - self.margin

    def in_jeopardy(self) -> bool:
        """True when the session may have expired: locks must be treated as lost."""
        return self.expired or time.monotonic() >= self.valid_until

    async def keepalive(self) -> None:
        sent = time.monotonic()
        rep = await self._request({"t": "keepalive", "sid": self.sid, "tok": self.tok},
                                  timeout=self.session_timeout_ms / 4000)
        if rep.get("ok"):
            self.valid_until = max(self.valid_until, sent + self._valid_for())
        elif rep.get("err") == "ESESSION_EXPIRED":
            self._mark_expired()

    async def _keepalive_loop(self) -> None:
        while not self.expired:
            await asyncio.sleep(self.session_timeout_ms / 4000)
            try:
                await self.keepalive()
            except Exception:
                pass

    async def call(self, op: str, **args: Any) -> Any:
        """A logged session request; raises RequestError on an error reply."""
        # a request may only take a seq inside the server's window: a blocking lock waiting
        # at a low seq pins `ack`, and later requests queue here rather than draw ESTALE_SEQ
        while self.seq + 1 > self.ack + WINDOW:
            f = asyncio.get_event_loop().create_future()
            self.window_waiters.append(f)
            await f
        self.seq += 1
        seq = self.seq
        msg = {"t": op, "sid": self.sid, "tok": self.tok, "seq": seq, "ack": self.ack, **args}
        timeout = None
        waiting_lock = op == "lock" and args.get("wait")
        if waiting_lock:
            ms = args.get("wait_ms")
            timeout = self.request_timeout + (ms / 1000 if ms else 3600 * 24)
            self.lock_names[seq] = str(args.get("name"))
        try:
            rep = await self._request(msg, timeout)
        except BaseException:
            if waiting_lock:
                self.abandoned[seq] = self.lock_names.get(seq, "")
                while len(self.abandoned) > 4 * WINDOW:  # bounded: oldest first
                    del self.abandoned[next(iter(self.abandoned))]
            raise
        finally:
            self.grant_waiters.pop(seq, None)
            self.lock_names.pop(seq, None)
            # an abandoned seq never completes for us: count it done so the window moves
            self._complete(seq)
        if not rep.get("ok"):
            if rep.get("err") == "ESESSION_EXPIRED":
                self._mark_expired()
            raise RequestError(rep.get("err", "EPROTO"), info=rep.get("info"))
        return rep.get("res")

    def _complete(self, seq: int) -> None:
        self.done.add(seq)
        moved = False
        while self.ack + 1 in self.done:
            self.ack += 1
            self.done.discard(self.ack)
            moved = True
        if moved:
            waiters, self.window_waiters = self.window_waiters, []
            for f in waiters:
                if not f.done():
                    f.set_result(None)

    async def query(self, op: str, **args: Any) -> Any:
        """A read served by the leader (not logged)."""
        rep = await self._request({"t": op, "sid": self.sid, **args})
        if not rep.get("ok"):
            if rep.get("err") == "ESESSION_EXPIRED" and self.sid is not None:
                self._mark_expired()
            raise RequestError(rep.get("err", "EPROTO"), info=rep.get("info"))
        return rep.get("res")

    async def close(self) -> None:
        """Close the session: locks released, ephemeral files deleted."""
        await self._end("close")

    async def abort(self) -> None:
        """Abort the session: also deletes the files named by its write locks."""
        await self._end("abort")

    async def _end(self, op: str) -> None:
        if self.ka_task:
            self.ka_task.cancel()
        try:
            if self.sid is not None and not self.expired:
                await self.call(op)
        finally:
            self.expired = True
            await self.aclose()

    def disconnect(self) -> None:
        """Drop the connection and stop the keep-alive (without waiting: see aclose)."""
        if self.ka_task:
            self.ka_task.cancel()
        for link in [self.link, *self.old_links]:
            if link is not None:
                link.close()
        self.link = None

    async def aclose(self) -> None:
        """disconnect(), then wait until its tasks (keep-alive, readers) have finished, so
        that nothing is left pending when the event loop closes."""
        self.disconnect()
        tasks = [t for t in [self.ka_task, *(lk.task for lk in self.old_links)]
                 if t is not None and t is not asyncio.current_task()]
        self.old_links = []
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- operations ------------------------------------------------------------------------
    async def create(self, name: str, data: bytes = b"", ephemeral: bool = False) -> int:
        return (await self.call("create", name=name, data=data, ephemeral=ephemeral))["version"]

    async def write(self, name: str, data: bytes, create: bool = True) -> int:
        return (await self.call("write", name=name, data=data, create=create))["version"]

    async def cas(self, name: str, expect_version: int, data: bytes) -> int:
        return (await self.call("cas", name=name, expect_version=expect_version,
                                data=data))["version"]

    async def delete(self, name: str, expect_version: int | None = None) -> None:
        args = {} if expect_version is None else {"expect_version": expect_version}
        await self.call("delete", name=name, **args)

    async def delete_prefix(self, prefix: str) -> int:
        return (await self.call("delete_prefix", prefix=prefix))["count"]

    async def read(self, name: str) -> dict:
        """{data, version}; RequestError ENOENT if absent."""
        return await self.query("read", name=name)

    async def stat(self, name: str) -> dict:
        return await self.query("stat", name=name)

    async def list(self, prefix: str = "", after: str = "", limit: int = 1000) -> dict:
        """{names: [[name, version]...], more: bool}"""
        return await self.query("list", prefix=prefix, after=after, limit=limit)

    async def lock(self, name: str, mode: str = "W", wait: bool = False,
                   wait_ms: int | None = None, recall: bool = False) -> dict:
        """{mode, version[, released_read]}; EBUSY (try) or ETIMEDOUT (wait_ms ran out)."""
        args: dict = {"name": name, "mode": mode, "wait": wait, "recall": recall}
        if wait_ms is not None:
            args["wait_ms"] = wait_ms
        return await self.call("lock", **args)

    async def unlock(self, name: str) -> None:
        await self.call("unlock", name=name)

    async def counter_add(self, name: str, delta: int = 1, create: bool = True) -> int:
        return (await self.call("counter_add", name=name, delta=delta, create=create))["value"]

    async def counter_get(self, name: str) -> int:
        return (await self.query("counter_get", name=name))["value"]

    async def session_info(self) -> dict:
        return await self.query("session_info")

    # ---- administration (no session needed) -----------------------------------------------
    async def config(self) -> dict:
        """The replicated configuration as the answering member knows it."""
        rep = await self._request({"t": "config"})
        if not rep.get("ok"):
            raise RequestError(rep.get("err", "EPROTO"), info=rep.get("info"))
        return rep["res"]

    async def remove_learner(self, member_id: str | None = None, *, no: int | None = None,
                             expect_cfg: int | None = None) -> dict:
        """Remove a learner from the replicated configuration (abort a replace before its
        REPLACE is decided); give its `member_id`, or `no` for the learner joining as that line.
        Returns {cfg, removed, member_id}: `removed` is False when `member_id` was already
        retired (an earlier abort, the learner timeout, a finished replace), so retries are safe.
        Raises RequestError ENOT_LEARNER (info.state "voter": a decided REPLACE is the point of
        no return; "unknown": no such learner), ECONFIG_CHANGED (expect_cfg is not the current
        version), EBUSY (another configuration change is pending) or EINVAL."""
        if (member_id is None) == (no is None):
            raise ValueError("give exactly one of member_id and no")
        msg: dict = {"t": "remove_learner"}
        if member_id is not None:
            msg["member_id"] = member_id
        else:
            msg["no"] = no
        if expect_cfg is not None:
            msg["expect_cfg"] = expect_cfg
        rep = await self._request(msg)
        if not rep.get("ok"):
            raise RequestError(rep.get("err", "EPROTO"), str((rep.get("info") or {}).get(
                "what", "")), info=rep.get("info"))
        return rep["res"]

    async def hello(self) -> dict:
        rep = await self._request({"t": "hello", "client": self.info})
        return rep["res"]

    async def __aenter__(self) -> CssClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.close()
        except Exception:
            await self.aclose()
