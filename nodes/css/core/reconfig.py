"""Member replacement inside a Replica: join, add learner, joint replace, finalize, removal.

Kept apart from replica.py so each stays small; this is a mixin and uses the Replica's fields.
"""

from __future__ import annotations

from typing import Any

from . import membership as mb
from .paxos import Recovered
from .service import Service, err
from .types import Fatal, Reply, Send

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
            self._sync_members()
        if self.px.is_leader():
            if code is None and cmd["kind"] == "add_learner":
                self.actions.append(Send(cmd["id"], {"t": "JOIN_OK", "id": cmd["id"],
                                                     "cfg": self.cfg}))
            if code is None and cmd["kind"] == "replace":
                self.queue.append(mb.finalize_cmd(self.cfg))
            if key in self.pending or code is not None:
                conn, rid = self.pending.pop(key, (None, None))
                if conn is not None:
                    body = {"ok": True, "res": {"cfg": self.cfg["version"]}} if code is None \
                        else err(code)
                    self.actions.append(Reply(conn, self._envelope(rid, {}, body), token))
        self.cfg_inflight = False
        if code is None and cmd["kind"] == "finalize" and cmd["old"] == self.px.no:
            self.actions += self.px.leave().actions
            self.actions.append(Fatal("removed from the configuration (replaced)", 11))

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
                self.actions.append(Send(pid, {"t": "JOIN_OK", "id": pid, "cfg": self.cfg}))
                return
        if self.cfg_inflight or any(c.get("op") == "_cfg" for c in self.queue):
            return
        msg = {**msg, "expect_cfg": self.cfg["version"] if msg.get("expect_cfg") is None
               else msg["expect_cfg"]}
        cmd = mb.add_learner_cmd(self.cfg, msg)
        if isinstance(cmd, dict):
            self.queue.append(cmd)

    # ---- replace request (admin, through the client port) ------------------------------------
    def _replace(self, conn: Any, msg: dict, now: float) -> dict | None:
        new_id = None
        for pid, m in self.cfg["members"].items():
            if m["member_id"] == msg.get("new") and m["role"] == "learner":
                new_id = pid
            elif m["member_id"] == msg.get("new") and m["no"] == msg.get("no") \
                    and not self.cfg.get("joint"):
                return {"ok": True, "res": {"cfg": self.cfg["version"]}}  # retry: already done
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
        if self.cfg_inflight or any(c.get("op") == "_cfg" for c in self.queue):
            return err("EBUSY", what="a configuration change is pending")
        self.pending[("cfg", "finalize", new_id)] = (conn, msg.get("id"))
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
