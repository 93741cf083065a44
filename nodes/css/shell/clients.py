"""Client port of the shell: connection limits, frame reading, request validation, status.

The same port carries member TCP links: a connection whose first frame is a signed
`PEER_HELLO` becomes a peer link (larger frame limit, every later frame signed too).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from .. import PROTOCOL, VERSION
from ..core.types import Client, Closed
from ..core.validate import BadRequest, check_request
from ..errors import ProtocolError
from ..wire import HDR, MAX_FRAME, MAX_PEER_FRAME, frame, pack, unpack

log = logging.getLogger("css.node")
STATUS_CLIENTS = 1000  # default page of status.clients
STATUS_RETIRED = 64  # status shows the newest retired member ids


def _scalar_id(rid: Any) -> bool:
    return isinstance(rid, int) and -(1 << 63) <= rid < (1 << 63) or (
        isinstance(rid, str) and len(rid) <= 128)


class Conn:
    """One client connection; replies are queued on its transport."""

    def __init__(self, writer: asyncio.StreamWriter, max_buffer: int = 16 << 20) -> None:
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.closed = False
        self.max_buffer = max_buffer
        self.overflow = False

    def send(self, msg: dict) -> None:
        if self.closed:
            return
        try:
            self.writer.write(frame(msg))
            if self.writer.transport.get_write_buffer_size() > self.max_buffer:
                # a client that does not read its replies: cut it off rather than buffer
                self.overflow = self.closed = True
                self.writer.transport.abort()
        except Exception:
            self.closed = True


class FrameTimeout(Exception):
    pass


class ClientMixin:
    """Part of Node: see node.py for the attributes used here."""

    async def _read_frame(self, reader: asyncio.StreamReader, limit: int) -> tuple[bytes, int]:
        """(body, reserved bytes); the first byte may take forever (an idle connection), the
        rest of the frame must arrive within frame_timeout. Raises EOFError, FrameTimeout,
        ValueError (oversized) or MemoryError (the server holds too many large frames)."""
        try:
            first = await reader.readexactly(1)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            raise EOFError from e
        try:
            async with asyncio.timeout(self.guard.lim.frame_timeout):
                (n,) = HDR.unpack(first + await reader.readexactly(3))
                if n > limit:
                    raise ValueError(f"EFRAME: frame of {n} bytes exceeds {limit}")
                if not self.guard.reserve(n):
                    raise MemoryError("EBUSY: too many large frames in progress")
                try:
                    return await reader.readexactly(n), n
                except BaseException:
                    self.guard.unreserve(n)
                    raise
        except TimeoutError:
            raise FrameTimeout from None
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            raise EOFError from e

    async def on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(writer, self.guard.lim.max_write_buffer)
        host = str(conn.peer[0]) if conn.peer else "?"
        why = self.guard.admit(host)
        if why is not None:
            log.warning("connection refused: %s", why)
            conn.send({"v": 1, "t": "reply", "ok": False, "err": "EBUSY", "msg": why})
            writer.close()
            return
        self.conns.add(conn)
        peer_from: int | None = None
        try:
            while not conn.closed:
                try:
                    body, held = await self._read_frame(
                        reader, MAX_PEER_FRAME if peer_from is not None else MAX_FRAME)
                except EOFError:
                    break
                except FrameTimeout:
                    self.guard.refused["frame_timeout"] += 1
                    log.warning("connection from %s closed: frame not completed within %ss",
                                host, self.guard.lim.frame_timeout)
                    break
                except (ValueError, MemoryError) as e:
                    code = str(e).split(":", 1)[0]
                    conn.send({"v": 1, "t": "reply", "ok": False, "err": code, "msg": str(e)})
                    log.warning("connection from %s closed: %s", host, e)
                    break
                self.guard.unreserve(held)
                if peer_from is not None:
                    msg = self.peer_message(body)
                    frm = None if msg is None else self._accept_peer(msg)
                    if frm is not None and frm >= 0 and msg["t"] == "SNAP_GET":
                        await self.serve_chunk(writer, msg)
                        await writer.drain()
                    elif frm is not None and not self.paused() and not self._hook_drop(
                            frm, "in"):
                        self.peer_in(frm, msg)
                    continue
                try:
                    msg = unpack(body)
                except ProtocolError as e:
                    hello = self.peer_message(body) if self.auth.on else None
                    if hello is not None and hello.get("t") == "PEER_HELLO":
                        peer_from = self._accept_peer(hello)
                        if peer_from is None:
                            break
                        continue
                    conn.send({"v": 1, "t": "reply", "ok": False, "err": "EPROTO",
                               "msg": str(e)})
                    continue
                if msg["t"] == "PEER_HELLO":
                    if self.auth.on:
                        self.auth_failures += 1  # a member link must be signed
                        break
                    peer_from = self._accept_peer(msg)
                    if peer_from is None:
                        break
                    continue
                self.on_client(conn, msg)
                await writer.drain()
        finally:
            self.guard.release(host)
            if conn.overflow:
                self.guard.refused["write_buffer"] += 1
                log.warning("connection from %s cut off: unread replies above %d bytes", host,
                            conn.max_buffer)
            conn.closed = True
            self.conns.discard(conn)
            self.clients.pop(conn, None)
            self.feed(Closed(conn))
            try:
                writer.close()
            except Exception:
                pass

    def on_client(self, conn: Conn, msg: dict) -> None:
        try:
            msg = check_request(msg)
        except BadRequest as e:
            rid = msg.get("id")
            conn.send({"v": 1, "t": "reply", "id": rid if _scalar_id(rid) else None,
                       "ok": False, "err": "EPROTO", "msg": str(e)})
            return
        t = msg["t"]
        self.clients.setdefault(conn, {})
        if isinstance(msg.get("sid"), int):
            self.clients[conn]["sid"] = msg["sid"]
        base = {"v": 1, "t": "reply", "id": msg.get("id"), "ok": True}
        if t == "ping":
            conn.send({**base, "res": "pong"})
        elif t == "status":
            conn.send({**base, "res": self.status(msg.get("clients_after", 0),
                                                  msg.get("clients_limit", STATUS_CLIENTS))})
        elif t in ("hello", "members"):
            if isinstance(msg.get("client"), dict):
                self.clients[conn]["client"] = msg["client"]
            conn.send({**base, "res": {
                "no": self.no, "leader": self.r.leader_hint(), "epoch": self.r.px.epoch(),
                "cfg": self.r.cfg["version"], "version": VERSION, "protocol": PROTOCOL,
                "members": [{"no": m["no"], "tcp": m["tcp"]}
                            for _i, m in sorted(self.r.members.items())],
                "limits": {"max_frame": MAX_FRAME, "max_file": 65536, "max_inflight": 128,
                           "max_state_bytes": self.r.t.max_state_bytes}}})
        elif self.disk_full is not None:
            # not even a read: a member that cannot write has stopped taking part (no lease)
            conn.send({**base, "ok": False, "err": "ENOSPC", "info": {"disk": True},
                       "msg": f"disk full on member {self.no}: {self.disk_full}"})
        else:
            self.feed(Client(conn, msg))

    # ---- status ----------------------------------------------------------------------------
    def status(self, clients_after: int = 0, clients_limit: int = STATUS_CLIENTS) -> dict:
        """The status map (2.10). Lists that grow with use are paged or cut so the reply
        always fits one frame: `clients` from sid `clients_after` on, at most `clients_limit`
        (fewer when the names are long), with `clients_total` and `clients_next` (the sid to
        ask from next, or null)."""
        st = self.r.status(self.now())
        cfg = st["config"]
        if len(cfg["retired"]) > STATUS_RETIRED:
            cfg["retired_total"] = len(cfg["retired"])
            cfg["retired"] = cfg["retired"][-STATUS_RETIRED:]
        sids = [sid for sid in sorted(self.r.svc.sessions) if sid > clients_after]
        clients = [self._client_entry(sid) for sid in sids[:clients_limit]]
        out = {"running": True, "cell": self.cell, "no": self.no, "cell_id": self.cell_id,
               "member_id": self.member_id, "pid": os.getpid(),
               "version": VERSION, "protocol": PROTOCOL, **st,
               "connected": [m["no"] for m in st["members"] if m["connected"]],
               "config_drift": self.config_drift(), "clients": clients,
               "clients_total": len(self.r.svc.sessions), "clients_next": None,
               "dropped": self.dropped, "auth": self.auth.on,
               "auth_failures": self.auth_failures, "peer_invalid": self.peer_invalid,
               **self.guard.status(),
               "incarnation": self.info.get("incarnation"),
               "disk_full": self.disk_full is not None, "disk_error": self.disk_full,
               **self.snap_status(), **self.hook_status(),
               "init_seen": (self.init_wait or {}).get("seen", {}),
               "waiting_for": (self.init_wait or {}).get("waiting_for", []),
               "event_loop": self.info.get("event_loop"), "direct_sent": self.direct_sent,
               **{k: self.info[k] for k in ("start_mode", "started", "fsync", "test_hooks")}}
        # names are bounded (validate.py), but many sessions can still make a big list
        while len(pack(dict(out))) > MAX_FRAME - 4096 and clients:
            clients = clients[:len(clients) // 2]
            out["clients"] = clients
        if len(clients) < len(sids):
            out["clients_next"] = clients[-1]["sid"] if clients else clients_after
        return out

    def _client_entry(self, sid: int) -> dict:
        c = self.r.svc.sessions[sid].get("client") or {}
        conn = self.r.sess_conn.get(sid)
        return {"sid": sid, "host": c.get("host"), "pid": c.get("pid"), "name": c.get("name"),
                "connected": conn is not None and not conn.closed,
                "address": list(conn.peer) if conn is not None and conn.peer else None}

    def config_drift(self) -> bool:
        """The cell file names other endpoints than the replicated configuration."""
        live = {m["no"]: (list(m["udp"]), list(m["tcp"])) for m in self.r.members.values()
                if m.get("role") == "voter"}
        mine = {no: (list(m["udp"]), list(m["tcp"])) for no, m in self.file_members.items()}
        return live != mine
