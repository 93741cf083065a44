"""Owner-only control socket: status, ping, shutdown and, under --test-hooks, fault hooks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..errors import ProtocolError
from ..wire import read_frame, unpack
from .clients import STATUS_CLIENTS, Conn

# named persistence points of `crash_at` (spec 5.4); the writer calls os._exit(99) there
CRASH_POINTS = (
    "wal_before_fsync",  # records written, not yet fsynced
    "wal_after_fsync",  # fsynced, before any gated reply or message is released
    "snapshot_mid_write",  # half of the snapshot's temporary file written
    "snapshot_after_rename",  # snapshot renamed into place, directory not yet fsynced
    "snapshot_before_truncate",  # snapshot durable, old WAL segments not yet deleted
    # configuration changes; `kind` (add_learner, replace, finalize, remove_learner) picks the
    # phase, none means the first entry of any kind
    # a configuration entry about to be written to the WAL: as ACCEPT, or as LEARNED by a
    # member that never accepted it (a leader outrun by its followers' quorum, a catch-up)
    "replace_before_accept",
    "replace_after_apply",  # a configuration entry applied, before the next one is proposed
)
CFG_KINDS = ("add_learner", "replace", "finalize", "remove_learner")


class ControlMixin:
    """Part of Node: see node.py for the attributes used here."""

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
                except ProtocolError as e:
                    conn.send({"t": "reply", "ok": False, "err": "EPROTO", "msg": str(e)})
                    break
                conn.send({"v": 1, "t": "reply", "id": msg.get("id"), **self.control(msg)})
                await writer.drain()
        finally:
            writer.close()

    def control(self, msg: dict) -> dict:
        t = msg["t"]
        if t == "status":
            after, limit = msg.get("clients_after", 0), msg.get("clients_limit", STATUS_CLIENTS)
            if not isinstance(after, int) or not isinstance(limit, int):
                return {"ok": False, "err": "EPROTO", "msg": "clients_after/limit: integers"}
            return {"ok": True, "res": self.status(after, limit)}
        if t == "ping":
            return {"ok": True, "res": "pong"}
        if t == "shutdown":
            self.loop.create_task(self.shutdown(str(msg.get("comment", ""))))
            return {"ok": True}
        if not self.info["test_hooks"]:
            return {"ok": False, "err": "EINVAL", "msg": f"unknown request {t!r}"}
        try:
            return self._hook(t, msg)
        except (TypeError, ValueError, KeyError) as e:
            return {"ok": False, "err": "EINVAL", "msg": f"{t}: {e}"}

    def _hook(self, t: str, msg: dict) -> dict:
        if t == "drop":
            peer = int(msg.get("peer", -1))
            d = msg.get("dir", "both")
            for x in (["in", "out"] if d == "both" else [d]):
                if x not in ("in", "out"):
                    raise ValueError("dir must be in, out or both")
                self.hooks["drop"][(peer, x)] = float(msg.get("prob", 1.0))
            return {"ok": True}
        if t == "delay":
            # every datagram to `peer` (-1: all) leaves `ms` later
            self.hooks["delay"][int(msg.get("peer", -1))] = float(msg["ms"]) / 1000
            return {"ok": True}
        if t == "pause":
            # freeze the whole member (loop and writer) as a stopped process would be
            ms = float(msg["ms"])
            if not 0 <= ms <= 60000:
                raise ValueError("ms must be in 0..60000")
            self.loop.call_soon(time.sleep, ms / 1000)
            return {"ok": True}
        if t == "snap_cut":
            # serving snapshot chunks, this member drops the connection once, after `after`
            # chunks (the receiver then resumes)
            self.hooks["snap_cut"] = int(msg.get("after", 1))
            return {"ok": True}
        if t == "force_snapshot":
            self.dispatch(self._snap())
            return {"ok": True}
        if t == "crash_at":
            point = msg.get("point")
            if point not in CRASH_POINTS:
                raise ValueError(f"unknown crash point {point!r}; one of {CRASH_POINTS}")
            kind = msg.get("kind")
            if kind is not None and kind not in CFG_KINDS:
                raise ValueError(f"unknown entry kind {kind!r}; one of {CFG_KINDS}")
            self.hooks["crash_at"] = point
            self.crash_kind = kind
            self.st.crash_at = point
            return {"ok": True}
        return {"ok": False, "err": "EINVAL", "msg": f"unknown request {t!r}"}

    def _snap(self) -> list:
        self.r.actions = []
        self.r.snapshot()
        acts, self.r.actions = self.r.actions, []
        return acts

    def hook_status(self) -> dict[str, Any]:
        return {"crash_at": self.hooks.get("crash_at")} if self.info["test_hooks"] else {}
