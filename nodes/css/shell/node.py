"""The asyncio shell around one Replica: sockets, group commit, gated actions, control socket.

One loop; every durable write runs on one writer thread, which keeps log order. Persist actions
gathered while a write is in flight form the next batch (group commit); actions gated on a token
run once that token is durable.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core.replica import Replica
from ..core.service import encode_state
from ..core.types import Fatal, Flush, OfferSnapshot, Peer, Persist, Reply, Send, TakeSnapshot
from ..core.types import Tick as TickInput
from .auth import Auth
from .clients import ClientMixin
from .control import ControlMixin
from .guard import LISTEN_BACKLOG, Guard, Limits
from .peers import PeerMixin, UdpProto
from .snapxfer import SnapMixin
from .storage import Storage
from .writer import WalWriter

log = logging.getLogger("css.node")
DISK_RETRY = 1.0  # seconds between write attempts while the disk is full


class DiskFull(Exception):
    def __init__(self, index: int, error: OSError) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


def _has_cfg(records: list[dict], kind: str | None) -> bool:
    """A record bringing a configuration entry (of `kind`, if given) into the WAL. LEARNED
    counts too: a leader whose followers' quorum decides the slot before its own ACCEPT comes
    round its loop writes only LEARNED for it, and must still reach replace_before_accept."""
    for r in records:
        if r.get("r") in ("ACCEPT", "LEARNED") and isinstance(r.get("val"), list):
            for c in r["val"]:
                if isinstance(c, dict) and c.get("op") == "_cfg" and kind in (None, c.get("kind")):
                    return True
    return False


class Node(PeerMixin, ClientMixin, ControlMixin, SnapMixin):
    def __init__(self, cell: str, no: int, cell_id: str, members: dict[int, dict],
                 replica: Replica, storage: Storage, info: dict, auth: Auth | None = None,
                 limits: Limits | None = None) -> None:
        self.cell, self.no, self.cell_id = cell, no, cell_id
        self.file_members = members  # the cell file: where to bind; the replica has the rest
        self.member_id = info["member_id"]
        self.r = replica
        self.st = storage
        self.info = info  # start_mode, started, fsync, test_hooks, control path, pid path
        self.auth = auth or Auth(None)
        self.guard = Guard(limits or Limits())
        self.auth_failures = 0
        self.peer_invalid = 0  # signed member messages that failed their schema
        self.crash_kind: str | None = None  # crash_at replace_*: only at this entry kind
        self.disk_full: str | None = None  # the error while the disk is full
        self.sealed = False  # clean stop: storage closed, inputs ignored
        self.snap_init()
        replica.offer_snapshots = True
        self.hold = False  # --init: no Tick (no election) until the genesis members are seen
        self.init_wait: dict | None = None
        self.loop = asyncio.get_event_loop()
        self.t0 = time.monotonic()
        self.durable = 0
        self.wq: list[Any] = []  # Persist / TakeSnapshot in order
        self.inflight = 0  # batches handed to the writer thread, not yet reported back
        self.gated: list[tuple[int, Any]] = []
        self.flush_scheduled = False
        self.udp: asyncio.DatagramTransport | None = None
        self.direct_sock: Any = None  # the writer thread's datagram socket (peers.py)
        self.direct_sent = 0
        self.sent_cache: tuple[dict, bytes] | None = None  # within one dispatch (peers.py)
        self.peer_links: dict[int, Any] = {}
        self.conns: set[Any] = set()
        self.clients: dict[Any, dict] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-close")
        self.writer = WalWriter(self.loop, self._write, self._written, DiskFull)
        self.stopped = asyncio.Event()
        self.exit_code = 0
        self.dropped = 0
        self.hooks: dict[str, Any] = {"drop": {}, "delay": {}}
        self.servers: list[Any] = []
        self.ticking = True
        self.last_role: tuple = ()
        self.last_cfg = replica.cfg["version"]

    def now(self) -> float:
        return time.monotonic()

    # ---- inputs ----------------------------------------------------------------------------
    def feed(self, inp: Any) -> None:
        if self.sealed:
            return
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
            if self.st.crash_at == "replace_after_apply" and self.crash_kind in (
                    None, getattr(self.r, "last_cfg_kind", None)):
                self.st.crash_point("replace_after_apply")
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
        self.sent_cache = None
        for a in acts:
            if isinstance(a, (Persist, TakeSnapshot)):
                self.wq.append(a)
                if isinstance(a, TakeSnapshot):
                    log.info("%s snapshot at slot %d", "installing peer" if a.installed
                             else "taking", a.slot)
            elif isinstance(a, (Send, Reply)):
                if a.after is not None and a.after > self.durable:
                    self.gated.append((a.after, a))
                else:
                    self.perform(a)
            elif isinstance(a, OfferSnapshot):
                self.offer_snapshot(a.to)
            elif isinstance(a, Fatal):
                self.fatal(a.reason, a.exit_code)
        self.sent_cache = None
        self.kick_writer()

    def perform(self, a: Any) -> None:
        if isinstance(a, Reply):
            a.conn.send(a.msg)
        elif a.to == self.r.px.no:
            self.loop.call_soon(self.feed, Peer(a.to, a.msg))
        else:
            self.send_peer(a.to, a.msg)

    # ---- writer ----------------------------------------------------------------------------
    def _disk_full(self, rest: list, error: OSError) -> None:
        """A full disk: stop taking part (no ticks, no member messages, client requests get
        ENOSPC) while the unwritten actions wait; retry every second. Nothing acknowledged,
        nothing half-written (the storage rolled the failed write back)."""
        if self.disk_full is None:
            log.error("disk full, member stops acknowledging until space returns: %s", error)
        self.disk_full = str(error)
        self.wq = rest + self.wq
        self.loop.call_later(DISK_RETRY, self.kick_writer)

    def paused(self) -> bool:
        return self.hold or self.disk_full is not None

    @property
    def writing(self) -> bool:
        return self.inflight > 0

    def kick_writer(self) -> None:
        if not self.wq or self.sealed:
            return
        batch, self.wq = self.wq, []
        self.inflight += 1
        self.writer.put(batch, self.take_direct(batch))

    def _write(self, batch: list, direct: list | None = None) -> int:
        """Write a batch, fsync it, return the highest token now durable. A batch of lazy
        records only is written without an fsync (the next batch's covers it) and makes no
        token durable: each fsync costs every member on the disk, and a follower's CHOSEN
        after every heartbeat was one fsync per heartbeat."""
        top = 0
        for i, a in enumerate(batch):
            try:
                self._write_one(a)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    # nothing of batch[i] is on disk (rolled back); batch[:i] is written and
                    # is made durable by the fsync of the retry, whose tokens are higher
                    raise DiskFull(i, e) from None
                raise
            top = max(top, a.token)
        if all(isinstance(a, Persist) and a.lazy for a in batch):
            return 0
        if any(isinstance(a, Persist) for a in batch):
            self.st.crash_point("wal_before_fsync")
        self.st.sync()
        if any(isinstance(a, Persist) for a in batch):
            self.st.crash_point("wal_after_fsync")
        if direct:
            self.send_direct(direct)
        return top

    def _write_one(self, a: Any) -> None:
        if isinstance(a, Persist):
            if self.st.crash_at == "replace_before_accept" and _has_cfg(a.records,
                                                                        self.crash_kind):
                self.st.crash_point("replace_before_accept")
            self.st.append(a.records)
        else:
            if a.state is not None:
                a.blob, a.state = encode_state(a.state), None  # once, also on a retry
            self.st.snapshot(a.slot, a.blob, a.carry)

    def _written(self, batch: list, groups: int, top: int, err: Exception | None) -> None:
        self.inflight -= groups
        if isinstance(err, DiskFull):
            behind, queued = self.writer.drain_blocked()
            self.inflight -= behind
            self._disk_full(batch[err.index:] + queued, err.error)
            return
        self.durable = max(self.durable, top)
        if self.disk_full is not None:
            log.warning("disk space is back: writing again")
            self.disk_full = None
        ready = [a for t, a in self.gated if t <= self.durable]
        self.gated = [(t, a) for t, a in self.gated if t > self.durable]
        for a in ready:
            self.perform(a)
        self.sent_cache = None
        self.kick_writer()

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        h, p = self.file_members[self.no]["udp"]
        self.udp, _ = await self.loop.create_datagram_endpoint(lambda: UdpProto(self),
                                                               local_addr=(h, p))
        th, tp = self.file_members[self.no]["tcp"]
        self.servers.append(await asyncio.start_server(self.on_conn, th, tp,
                                                       backlog=LISTEN_BACKLOG))
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
        self.open_direct()
        self.loop.create_task(self._ticker())

    async def _ticker(self) -> None:
        while self.ticking:
            if not self.paused():
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
        while (self.writing or self.wq) and (self.disk_full is None or self.now() < deadline):
            await asyncio.sleep(0.005)
        for s in self.servers:
            s.close()
        self.ticking = False
        # from here on nothing may reach the storage: a PREPARE of the members electing a
        # successor would otherwise be persisted into a closed WAL (exit 13 on a clean stop)
        self.sealed = True
        if self.udp is not None:
            self.udp.close()
        if self.direct_sock is not None:
            self.direct_sock.close()
            self.direct_sock = None
        if self.disk_full is not None:
            # what is not written is not acknowledged either; the next start recovers
            log.error("disk full: stopping without a SHUTDOWN marker (crash restart next)")
            self.stopped.set()
            return
        try:
            self.writer.stop()
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
