"""The asyncio shell around one Replica: sockets, group commit, gated actions, control socket.

One loop; every durable write runs on one writer thread, which keeps log order. Persist actions
gathered while a write is in flight form the next batch (group commit); actions gated on a token
run once that token is durable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import PROTOCOL, VERSION
from ..core.replica import Replica
from ..core.types import Client, Closed, Fatal, Flush, Peer, Persist, Reply, Send, TakeSnapshot
from ..core.types import Tick as TickInput
from ..errors import FrameError, ProtocolError
from ..wire import MAX_FRAME, MAX_PEER_FRAME, frame, pack, read_frame, unpack
from .storage import Storage

log = logging.getLogger("css.node")
UDP_MAX = 8192


class Conn:
    """One TCP connection (client or peer)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.closed = False

    def send(self, msg: dict) -> None:
        if not self.closed:
            try:
                self.writer.write(frame(msg))
            except Exception:
                self.closed = True


class UdpProto(asyncio.DatagramProtocol):
    def __init__(self, node: Node) -> None:
        self.node = node

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.node.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable from a stopped peer: loss is normal


class Node:
    def __init__(self, cell: str, no: int, cell_id: str, members: dict[int, dict],
                 replica: Replica, storage: Storage, info: dict) -> None:
        self.cell, self.no, self.cell_id = cell, no, cell_id
        self.file_members = members  # the cell file: where to bind; the replica has the rest
        self.member_id = info["member_id"]
        self.r = replica
        self.st = storage
        self.info = info  # start_mode, started, fsync, test_hooks, control path, pid path
        self.loop = asyncio.get_event_loop()
        self.t0 = time.monotonic()
        self.durable = 0
        self.wq: list[Any] = []  # Persist / TakeSnapshot in order
        self.writing = False
        self.gated: list[tuple[int, Any]] = []
        self.flush_scheduled = False
        self.udp: asyncio.DatagramTransport | None = None
        self.peer_links: dict[int, Conn] = {}
        self.conns: set[Conn] = set()
        self.clients: dict[Conn, dict] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal")
        self.stopped = asyncio.Event()
        self.exit_code = 0
        self.dropped = 0
        self.hooks: dict[str, Any] = {"drop": {}}
        self.servers: list[Any] = []
        self.ticking = True
        self.last_role: tuple = ()
        self.last_cfg = replica.cfg["version"]

    def now(self) -> float:
        return time.monotonic()

    # ---- inputs ----------------------------------------------------------------------------
    def feed(self, inp: Any) -> None:
        try:
            acts = self.r.handle(inp, self.now(), time.time())
        except Exception:
            log.exception("core failed on %s", type(inp).__name__)
            return self.fatal("internal error in core", 12)
        self.dispatch(acts)
        px = self.r.px
        if (px.role, px.ballot, px.leader_no) != self.last_role:
            self.last_role = (px.role, px.ballot, px.leader_no)
            log.info("role=%s ballot=%s leader=%s commit=%d promised=%s (after %s %s)", px.role,
                     px.ballot, px.leader_no, px.commit, px.promised, type(inp).__name__,
                     inp.msg.get("t") if isinstance(inp, Peer) else "")
        if self.r.cfg["version"] != self.last_cfg:
            self.last_cfg = self.r.cfg["version"]
            cfg = self.r.cfg
            log.info("configuration version %d: voters=%s learners=%s retired=%s joint=%s",
                     cfg["version"], sorted(m["no"] for m in cfg["members"].values()
                                           if m["role"] == "voter"),
                     {i: m["member_id"] for i, m in cfg["members"].items()
                      if m["role"] == "learner"}, cfg["retired"], bool(cfg.get("joint")))
        if not self.flush_scheduled and not isinstance(inp, Flush):
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        self.feed(Flush())

    def dispatch(self, acts: list) -> None:
        for a in acts:
            if isinstance(a, (Persist, TakeSnapshot)):
                self.wq.append(a)
                if isinstance(a, TakeSnapshot):
                    log.info("%s snapshot at slot %d (%d bytes)",
                             "installing peer" if a.installed else "taking", a.slot, len(a.blob))
            elif isinstance(a, (Send, Reply)):
                if a.after is not None and a.after > self.durable:
                    self.gated.append((a.after, a))
                else:
                    self.perform(a)
            elif isinstance(a, Fatal):
                self.fatal(a.reason, a.exit_code)
        self.kick_writer()

    def perform(self, a: Any) -> None:
        if isinstance(a, Reply):
            a.conn.send(a.msg)
        elif a.to == self.r.px.no:
            self.loop.call_soon(self.feed, Peer(a.to, a.msg))
        else:
            self.send_peer(a.to, a.msg)

    # ---- writer ----------------------------------------------------------------------------
    def kick_writer(self) -> None:
        if self.writing or not self.wq:
            return
        batch, self.wq = self.wq, []
        self.writing = True
        fut = self.loop.run_in_executor(self.executor, self._write, batch)
        fut.add_done_callback(self._written)

    def _write(self, batch: list) -> int:
        top = 0
        for a in batch:
            if isinstance(a, Persist):
                self.st.append(a.records)
            else:
                self.st.snapshot(a.slot, a.blob, a.carry)
            top = max(top, a.token)
        self.st.sync()
        return top

    def _written(self, fut: asyncio.Future) -> None:
        self.writing = False
        try:
            top = fut.result()
        except Exception as e:
            # after a failed fsync the page cache cannot be trusted: never retry
            log.critical("durable write failed: %s", e)
            os._exit(13)
        self.durable = max(self.durable, top)
        ready = [a for t, a in self.gated if t <= self.durable]
        self.gated = [(t, a) for t, a in self.gated if t > self.durable]
        for a in ready:
            self.perform(a)
        self.kick_writer()

    # ---- member transport ------------------------------------------------------------------
    def send_peer(self, to: int, msg: dict) -> None:
        m = self.r.addr.get(to)
        if m is None or self._hook_drop(to, "out"):
            return
        # envelope of spec 2.3: the sender is `no` (member number) and `from` (member id)
        env = {**msg, "cell_id": self.cell_id, "no": self.r.px.no, "from": self.member_id}
        data = pack(env)
        if len(data) <= UDP_MAX and self.udp is not None:
            self.udp.sendto(data, tuple(m["udp"]))
        else:
            self.loop.create_task(self._send_tcp(to, env))

    async def _send_tcp(self, to: int, env: dict) -> None:
        link = self.peer_links.get(to)
        if link is None or link.closed:
            try:
                host, port = self.r.addr[to]["tcp"]
                _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            except Exception:
                return
            link = Conn(w)
            link.send({"t": "PEER_HELLO", "cell_id": self.cell_id, "no": self.r.px.no,
                       "from": self.member_id})
            self.peer_links[to] = link
        link.send(env)

    def _accept_peer(self, msg: dict) -> int | None:
        frm = msg.get("no")
        if msg.get("cell_id") != self.cell_id:
            self.dropped += 1
            return None
        if msg.get("t") in ("JOIN", "PEER_HELLO") and frm not in self.r.addr:
            return -1  # a joining member has no id yet (spec 2.3: the admission request)
        if frm not in self.r.addr or msg.get("from") != self.r.addr[frm].get("member_id"):
            self.dropped += 1
            return None
        return frm

    def on_datagram(self, data: bytes, addr: Any) -> None:
        try:
            msg = unpack(data)
        except ProtocolError:
            self.dropped += 1
            return
        frm = self._accept_peer(msg)
        if frm is None or self._hook_drop(frm, "in"):
            return
        self.feed(Peer(frm, msg))

    def _hook_drop(self, peer: int, direction: str) -> bool:
        rule = self.hooks["drop"].get((peer, direction)) or self.hooks["drop"].get((-1, direction))
        return bool(rule) and random.random() < rule

    # ---- TCP: clients and peer links -------------------------------------------------------
    async def on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(writer)
        self.conns.add(conn)
        peer_from: int | None = None
        try:
            while True:
                try:
                    body = await read_frame(reader, MAX_PEER_FRAME if peer_from is not None
                                            else MAX_FRAME)
                except FrameError as e:
                    conn.send({"t": "reply", "ok": False, "err": "EFRAME", "msg": str(e)})
                    break
                if body is None:
                    break
                try:
                    msg = unpack(body)
                except ProtocolError as e:
                    if peer_from is not None:
                        continue
                    code = "EPROTO"
                    conn.send({"t": "reply", "ok": False, "err": code, "msg": str(e)})
                    continue
                if peer_from is not None:
                    frm = self._accept_peer(msg)
                    if frm is not None and not self._hook_drop(frm, "in"):
                        self.feed(Peer(frm, msg))
                    continue
                if msg["t"] == "PEER_HELLO":
                    peer_from = self._accept_peer(msg)
                    if peer_from is None:
                        break
                    continue
                self.on_client(conn, msg)
                await writer.drain()
        finally:
            conn.closed = True
            self.conns.discard(conn)
            self.clients.pop(conn, None)
            self.feed(Closed(conn))
            try:
                writer.close()
            except Exception:
                pass

    def on_client(self, conn: Conn, msg: dict) -> None:
        t = msg["t"]
        self.clients.setdefault(conn, {})
        if isinstance(msg.get("sid"), int):
            self.clients[conn]["sid"] = msg["sid"]
        base = {"v": 1, "t": "reply", "id": msg.get("id"), "ok": True}
        if t == "ping":
            conn.send({**base, "res": "pong"})
        elif t == "status":
            conn.send({**base, "res": self.status()})
        elif t in ("hello", "members"):
            if isinstance(msg.get("client"), dict):
                self.clients[conn]["client"] = msg["client"]
            conn.send({**base, "res": {
                "no": self.no, "leader": self.r.leader_hint(), "epoch": self.r.px.epoch(),
                "cfg": self.r.cfg["version"], "version": VERSION, "protocol": PROTOCOL,
                "members": [{"no": m["no"], "tcp": m["tcp"]}
                            for _i, m in sorted(self.r.members.items())],
                "limits": {"max_frame": MAX_FRAME, "max_file": 65536, "max_inflight": 128}}})
        else:
            self.feed(Client(conn, msg))

    # ---- status and control ----------------------------------------------------------------
    def status(self) -> dict:
        st = self.r.status(self.now())
        clients = []
        for sid, sess in sorted(self.r.svc.sessions.items()):
            c = sess.get("client") or {}
            conn = self.r.sess_conn.get(sid)
            clients.append({"sid": sid, "host": c.get("host"), "pid": c.get("pid"),
                            "name": c.get("name"), "connected": conn is not None and
                            not conn.closed,
                            "address": list(conn.peer) if conn is not None and conn.peer
                            else None})
        return {"running": True, "cell": self.cell, "no": self.no, "cell_id": self.cell_id,
                "member_id": self.member_id, "pid": os.getpid(),
                "version": VERSION, "protocol": PROTOCOL, **st,
                "connected": [m["no"] for m in st["members"] if m["connected"]],
                "config_drift": self.config_drift(), "clients": clients,
                "dropped": self.dropped,
                **{k: self.info[k] for k in ("start_mode", "started", "fsync", "test_hooks")}}

    def config_drift(self) -> bool:
        """The cell file names other endpoints than the replicated configuration."""
        live = {m["no"]: (list(m["udp"]), list(m["tcp"])) for m in self.r.members.values()
                if m.get("role") == "voter"}
        mine = {no: (list(m["udp"]), list(m["tcp"])) for no, m in self.file_members.items()}
        return live != mine

    async def on_control(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        conn = Conn(writer)
        try:
            while True:
                try:
                    body = await read_frame(reader)
                    if body is None:
                        break
                    msg = unpack(body)
                except (FrameError, ProtocolError) as e:
                    conn.send({"t": "reply", "ok": False, "err": "EPROTO", "msg": str(e)})
                    break
                conn.send({"v": 1, "t": "reply", "id": msg.get("id"), **self.control(msg)})
                await writer.drain()
        finally:
            writer.close()

    def control(self, msg: dict) -> dict:
        t = msg["t"]
        if t == "status":
            return {"ok": True, "res": self.status()}
        if t == "ping":
            return {"ok": True, "res": "pong"}
        if t == "shutdown":
            self.loop.create_task(self.shutdown(str(msg.get("comment", ""))))
            return {"ok": True}
        if not self.info["test_hooks"]:
            return {"ok": False, "err": "EINVAL", "msg": f"unknown request {t!r}"}
        if t == "drop":
            peer = msg.get("peer", -1)
            for d in (["in", "out"] if msg.get("dir", "both") == "both" else [msg["dir"]]):
                self.hooks["drop"][(peer, d)] = float(msg.get("prob", 1.0))
            return {"ok": True}
        if t == "force_snapshot":
            self.dispatch(self._snap())
            return {"ok": True}
        if t == "crash_at":
            self.hooks["crash_at"] = msg.get("point")
            return {"ok": True}
        return {"ok": False, "err": "EINVAL", "msg": f"unknown request {t!r}"}

    def _snap(self) -> list:
        self.r.actions = []
        self.r.snapshot()
        acts, self.r.actions = self.r.actions, []
        return acts

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        h, p = self.file_members[self.no]["udp"]
        self.udp, _ = await self.loop.create_datagram_endpoint(lambda: UdpProto(self),
                                                               local_addr=(h, p))
        th, tp = self.file_members[self.no]["tcp"]
        self.servers.append(await asyncio.start_server(self.on_conn, th, tp))
        ctl = self.info["control"]
        if os.path.exists(ctl):
            os.unlink(ctl)
        old = os.umask(0o177)
        try:
            self.servers.append(await asyncio.start_unix_server(self.on_control, ctl))
        finally:
            os.umask(old)
        self.loop.add_signal_handler(signal.SIGTERM,
                                     lambda: self.loop.create_task(self.shutdown("SIGTERM")))
        self.loop.add_signal_handler(signal.SIGINT,
                                     lambda: self.loop.create_task(self.shutdown("SIGINT")))
        self.loop.create_task(self._ticker())

    async def _ticker(self) -> None:
        while self.ticking:
            self.feed(TickInput())
            await asyncio.sleep(self.r.t.tick)

    async def shutdown(self, comment: str) -> None:
        if self.r.stopping:
            return
        log.info("clean shutdown requested: %s", comment)
        self.dispatch(self.r.stop())
        deadline = self.now() + self.r.t.drain_timeout
        while (self.r.pending or self.r.px.open) and self.now() < deadline:
            await asyncio.sleep(0.01)
        if not self.r.px.is_leader():
            # learn the decisions of the last slots (they come with the next heartbeat) so
            # that members stopped one after the other leave markers at the same next_seq
            settle = self.now() + 2 * self.r.t.heartbeat
            px = self.r.px
            while self.now() < deadline and (self.now() < settle or px.commit < max(
                    px.peer_commit.values(), default=0)):
                await asyncio.sleep(0.01)
        while self.writing or self.wq:
            await asyncio.sleep(0.005)
        for s in self.servers:
            s.close()
        self.ticking = False
        try:
            await asyncio.get_event_loop().run_in_executor(self.executor, self.st.close)
            self.st.write_shutdown(self.r.px.delivered + 1, comment)
        except OSError as e:
            log.critical("cannot write SHUTDOWN: %s", e)
            os._exit(13)
        log.info("SHUTDOWN written with next_seq=%d", self.r.px.delivered + 1)
        self.exit_code = 0
        self.stopped.set()

    def fatal(self, reason: str, code: int) -> None:
        log.critical("fatal: %s", reason)
        self.exit_code = code
        if code == 11:  # removed: let the last replies (gated on the WAL) and LEAVE go out
            self.loop.create_task(self._exit_soon())
        else:
            self.stopped.set()

    async def _exit_soon(self) -> None:
        self.ticking = False
        for _ in range(100):
            if not (self.writing or self.wq or self.gated):
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        self.stopped.set()
