"""Member replacement inside a Replica: join, add learner, joint replace, finalize, removal.

Kept apart from replica.py so each stays small; this is a mixin and uses the Replica's fields.

A learner leaves again through a `remove_learner` entry: asked for by an admin (`remove_learner`
on the client port: the abort of a replace before its point of no return), or proposed by the
leader itself for a learner it has not heard from for `Timing.learner_timeout` (a join whose
process died, or a forged one). Without it one abandoned join would block every later replace.
"""

from __future__ import annotations

from typing import Any

from . import membership as mb
from .paxos import Recovered
from .service import Service, err
from .types import Fatal, Out, Reply, Send, Timing

PROMOTE_MAX_LAG = 16


def recovered_config(genesis_cfg: dict, extra: dict, rec: Recovered | None) -> dict:
    """The configuration after the snapshot and every decided entry of the WAL."""
    cfg = extra.get("cfg") or genesis_cfg
    for _s, value in sorted((rec.decided if rec else {}).items()):
        for c in value if isinstance(value, list) else []:
            if isinstance(c, dict) and c.get("op") == "_cfg":
                cfg, _ = mb.apply_cfg(cfg, c)
    return cfg


class ReconfigMixin:
    cfg: dict
    addr: dict
    members: dict
    t: Timing
    heard: dict  # member id -> when a message of it last arrived (learner watch, probes)
    watch_from: float  # learners are judged only from here on (leadership start)
    next_probe: float

    def _sync_members(self) -> None:
        """Rebuild the address book from the configuration (retired ids stay routable)."""
        for pid, m in self.cfg["members"].items():
            self.addr[pid] = m
        self.members.clear()
        self.members.update(self.cfg["members"])
        self.px.set_config(mb.quorums(self.cfg), set(self.cfg["members"]))

    def _apply_cfg(self, cmd: dict, now: float, token: int | None) -> None:
        new, code = mb.apply_cfg(self.cfg, cmd)
        key = ("cfg", cmd.get("kind"), cmd.get("new", cmd.get("id")))
        if code is None:
            self.cfg = new
            self.last_cfg_kind = cmd["kind"]  # the shell's crash_at hook names entry kinds
            self._sync_members()
            if cmd["kind"] == "add_learner":
                self.heard[cmd["id"]] = now  # its timeout runs from its admission
            if cmd["kind"] == "remove_learner" and cmd["id"] != self.px.no:
                # every member tells it once; later messages of it get REMOVED too (identity
                # rules), and a silent one probes (_learner_probe), so a lost datagram is no harm
                self.actions.append(Send(cmd["id"], {"t": "REMOVED"}))
        if self.px.is_leader():
            if code is None and cmd["kind"] == "add_learner":
                self.actions.append(Send(cmd["id"], {"t": "JOIN_OK", "id": cmd["id"],
                                                     "cfg": self.cfg}))
            if code is None and cmd["kind"] == "replace":
                self.queue.append(mb.finalize_cmd(self.cfg))
            if code is not None and cmd.get("kind") == "replace":
                key = ("cfg", "finalize", cmd.get("new"))  # the requester waits for finalize
            if key in self.pending:
                conn, rid = self.pending.pop(key)
                res: dict = {"cfg": self.cfg["version"]}
                if cmd.get("kind") == "remove_learner":
                    res.update(removed=True, member_id=cmd.get("member_id"))
                body = {"ok": True, "res": res} if code is None else err(code)
                self.actions.append(Reply(conn, self._envelope(rid, {}, body), token))
        self.cfg_inflight = False
        if code is None and cmd["kind"] == "finalize" and cmd["old"] == self.px.no:
            if self.px.is_leader():
                # tell the new voters that finalize is decided before leaving: a member still
                # in the joint configuration needs the old voters' quorum to elect a leader
                hb = Out()
                self.px.heartbeat(now, hb)
                self.actions += hb.actions
            self.actions += self.px.leave().actions
            self.actions.append(Fatal("removed from the configuration (replaced)", 11))
        if code is None and cmd["kind"] == "remove_learner" and cmd["id"] == self.px.no:
            self.actions.append(Fatal(f"removed from the configuration (learner dropped: "
                                      f"{cmd.get('why')})", 11))

    def _cfg_busy(self) -> bool:
        return self.cfg_inflight or any(c.get("op") == "_cfg" for c in self.queue)

    # ---- learners that went away -------------------------------------------------------------
    def _learner_watch(self, now: float) -> None:
        """Leader, on Tick: drop a learner not heard from for learner_timeout."""
        if self.cfg.get("joint") or self._cfg_busy():
            return
        for pid, m in sorted(self.cfg["members"].items()):
            if m["role"] != "learner":
                continue
            since = max(self.heard.get(pid, self.watch_from), self.watch_from)
            if now - since > self.t.learner_timeout:
                cmd = mb.remove_learner_cmd(self.cfg, pid, self.cfg["version"], "timeout")
                if isinstance(cmd, dict):
                    self.queue.append(cmd)
                return

    def _learner_probe(self, now: float) -> None:
        """A learner that hears nobody asks the voters for the log: members that still know it
        answer, and members that removed it answer REMOVED (it stops with exit 11)."""
        last = max(self.heard.values(), default=self.watch_from)
        if now - max(last, self.watch_from) <= 2 * self.t.election_max or now < self.next_probe:
            return
        self.next_probe = now + self.t.election_max
        for pid, m in sorted(self.cfg["members"].items()):
            if pid != self.px.no and m["role"] == "voter":
                self.actions.append(Send(pid, {"t": "CATCHUP_REQ", "lo": self.px.commit + 1,
                                               "hi": self.px.commit + self.t.catchup_batch}))

    # ---- joining member ----------------------------------------------------------------------
    def _joining_tick(self, now: float) -> None:
        if now < self.next_join:
            return
        self.next_join = now + 0.3
        me = self.join_info
        for pid in list(self.addr):
            if self.addr[pid].get("no") != me["cno"]:
                self.actions.append(Send(pid, {"t": "JOIN", **me,
                                               "expect_cfg": self.join_expect}))

    def _on_join_ok(self, msg: dict, now: float) -> None:
        if not self.joining or msg.get("cfg") is None:
            return
        self.cfg = msg["cfg"]
        self.joining = False
        self.px.no = int(msg["id"])
        self._sync_members()
        self.px.election_deadline = now + self.t.election_max
        self.px.catchup_at = 0.0

    def _on_join(self, msg: dict, now: float) -> None:
        if not self.px.term_started():
            # the joiner only knows the cell file, which may not list the leader: forward
            if self.px.leader_no in self.members and self.px.leader_no != self.px.no \
                    and not msg.get("fwd"):
                self.actions.append(Send(self.px.leader_no, {**msg, "fwd": True}))
            return
        for pid, m in self.cfg["members"].items():
            if m["member_id"] == msg.get("member_id"):
                self.heard[pid] = now
                self.actions.append(Send(pid, {"t": "JOIN_OK", "id": pid, "cfg": self.cfg}))
                return
        if msg.get("member_id") in self.cfg["retired"]:
            # a removed learner restarted before it recorded anything: it may not come back
            for pid, m in self.addr.items():
                if m.get("member_id") == msg.get("member_id"):
                    self.actions.append(Send(pid, {"t": "REMOVED"}))
            return
        if self._cfg_busy():
            return
        msg = {**msg, "expect_cfg": self.cfg["version"] if msg.get("expect_cfg") is None
               else msg["expect_cfg"]}
        cmd = mb.add_learner_cmd(self.cfg, msg)
        if isinstance(cmd, dict):
            self.queue.append(cmd)

    # ---- replace request (admin, through the client port) ------------------------------------
    def _replace(self, conn: Any, msg: dict, now: float) -> dict | None:
        new_id = None
        joint = self.cfg.get("joint")
        for pid, m in self.cfg["members"].items():
            if m["member_id"] == msg.get("new") and m["role"] == "learner":
                new_id = pid
            elif m["member_id"] == msg.get("new") and m["no"] == msg.get("no") and not joint:
                return {"ok": True, "res": {"cfg": self.cfg["version"]}}  # retry: already done
            elif m["member_id"] == msg.get("new") and m["no"] == msg.get("no") \
                    and joint["new_id"] == pid:
                # a retry after this REPLACE was decided, before its FINALIZE (the leader that
                # took the first request died): answered once finalize is applied, as the first
                # would have been; one waiter per replace, so a second one is told to come back
                key = ("cfg", "finalize", pid)
                if key in self.pending:
                    return err("EBUSY", what="this replace is finishing")
                self.pending[key] = (conn, msg.get("id"))
                return None
        if new_id is None:
            return err("EINVAL", what="new member is not a learner of this cell")
        expect = msg.get("expect_cfg", self.cfg["version"])
        cmd = mb.replace_cmd(self.cfg, msg.get("no"), new_id, expect)
        if isinstance(cmd, str):
            code, _, why = cmd.partition(": ")
            return err(code, what=why) if why else err(code)
        if self.px.peer_commit.get(new_id, 0) < self.px.commit - PROMOTE_MAX_LAG:
            return err("ENOT_CAUGHT_UP", lag=self.px.commit - self.px.peer_commit.get(new_id, 0))
        heard = set(self.px.connected(now)) | {self.px.no}
        for q in cmd["quorums"]:
            if len(heard & set(q)) <= len(q) // 2:
                return err("EQUORUM_AT_RISK")
        if self._cfg_busy():
            return err("EBUSY", what="a configuration change is pending")
        self.pending[("cfg", "finalize", new_id)] = (conn, msg.get("id"))
        self.queue.append(cmd)
        return None

    # ---- remove_learner request (admin: abort a replace before REPLACE is decided) -----------
    def _remove_learner(self, conn: Any, msg: dict, now: float) -> dict | None:
        mid, no, expect = msg.get("member_id"), msg.get("no"), msg.get("expect_cfg")
        if (mid is None) == (no is None) or (mid is not None and not isinstance(mid, str)) or (
                no is not None and (not isinstance(no, int) or isinstance(no, bool))) or (
                expect is not None and (not isinstance(expect, int) or isinstance(expect, bool))):
            return err("EINVAL", what="give member_id (str) or no (int), and an int expect_cfg")
        if mid is not None:
            if mid in self.cfg["retired"]:
                # already gone (an earlier abort, the learner timeout, or a finished replace):
                # what the caller wants holds, so retries are harmless
                return {"ok": True, "res": {"cfg": self.cfg["version"], "removed": False,
                                            "member_id": mid}}
            pids = [p for p, m in self.cfg["members"].items() if m["member_id"] == mid]
        else:
            pids = [p for p, m in self.cfg["members"].items()
                    if m["no"] == no and m["role"] == "learner"]
        if not pids:
            return err("ENOT_LEARNER", what="no such learner", state="unknown")
        pid = pids[0]
        if self.cfg["members"][pid]["role"] != "learner":
            return err("ENOT_LEARNER", what="a voter (a decided REPLACE cannot be aborted)",
                       state="voter")
        key = ("cfg", "remove_learner", pid)
        for c in list(self.queue) + [c for v in self.px.open.values() for c in v
                                     if isinstance(v, list)]:
            if isinstance(c, dict) and c.get("kind") == "remove_learner" and c.get("id") == pid:
                self.pending[key] = (conn, msg.get("id"))  # already on its way: answer then
                return None
        if self._cfg_busy():
            return err("EBUSY", what="a configuration change is pending")
        cmd = mb.remove_learner_cmd(self.cfg, pid, self.cfg["version"] if expect is None
                                    else expect, "abort")
        if isinstance(cmd, str):
            return err(cmd)
        self.pending[key] = (conn, msg.get("id"))
        self.queue.append(cmd)
        return None

    def _snapshot_extra(self) -> dict:
        return {"cfg": self.cfg}

    def _install_extra(self, blob: bytes) -> Service:
        svc, extra = Service.from_blob(blob)
        if extra.get("cfg"):
            self.cfg = extra["cfg"]
            self._sync_members()
        return svc
