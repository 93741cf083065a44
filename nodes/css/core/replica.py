"""One CSS member as a pure object: Paxos + state machine + client request handling.

`handle(input, now, wall)` returns actions for the shell. `now` is monotonic seconds; `wall` is
only stamped into log entries (file mtimes). The leader batches client commands and proposes them
on `Flush`, so one slot (and one fsync) carries many requests.
"""

from __future__ import annotations

from typing import Any

from . import membership as mb
from .paxos import Paxos, Recovered
from .reconfig import ReconfigMixin, recovered_config
from .service import Service, err
from .types import (
    Client,
    Closed,
    Fatal,
    Flush,
    OfferSnapshot,
    Out,
    Peer,
    Reply,
    Send,
    TakeSnapshot,
    Tick,
    Timing,
)

READS = ("read", "stat", "list", "counter_get", "session_info")
LOGGED = ("open", "close", "abort", "lock", "unlock", "create", "write", "cas", "delete",
          "delete_prefix", "counter_add")
GROWING = ("open", "lock", "create", "write", "cas", "counter_add")  # may enlarge the state
ADMIN = ("replace", "remove_learner")  # configuration changes asked for on the client port
SLOT_SHIFT = 512  # pos = slot * 512 + index in the batch


class Replica(ReconfigMixin):
    def __init__(self, no: int, members: dict[int, dict], timing: Timing, seed: int,
                 now: float, rec: Recovered | None = None, service: Service | None = None,
                 extra: dict | None = None, member_id: str | None = None,
                 join: dict | None = None) -> None:
        """`members`: the cell file ({no: {udp, tcp, member_id}}), the genesis configuration.
        `extra`: what the snapshot carried besides the state (the configuration then).
        `join`: {cno, member_id, udp, tcp} when starting as a joining member (`cno`: its line
        in the cell file; `no`, `from` and `cell_id` are envelope fields, never payload)."""
        self.t = timing
        gen = mb.genesis(members)
        self.cfg = (extra or {}).get("cfg") or gen
        final = recovered_config(gen, extra or {}, rec)
        my_id = no
        for pid, m in final["members"].items():
            if member_id is not None and m["member_id"] == member_id:
                my_id = pid
        self.joining = join is not None and not any(
            m["member_id"] == join["member_id"] for m in final["members"].values())
        self.removed = member_id is not None and member_id in final["retired"]
        self.join_info = join or {}
        self.join_expect: int | None = None
        self.next_join = 0.0
        self.cfg_inflight = False
        self.addr: dict[int, dict] = {i: dict(m) for i, m in gen["members"].items()}
        self.members: dict[int, dict] = {}
        self.px = Paxos(-1 if self.joining else my_id, [], timing, seed, now, rec)
        self.px.cfg_of = mb.cfg_quorums
        if self.joining:
            self.px.quorums, self.px.peers = [frozenset([-2])], set()  # never votes or leads
        else:
            self._sync_members()
        self.svc = service or Service()
        self.pending: dict[Any, tuple[Any, Any]] = {}  # reply key -> (conn, request id)
        self.queue: list[dict] = []
        self.inflight: set[Any] = set()
        self.last_seen: dict[int, float] = {}
        self.sess_conn: dict[int, Any] = {}
        self.expiring: set[int] = set()
        self.deadlines: dict[tuple[int, int], float] = {}
        self.reads: list[tuple[int, Any, dict]] = []
        self.next_recall = 0.0
        self.last_snap = self.px.snap_slot
        self.stopping = False
        # the shell streams snapshot files (OfferSnapshot); without it (simulators) the state
        # goes inline in one SNAPSHOT message
        self.offer_snapshots = False
        self.heard: dict[int, float] = {}
        self.watch_from = now
        self.next_probe = 0.0
        self.actions: list = []
        self.now = now
        self._applied(self.px.start(), now, 0.0)  # replay decided values from the WAL
        self.actions = []

    # ---- entry point -----------------------------------------------------------------------
    def handle(self, inp: Any, now: float, wall: float = 0.0) -> list:
        self.actions = []
        self.now = now
        self.px.wall = wall
        if isinstance(inp, Peer):
            self._peer(inp.frm, inp.msg, now)
        elif isinstance(inp, Client):
            self._client(inp.conn, inp.msg, now)
        elif isinstance(inp, Tick):
            self._tick(now)
        elif isinstance(inp, Flush):
            self._flush(now, wall)
        elif isinstance(inp, Closed):
            for sid in [s for s, c in self.sess_conn.items() if c is inp.conn]:
                del self.sess_conn[sid]
            self.pending = {k: v for k, v in self.pending.items() if v[0] is not inp.conn}
            self.reads = [r for r in self.reads if r[1] is not inp.conn]
        acts, self.actions = self.actions, []
        return acts

    def _run(self, out: Out, now: float) -> None:
        self.actions += out.actions
        if out.stepped_down:
            self._lost_leadership()
        if out.became_leader and self.cfg.get("joint"):
            self.queue.append(mb.finalize_cmd(self.cfg))  # finish a replace begun earlier
        if out.became_leader:
            self.watch_from = now  # a new leader gives every learner a full learner_timeout
            self.last_seen = {sid: now for sid in self.svc.sessions}  # grace after failover
            self.deadlines = {(w[0], w[1]): now + w[3] / 1000
                              for w in self.svc.waiters() if w[3] is not None}
        self._applied(out, now, 0.0)

    # ---- peers -----------------------------------------------------------------------------
    def _peer(self, frm: int, msg: dict, now: float) -> None:
        t = msg.get("t")
        if t == "JOIN":
            return self._on_join(msg, now)
        if t == "JOIN_OK":
            return self._on_join_ok(msg, now)
        if t == "REMOVED" and (frm in self.members or self.joining and frm in self.addr):
            self.actions.append(Fatal("this member was removed from the cell", 11))
            return
        if frm not in self.members:
            if frm in self.addr and self.addr[frm]["member_id"] in self.cfg["retired"]:
                self.actions.append(Send(frm, {"t": "REMOVED"}))
            return
        if frm != self.px.no:
            self.heard[frm] = now
        if t == "CATCHUP_REQ" and int(msg.get("lo", 0)) < self.px.log_start \
                and frm in self.members:
            if self.offer_snapshots:
                self.actions.append(OfferSnapshot(frm))
                return
            blob = self.svc.to_blob(self._snapshot_extra())
            self.actions.append(Send(frm, {"t": "SNAPSHOT", "slot": self.px.delivered,
                                           "blob": blob}))
            return
        if t == "SNAPSHOT" and frm in self.members:
            slot, blob = int(msg["slot"]), msg["blob"]
            if slot > self.px.delivered:
                self.svc = self._install_extra(blob)
                self.px.install(slot)
                self.last_snap = slot
                self.px.token += 1
                self.actions.append(TakeSnapshot(slot, blob, self.px.carry(), self.px.token,
                                                 installed=True))
                self._run(self.px.start(), now)
            return
        self._run(self.px.handle(frm, msg, now), now)

    # ---- clients ---------------------------------------------------------------------------
    def _envelope(self, rid: Any, msg: dict, body: dict) -> dict:
        env = {"v": 1, "t": "reply", "id": rid, "sid": msg.get("sid"), "seq": msg.get("seq"),
               "epoch": self.px.epoch(), "cfg": self.cfg["version"]}
        env.update(body)
        return env

    def leader_hint(self) -> dict | None:
        ln = self.px.leader_no
        if ln is None or ln not in self.members:
            return None
        if ln != self.px.no and self.now > self.px.lease_until:
            return None  # not heard from it lately: do not send clients to a dead leader
        return {"no": self.members[ln]["no"], "tcp": self.members[ln]["tcp"]}

    def _client(self, conn: Any, msg: dict, now: float) -> None:
        op, rid = msg.get("t"), msg.get("id")

        def answer(body: dict, after: int | None = None) -> None:
            self.actions.append(Reply(conn, self._envelope(rid, msg, body), after))

        if self.stopping:
            return answer(err("ESTOPPING"))
        if op == "config":
            return answer({"ok": True, "res": self.cfg})
        if op in ADMIN and self.px.term_started() and not self.px.deposed(now):
            res = (self._replace if op == "replace" else self._remove_learner)(conn, msg, now)
            return None if res is None else answer(res)
        if op not in LOGGED and op not in ADMIN and op not in READS and op != "keepalive":
            return answer(err("EINVAL", what=f"unknown op {op!r}"))
        if not self.px.term_started() or self.px.deposed(now):
            hint = None if self.px.is_leader() else self.leader_hint()
            return answer({**err("ENOT_LEADER"), "leader": hint})
        sid = msg.get("sid")
        if op == "keepalive":
            if not self.px.lease_valid(now):
                return answer({**err("ENOT_LEADER"), "leader": None})
            if sid not in self.svc.sessions or self.svc.sessions[sid]["tok"] != msg.get("tok"):
                return answer(err("ESESSION_EXPIRED"))
            self.last_seen[sid] = now
            self.sess_conn[sid] = conn
            for s, ev in self.svc.recalls():
                if s == sid:
                    self.actions.append(Reply(conn, {"v": 1, "t": "event", "sid": sid, **ev}))
            return answer({"ok": True, "res": {"timeout_ms":
                                               self.svc.sessions[sid]["timeout_ms"]}})
        if op in READS:
            if self._can_read(now):
                return answer(self.svc.read(op, msg))
            rnd = self.px.heartbeat(now, out := Out())
            self.actions += out.actions
            self.reads.append((rnd, conn, msg))
            return None
        if op == "open":
            key: Any = ("open", msg.get("tok"))
        else:
            if not isinstance(sid, int) or not isinstance(msg.get("seq"), int):
                return answer(err("EINVAL", what="sid and seq must be integers"))
            key = (sid, msg["seq"])
            sess = self.svc.sessions.get(sid)
            if sess is not None and sess["tok"] == msg.get("tok"):
                self.last_seen[sid] = now
                self.sess_conn[sid] = conn
                if msg["seq"] in sess["replies"]:
                    return answer(sess["replies"][msg["seq"]])
                if msg["seq"] in sess["waiting"]:
                    self.pending[key] = (conn, rid)  # a queued lock: answered when granted
                    return None
        if op in GROWING and key not in self.inflight:
            grow = 512 + len(msg.get("name") or "") + len(msg.get("data") or b"")
            if self.svc.state_bytes() + grow > self.t.max_state_bytes:
                # decided by the leader before logging, so members with other limits agree
                return answer(err("ENOSPC", limit=self.t.max_state_bytes,
                                  what="max_state_bytes"))
        self.pending[key] = (conn, rid)
        if key not in self.inflight:
            cmd = {k: v for k, v in msg.items() if k not in ("t", "v", "id")}
            cmd["op"] = op
            self.queue.append(cmd)
            self.inflight.add(key)
        return None

    def _can_read(self, now: float) -> bool:
        return self.px.lease_valid(now) and self.px.delivered >= self.px.commit

    def _serve_reads(self, now: float) -> None:
        if not self.reads or not self.px.term_started():
            return
        keep = []
        for rnd, conn, msg in self.reads:
            if self.px.confirmed_round >= rnd:
                self.actions.append(Reply(conn, self._envelope(
                    msg.get("id"), msg, self.svc.read(msg.get("t"), msg))))
            else:
                keep.append((rnd, conn, msg))
        self.reads = keep

    def _lost_leadership(self) -> None:
        for key, (conn, rid) in self.pending.items():
            msg = {"sid": key[0], "seq": key[1]} if key[0] != "open" else {}
            self.actions.append(Reply(conn, self._envelope(rid, msg, {
                **err("ENOT_LEADER"), "leader": None})))
        for _rnd, conn, msg in self.reads:
            self.actions.append(Reply(conn, self._envelope(msg.get("id"), msg, {
                **err("ENOT_LEADER"), "leader": None})))
        self.pending, self.reads, self.queue = {}, [], []
        self.cfg_inflight = False
        self.inflight, self.deadlines, self.expiring = set(), {}, set()

    # ---- time ------------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        if self.joining:
            return self._joining_tick(now)
        self._run(self.px.tick(now), now)
        if self.px.term_started() and self.px.lease_valid(now):
            for sid, sess in self.svc.sessions.items():
                seen = self.last_seen.setdefault(sid, now)
                if now - seen > sess["timeout_ms"] / 1000 and sid not in self.expiring:
                    self.expiring.add(sid)
                    self.queue.append({"op": "expire", "sid": sid})
            for key, dl in list(self.deadlines.items()):
                if now >= dl:
                    del self.deadlines[key]
                    self.queue.append({"op": "lock_timeout", "sid": key[0], "seq": key[1]})
            if now >= self.next_recall:
                self.next_recall = now + self.t.recall_repeat
                for sid, ev in self.svc.recalls():
                    if sid in self.sess_conn:
                        self.actions.append(Reply(self.sess_conn[sid],
                                                  {"v": 1, "t": "event", "sid": sid, **ev}))
            self._learner_watch(now)
        elif self.px.no not in self.px.voters:
            self._learner_probe(now)
        self._serve_reads(now)

    def _flush(self, now: float, wall: float) -> None:
        while self.queue and self.px.can_propose() and not self.cfg_inflight:
            # a configuration entry is a pipeline barrier: alone in its slot, nothing after it
            # is proposed until it is applied
            cut = next((i for i, c in enumerate(self.queue) if c.get("op") == "_cfg"), None)
            n = self.t.max_batch if cut is None else (cut or 1)
            batch, self.queue = self.queue[:min(n, self.t.max_batch)], self.queue[
                min(n, self.t.max_batch):]
            if batch[0].get("op") == "_cfg":
                self.cfg_inflight = True
            for c in batch:
                c["w"] = wall
            self._run(self.px.propose(batch, now), now)

    # ---- applying decided entries ------------------------------------------------------------
    def _applied(self, out: Out, now: float, wall: float) -> None:
        leader = self.px.is_leader()
        for slot, value, token in out.applied:
            for i, cmd in enumerate(value):
                pos = slot * SLOT_SHIFT + i
                if not isinstance(cmd, dict):
                    continue
                if cmd.get("op") == "_cfg":
                    self._apply_cfg(cmd, now, token)
                    continue
                own = ("open", cmd.get("tok")) if cmd.get("op") == "open" else (
                    cmd.get("sid"), cmd.get("seq"))
                fx = self.svc.apply(cmd, pos)
                if leader:
                    self._effects(fx, own, token, now)
                    self.inflight.discard(own)
                    if cmd.get("op") == "lock" and cmd.get("wait") and not any(
                            k == "reply" and key == own for k, key, _ in fx):
                        ms = cmd.get("wait_ms")
                        if isinstance(ms, int) and own not in self.deadlines:
                            self.deadlines[own] = now + ms / 1000
                if cmd.get("op") == "expire":
                    self.expiring.discard(cmd.get("sid"))
                    self.last_seen.pop(cmd.get("sid"), None)
        self._serve_reads(now)
        if self.px.delivered - self.last_snap >= self.t.snapshot_every:
            self.snapshot()

    def _effects(self, fx: list, own: Any, token: int | None, now: float) -> None:
        for kind, key, body in fx:
            if kind == "push":
                conn = self.sess_conn.get(key)
                if conn is not None:
                    self.actions.append(Reply(conn, {"v": 1, "t": "event", "sid": key, **body},
                                              token))
                continue
            self.deadlines.pop(key, None)
            if key[0] == "open" and body.get("ok"):
                self.last_seen[body["res"]["sid"]] = now
            if key in self.pending:
                conn, rid = self.pending.pop(key)
                msg = {"sid": key[0], "seq": key[1]} if key[0] != "open" else {}
                self.actions.append(Reply(conn, self._envelope(rid, msg, body), token))
            elif key != own and key[0] in self.sess_conn:
                self.actions.append(Reply(self.sess_conn[key[0]], {
                    "v": 1, "t": "event", "ev": "GRANTED", "sid": key[0], "seq": key[1],
                    "reply": body}, token))

    def snapshot(self) -> None:
        slot = self.px.delivered
        self.last_snap = slot
        cut = self.svc.cut(self._snapshot_extra())  # encoded by the shell's writer thread
        self.px.token += 1
        self.actions.append(TakeSnapshot(slot, b"", self.px.carry(), self.px.token, state=cut))
        self.px.compacted(slot)

    # ---- shutdown and status ---------------------------------------------------------------
    def stop(self) -> list:
        self.stopping = True
        return self.px.leave().actions

    def status(self, now: float) -> dict:
        px = self.px
        me = px.no
        members = []
        for pid, m in sorted(self.members.items()):
            heard = px.last_heard.get(pid)
            members.append({"no": m.get("no"), "id": pid, "member_id": m.get("member_id"),
                            "udp": m.get("udp"), "tcp": m.get("tcp"),
                            "voter": m.get("role") == "voter",
                            "connected": pid in px.connected(now) or pid == me,
                            "last_heard_ms": None if heard is None else int((now - heard) * 1000),
                            "match": px.commit if pid == me else px.peer_commit.get(pid, 0),
                            "lag": 0 if pid == me else max(0, px.commit - px.peer_commit.get(
                                pid, 0))})
        if self.joining:
            role = "joining"
        elif me not in px.voters:
            role = "learner"
        else:
            role = px.role
        lead = self.members.get(px.leader_no, {}).get("no") if px.leader_no is not None else None
        return {"role": role, "leader": lead, "id": me, "epoch": px.epoch(), "ballot": list(
            px.ballot if px.role == "leader" else px.leader_ballot),
            "lease_ms": max(0, int((px.leader_lease - now) * 1000)) if px.is_leader() else 0,
            "leader_since": px.leader_since if lead is not None else None,
            "next_seq": px.delivered + 1, "commit": px.commit,
            "last_slot": max([px.commit, *px.accepted.keys(), *px.decided.keys()]),
            "snapshot_slot": px.snap_slot, "members": members,
            "config": {"version": self.cfg["version"],
                       "voters": sorted(self.members[i]["no"] for i in px.voters
                                        if i in self.members),
                       "learners": sorted(m["no"] for m in self.members.values()
                                          if m["role"] == "learner"),
                       "retired": list(self.cfg["retired"]), "joint": bool(self.cfg["joint"])},
            "counts": self.svc.counts()}
