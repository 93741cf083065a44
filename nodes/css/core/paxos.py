"""Multi-Paxos with a stable leader, leases and catch-up, as a pure state machine.

Each member runs acceptor, proposer and learner in one object. Handlers take a message and the
monotonic time and return an `Out`: actions (Persist, Send gated on a persist token, ...) and the
decided values to apply, in slot order. Messages to self go through the same Send path, so the
leader's own accept is counted only once it is durable, exactly like a peer's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .recovery import Recovered, _b
from .types import ZERO, Ballot, Out, Persist, Send, Timing

__all__ = ["NOOP", "Paxos", "Recovered"]

NOOP: list = []


class Paxos:
    def __init__(self, no: int, voters: list[int], timing: Timing, seed: int, now: float,
                 rec: Recovered | None = None) -> None:
        self.no = no
        # quorums: every set must reach a majority (two sets during a joint configuration);
        # peers: everyone who receives the log, learners included
        self.quorums: list[frozenset[int]] = [frozenset(voters)]
        self.peers: set[int] = set(voters)
        self.voters = sorted(voters)
        self.cfg_of: Callable[[Any], list[frozenset[int]] | None] = lambda v: None
        self.t = timing
        self.rng = random.Random(seed)
        rec = rec or Recovered()
        self.promised: Ballot = rec.promised
        self.accepted = dict(rec.accepted)
        self.decided = dict(rec.decided)
        self.snap_slot = rec.snap_slot
        self.commit = rec.snap_slot
        self.delivered = rec.snap_slot  # last slot handed out for apply
        self.log_start = rec.snap_slot + 1  # lowest slot still kept in `decided`
        self.token = 0
        self.promise_token: int | None = None
        self.accept_token: dict[int, int] = {}
        self.role = "follower"
        self.ballot: Ballot = ZERO
        self.max_round = max(self.promised[0], max((b[0] for b, _ in self.accepted.values()),
                                                   default=0))
        self.leader_no: int | None = None
        self.leader_ballot: Ballot = ZERO
        # A restarted member may have acked a lease it no longer remembers: refuse promises for
        # one lease period, which keeps the old leader's lease valid (spec 2.4).
        self.lease_until = now + timing.lease
        self.election_deadline = now + self._election_timeout()
        self.last_heard: dict[int, float] = {}
        self.peer_commit: dict[int, int] = {}
        self.catchup_at = 0.0
        self.want_snapshot_from: int | None = None
        # candidate
        self.promises: dict[int, dict] = {}
        self.prepare_sent = 0.0
        self.from_slot = 0
        # leader
        self.next_slot = 0
        self.open: dict[int, Any] = {}
        self.acks: dict[int, set[int]] = {}
        self.sent_at: dict[int, float] = {}
        self.term_start = 0
        self.hb_round = 0
        self.hb_sent: dict[int, float] = {}
        self.hb_acks: dict[int, set[int]] = {}
        self.confirmed_round = 0
        self.leader_lease = 0.0
        self.next_hb = 0.0
        self.became_at = 0.0
        # wall clock (Unix seconds) of the current leader's election, stamped by the leader and
        # carried in its heartbeats so every member reports the same value (spec 2.10 `birth`);
        # `wall` is given by the owner with each input (the core reads no clock)
        self.wall = 0.0
        self.leader_since: int | None = None

    def start(self) -> Out:
        """Hand out the decided values recovered from storage, in slot order."""
        out = Out()
        self._advance(out)
        return out

    # ---- helpers ---------------------------------------------------------------------------
    def is_quorum(self, acks: set[int], extra: list[frozenset[int]] | None = None) -> bool:
        return all(len(acks & q) > len(q) // 2 for q in self.quorums + (extra or []))

    def set_config(self, quorums: list[frozenset[int]], peers: set[int]) -> None:
        """A configuration entry was applied: it governs every later slot."""
        self.quorums = list(quorums)
        self.peers = set(peers) | {self.no}
        self.voters = sorted(set().union(*quorums))

    def _open_cfgs(self) -> list[frozenset[int]]:
        """Quorums of configuration entries still in flight: require them too (safe)."""
        extra: list[frozenset[int]] = []
        for v in self.open.values():
            extra += self.cfg_of(v) or []
        return extra

    def _election_timeout(self) -> float:
        return self.rng.uniform(self.t.election_min, self.t.election_max)

    def _persist(self, out: Out, records: list[dict], lazy: bool = False) -> int:
        self.token += 1
        out.actions.append(Persist(records, self.token, lazy))
        return self.token

    def _send_all(self, out: Out, msg: dict, after: int | None = None, self_too: bool = True,
                  only: set[int] | None = None) -> None:
        for p in sorted(self.peers):
            if (p != self.no or self_too) and (only is None or p in only):
                out.actions.append(Send(p, msg, after))

    def is_leader(self) -> bool:
        return self.role == "leader"

    def term_started(self) -> bool:
        return self.role == "leader" and self.delivered >= self.term_start

    def lease_valid(self, now: float) -> bool:
        return self.role == "leader" and now < self.leader_lease

    def deposed(self, now: float) -> bool:
        """A leader that could not renew its lease for a whole lease period: stop serving."""
        return self.role == "leader" and not self.lease_valid(now) and \
            now - max(self.leader_lease, self.became_at) > self.t.lease

    def can_propose(self) -> bool:
        return self.role == "leader" and len(self.open) < self.t.pipeline_window

    def epoch(self) -> int:
        return self.ballot[0] if self.role == "leader" else self.leader_ballot[0]

    def connected(self, now: float) -> list[int]:
        lim = 5 * self.t.heartbeat
        return sorted(p for p, t in self.last_heard.items() if now - t <= lim and p != self.no)

    # ---- entry point -----------------------------------------------------------------------
    def handle(self, frm: int, msg: dict, now: float) -> Out:
        out = Out()
        if frm not in self.peers:
            return out
        if frm != self.no:
            self.last_heard[frm] = now
        t = msg.get("t")
        h = getattr(self, "_on_" + str(t), None)
        if h is not None:
            h(frm, msg, now, out)
        return out

    def tick(self, now: float) -> Out:
        out = Out()
        if self.role == "leader":
            if now >= self.next_hb:
                self.heartbeat(now, out)
            for s, v in self.open.items():
                if now - self.sent_at[s] >= self.t.retransmit:
                    self.sent_at[s] = now
                    msg = self._accept_msg(s, v)
                    self._send_all(out, msg, only=self.peers - self.acks[s])
        elif self.role == "candidate":
            if now >= self.election_deadline:
                self._start_election(now, out)
            elif now - self.prepare_sent >= self.t.retransmit:
                self.prepare_sent = now
                msg = {"t": "PREPARE", "b": list(self.ballot), "fs": self.from_slot}
                self._send_all(out, msg, only=set(self.voters) - set(self.promises))
        elif now >= self.election_deadline and self.no in self.voters:
            self._start_election(now, out)
        if self.role != "leader":
            self._maybe_catchup(now, out)
        return out

    def heartbeat(self, now: float, out: Out) -> int:
        """Start a heartbeat round; a read may be served once it is acknowledged by a quorum."""
        self.hb_round += 1
        self.hb_sent[self.hb_round] = now
        self.hb_acks[self.hb_round] = {self.no}
        self.next_hb = now + self.t.heartbeat
        for r in [r for r in self.hb_sent if r < self.hb_round - 50]:
            del self.hb_sent[r]
            self.hb_acks.pop(r, None)
        msg = {"t": "HB", "b": list(self.ballot), "commit": self.commit, "n": self.hb_round}
        if self.leader_since is not None:
            msg["ls"] = self.leader_since
        self._send_all(out, msg, self_too=False)
        if self.is_quorum({self.no}):
            self._round_acked(self.hb_round)
        return self.hb_round

    def propose(self, value: Any, now: float) -> Out:
        out = Out()
        assert self.role == "leader"
        self._propose(self.next_slot, value, now, out)
        self.next_slot += 1
        return out

    def leave(self) -> Out:
        out = Out()
        if self.role == "leader":
            self._send_all(out, {"t": "LEAVE", "b": list(self.ballot)}, self_too=False)
        return out

    # ---- phase 1 ---------------------------------------------------------------------------
    def _start_election(self, now: float, out: Out) -> None:
        self.max_round = max(self.max_round, self.promised[0]) + 1
        self.ballot = (self.max_round, self.no)
        self.role = "candidate"
        self.promises = {}
        self.from_slot = self.commit + 1
        self.prepare_sent = now
        self.election_deadline = now + self._election_timeout()
        self._send_all(out, {"t": "PREPARE", "b": list(self.ballot), "fs": self.from_slot})

    def _lease_blocks(self, frm: int, now: float) -> bool:
        if frm == self.no:
            return False
        if self.role == "leader":
            return now < self.leader_lease  # a healthy leader is not deposed by a stray voter
        return now < self.lease_until and frm != self.leader_no

    def _on_PREPARE(self, frm: int, msg: dict, now: float, out: Out) -> None:
        b = _b(msg["b"])
        self.max_round = max(self.max_round, b[0])
        if b == self.promised and self.promise_token is not None:
            out.actions.append(Send(frm, self._promise_msg(b, int(msg["fs"])),
                                    self.promise_token))
            return
        if b <= self.promised or self._lease_blocks(frm, now):
            out.actions.append(Send(frm, {"t": "NACK", "b": list(b), "p": list(self.promised),
                                          "alive": now < self.lease_until}))
            return
        self.promised = b
        if b != self.ballot and self.role != "follower":
            self._step_down(out)
        if frm != self.no:
            self.election_deadline = now + self._election_timeout()
        self.promise_token = self._persist(out, [{"r": "PROMISE", "b": list(b)}])
        out.actions.append(Send(frm, self._promise_msg(b, int(msg["fs"])), self.promise_token))

    def _promise_msg(self, b: Ballot, frm_slot: int) -> dict:
        msg: dict = {"t": "PROMISE", "b": list(b), "commit": self.commit}
        decided = [[s, v] for s, v in self.decided.items() if s >= frm_slot]
        if frm_slot < self.log_start or len(decided) > self.t.catchup_batch:
            msg["ahead"] = True  # the candidate must catch up before it can lead
            return msg
        msg["acc"] = [[s, list(ab), v] for s, (ab, v) in self.accepted.items()
                      if s >= frm_slot and s not in self.decided]
        msg["dec"] = decided
        return msg

    def _on_PROMISE(self, frm: int, msg: dict, now: float, out: Out) -> None:
        if self.role != "candidate" or _b(msg["b"]) != self.ballot:
            return
        self.peer_commit[frm] = max(self.peer_commit.get(frm, 0), int(msg.get("commit", 0)))
        if msg.get("ahead"):
            self.role = "follower"
            self.want_snapshot_from = frm
            self.catchup_at = 0.0
            self._maybe_catchup(now, out)
            return
        self.promises[frm] = msg
        extra: list[frozenset[int]] = []
        for p in self.promises.values():  # configurations that may govern slots in range
            for e in p.get("dec", []) + p.get("acc", []):
                extra += self.cfg_of(e[-1]) or []
        if self.no in self.voters and self.is_quorum(set(self.promises), extra):
            self._become_leader(now, out)

    def _become_leader(self, now: float, out: Out) -> None:
        best: dict[int, tuple[Ballot, Any]] = {}
        top = self.commit
        for p in self.promises.values():
            for s, v in p.get("dec", []):
                best[int(s)] = ((1 << 62, 0), v)
                top = max(top, int(s))
            for s, ab, v in p.get("acc", []):
                s, ab = int(s), _b(ab)
                if s not in best or best[s][0] < ab:
                    best[s] = (ab, v)
                top = max(top, s)
        self.role = "leader"
        self.became_at = now
        self.leader_since = int(self.wall)
        self.leader_no = self.no
        self.open, self.acks, self.sent_at = {}, {}, {}
        self.leader_lease = 0.0
        self.hb_sent, self.hb_acks = {}, {}
        out.became_leader = True
        for s in range(self.commit + 1, top + 1):
            if s in self.decided:
                continue
            self._propose(s, best[s][1] if s in best else NOOP, now, out)
        self.next_slot = top + 1
        self.term_start = self.next_slot
        self._propose(self.next_slot, NOOP, now, out)
        self.next_slot += 1
        self.heartbeat(now, out)

    def _on_NACK(self, frm: int, msg: dict, now: float, out: Out) -> None:
        p = _b(msg["p"])
        self.max_round = max(self.max_round, p[0])
        if self.role != "follower" and p > self.ballot:
            self._step_down(out)
            self.election_deadline = now + self._election_timeout()

    def _step_down(self, out: Out) -> None:
        if self.role == "leader":
            out.stepped_down = True
        self.role = "follower"
        self.open, self.acks, self.sent_at, self.promises = {}, {}, {}, {}
        self.leader_lease = 0.0
        self.leader_since = None

    # ---- phase 2 ---------------------------------------------------------------------------
    def _accept_msg(self, s: int, v: Any) -> dict:
        return {"t": "ACCEPT", "b": list(self.ballot), "s": s, "val": v, "commit": self.commit}

    def _propose(self, s: int, v: Any, now: float, out: Out) -> None:
        self.open[s] = v
        self.acks[s] = set()
        self.sent_at[s] = now
        self._send_all(out, self._accept_msg(s, v))

    def _follow(self, frm: int, b: Ballot, now: float, out: Out) -> None:
        if self.role != "follower" and b != self.ballot:
            self._step_down(out)
        if frm != self.no and (frm, b) != (self.leader_no, self.leader_ballot):
            self.leader_since = None  # a new leader: known from its first heartbeat on
        self.leader_no, self.leader_ballot = frm, b
        if frm != self.no:
            self.lease_until = now + self.t.lease
            self.election_deadline = now + self._election_timeout()

    def _on_ACCEPT(self, frm: int, msg: dict, now: float, out: Out) -> None:
        b, s, v = _b(msg["b"]), int(msg["s"]), msg["val"]
        if b < self.promised:
            out.actions.append(Send(frm, {"t": "NACK", "b": list(b), "p": list(self.promised),
                                          "alive": now < self.lease_until}))
            return
        self.promised = b
        self.max_round = max(self.max_round, b[0])
        self._follow(frm, b, now, out)
        ack = {"t": "ACCEPTED", "b": list(b), "s": s}
        if s <= self.delivered or s in self.decided:
            out.actions.append(Send(frm, ack))  # already chosen: the same value is re-proposed
        elif self.accepted.get(s) == (b, v) and s in self.accept_token:
            out.actions.append(Send(frm, ack, self.accept_token[s]))
        else:
            self.accepted[s] = (b, v)
            tok = self._persist(out, [{"r": "ACCEPT", "s": s, "b": list(b), "val": v}])
            self.accept_token[s] = tok
            out.actions.append(Send(frm, ack, tok))
        if frm != self.no:
            self._learn_commit(frm, b, int(msg.get("commit", 0)), now, out)

    def _on_ACCEPTED(self, frm: int, msg: dict, now: float, out: Out) -> None:
        s = int(msg["s"])
        if self.role != "leader" or _b(msg["b"]) != self.ballot or s not in self.open:
            return
        self.acks[s].add(frm)
        if self.is_quorum(self.acks[s], self._open_cfgs()):
            v = self.open.pop(s)
            del self.acks[s], self.sent_at[s]
            self.decided[s] = v
            self.accepted.pop(s, None)
            tok = self._persist(out, [{"r": "LEARNED", "s": s, "val": v}])
            self._advance(out, tok)

    def _on_HB(self, frm: int, msg: dict, now: float, out: Out) -> None:
        b = _b(msg["b"])
        if b < self.promised:
            out.actions.append(Send(frm, {"t": "NACK", "b": list(b), "p": list(self.promised),
                                          "alive": now < self.lease_until}))
            return
        self._follow(frm, b, now, out)
        if frm != self.no and "ls" in msg:
            self.leader_since = msg["ls"]
        out.actions.append(Send(frm, {"t": "HB_ACK", "b": list(b), "n": msg["n"],
                                      "commit": self.commit}))
        self._learn_commit(frm, b, int(msg.get("commit", 0)), now, out)

    def _on_HB_ACK(self, frm: int, msg: dict, now: float, out: Out) -> None:
        if self.role != "leader" or _b(msg["b"]) != self.ballot:
            return
        self.peer_commit[frm] = int(msg.get("commit", 0))
        n = int(msg["n"])
        if n in self.hb_acks:
            self.hb_acks[n].add(frm)
            if self.is_quorum(self.hb_acks[n]):
                self._round_acked(n)

    def _round_acked(self, n: int) -> None:
        rho = self.t.rho
        self.leader_lease = max(self.leader_lease,
                                self.hb_sent[n] + self.t.lease * (1 - rho) / (1 + rho))
        self.confirmed_round = max(self.confirmed_round, n)

    def _on_LEAVE(self, frm: int, msg: dict, now: float, out: Out) -> None:
        if frm == self.leader_no and _b(msg["b"]) == self.leader_ballot:
            self.leader_no = None
            self.leader_since = None
            self.lease_until = 0.0
            others = [p for p in self.voters if p != frm]
            if others and others[0] == self.no:
                self._start_election(now, out)
            else:
                self.election_deadline = now + self.t.election_min / 2

    # ---- learning and catch-up -------------------------------------------------------------
    def _learn_commit(self, frm: int, b: Ballot, c: int, now: float, out: Out) -> None:
        self.peer_commit[frm] = max(self.peer_commit.get(frm, 0), c)
        got: list[int] = []
        for s in range(self.commit + 1, c + 1):
            if s in self.decided:
                continue
            acc = self.accepted.get(s)
            if acc is None or acc[0] != b:
                break
            self.decided[s] = acc[1]
            got.append(s)
        if got:
            # lazily durable: nothing is gated on it, and a lost CHOSEN is learned again
            self._persist(out, [{"r": "CHOSEN", "from": got[0], "to": got[-1], "b": list(b)}],
                          lazy=True)
            self._advance(out)
        if c > self.commit:
            self._maybe_catchup(now, out)

    def _maybe_catchup(self, now: float, out: Out) -> None:
        src = self.want_snapshot_from
        if src is None:
            ahead = [p for p, c in self.peer_commit.items() if c > self.commit and p != self.no]
            if not ahead:
                return
            src = self.leader_no if self.leader_no in ahead else max(
                ahead, key=lambda p: self.peer_commit[p])
        if now - self.catchup_at < self.t.retransmit:
            return
        self.catchup_at = now
        out.actions.append(Send(src, {"t": "CATCHUP_REQ", "lo": self.commit + 1,
                                      "hi": self.commit + self.t.catchup_batch}))

    def _on_CATCHUP_REQ(self, frm: int, msg: dict, now: float, out: Out) -> None:
        lo, hi = int(msg["lo"]), min(int(msg["hi"]), self.commit)
        if lo < self.log_start:
            out.actions.append(Send(frm, {"t": "SNAPSHOT_NEEDED", "slot": self.delivered}))
            return
        ents = [[s, self.decided[s]] for s in range(lo, hi + 1) if s in self.decided]
        out.actions.append(Send(frm, {"t": "CATCHUP", "ents": ents, "commit": self.commit}))

    def _on_CATCHUP(self, frm: int, msg: dict, now: float, out: Out) -> None:
        self.peer_commit[frm] = max(self.peer_commit.get(frm, 0), int(msg.get("commit", 0)))
        recs = []
        for s, v in msg.get("ents", []):
            s = int(s)
            if s > self.delivered and s not in self.decided:
                self.decided[s] = v
                recs.append({"r": "LEARNED", "s": s, "val": v})
        if recs:
            self._persist(out, recs)
            self._advance(out)
            self.want_snapshot_from = None
            self.catchup_at = 0.0
            self._maybe_catchup(now, out)

    def install(self, slot: int) -> None:
        """A snapshot of the state after `slot` was installed by the owner of this object."""
        self.want_snapshot_from = None
        self.catchup_at = 0.0
        if slot <= self.delivered:
            return
        self.snap_slot = self.commit = self.delivered = slot
        self.log_start = slot + 1
        self.decided = {s: v for s, v in self.decided.items() if s > slot}
        self.accepted = {s: a for s, a in self.accepted.items() if s > slot}
        # the caller stores the snapshot (with carry()) first, then calls start() to apply more

    def compacted(self, slot: int) -> None:
        """A snapshot at `slot` is durable: forget decided values older than the retained tail."""
        self.snap_slot = max(self.snap_slot, slot)
        keep_from = max(self.log_start, slot - self.t.log_retain + 1)
        for s in range(self.log_start, keep_from):
            self.decided.pop(s, None)
        self.log_start = keep_from

    def carry(self) -> list[dict]:
        """Records a new WAL segment must start with so that older segments can go."""
        recs: list[dict] = [{"r": "PROMISE", "b": list(self.promised)}]
        for s, (b, v) in sorted(self.accepted.items()):
            recs.append({"r": "ACCEPT", "s": s, "b": list(b), "val": v})
        for s, v in sorted(self.decided.items()):
            if s > self.delivered:
                recs.append({"r": "LEARNED", "s": s, "val": v})
        return recs

    def _advance(self, out: Out, token: int | None = None) -> None:
        while self.commit + 1 in self.decided:
            self.commit += 1
        while self.delivered < self.commit:
            self.delivered += 1
            out.applied.append((self.delivered, self.decided[self.delivered], token))
            self.accepted.pop(self.delivered, None)
            self.accept_token.pop(self.delivered, None)
        if self.role == "leader" and self.next_slot <= self.commit:
            self.next_slot = self.commit + 1
