"""Deterministic simulated cell of whole Replicas (Paxos + state machine + reconfiguration).

css_simnet drives bare Paxos cores; membership changes (join, replace, remove_learner, the
learner timeout) live in the Replica, so they are simulated here: members are addressed by
member id as the shell does (its address book maps Paxos ids to member ids), datagrams are lost,
duplicated, delayed and reordered, a member can be killed (-9: it neither hears nor speaks), and
time only moves when the test moves it. Persistence is immediate (the durability rules are
covered by css_simnet); a `Fatal` stops the member and is recorded.
"""

from __future__ import annotations

import copy
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

import msgpack

from nodes.css.core.peerschema import check_peer
from nodes.css.core.replica import Replica
from nodes.css.core.types import Client, Fatal, Flush, Peer, Reply, Send, Tick, Timing

CELL = {i: {"udp": [f"10.9.0.{i}", 14000], "tcp": [f"10.9.0.{i}", 14100],
            "member_id": f"g{i}"} for i in range(3)}


def timing(learner_timeout: float = 3.0) -> Timing:
    return Timing(tick=0.01, heartbeat=0.05, lease=0.3, election_min=0.4, election_max=0.8,
                  retransmit=0.06, learner_timeout=learner_timeout)


@dataclass
class Node:
    mid: str
    r: Replica
    dead: bool = False
    exit: int | None = None
    reason: str = ""
    decided: dict[int, Any] = field(default_factory=dict)


class Conn:
    """A client connection: the replies the members sent on it."""

    def __init__(self) -> None:
        self.replies: list[dict] = []


class RSim:
    def __init__(self, seed: int, drop: float = 0.0, dup: float = 0.0, max_delay: float = 0.02,
                 learner_timeout: float = 3.0) -> None:
        self.rng = random.Random(seed)
        self.t = timing(learner_timeout)
        self.drop, self.dup, self.max_delay = drop, dup, max_delay
        self.time = 0.0
        self.seq = itertools.count()
        self.net: list[tuple[float, int, str, str, int, dict]] = []
        self.nodes: dict[str, Node] = {}
        for no, m in CELL.items():
            r = Replica(no, copy.deepcopy(CELL), self.t, seed * 7 + no, 0.0,
                        member_id=m["member_id"])
            self.nodes[m["member_id"]] = Node(m["member_id"], r)
        self.ids = itertools.count(1)

    # ---- members ---------------------------------------------------------------------------
    def join(self, mid: str, cno: int = 0) -> Node:
        """Start a joining process for line `cno` (a new host: its own endpoints)."""
        cell = copy.deepcopy(CELL)
        # as the server does, line cno keeps the genesis member id (H(cell_id, no)): only the
        # endpoints are the new host's
        cell[cno] = {**cell[cno], "udp": [f"10.9.1.{len(self.nodes)}", 14000],
                     "tcp": [f"10.9.1.{len(self.nodes)}", 14100]}
        join = {"cno": cno, "member_id": mid, "udp": cell[cno]["udp"], "tcp": cell[cno]["tcp"]}
        r = Replica(cno, cell, self.t, self.rng.randrange(1 << 30), self.time, member_id=mid,
                    join=join)
        n = self.nodes[mid] = Node(mid, r)
        return n

    def kill(self, mid: str) -> None:
        self.nodes[mid].dead = True

    def live(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.dead and n.exit is None]

    def leader(self) -> Node | None:
        ls = [n for n in self.live() if n.r.px.term_started() and n.r.px.lease_valid(self.time)]
        return ls[0] if ls else None

    def voters(self) -> list[Node]:
        return [n for n in self.live() if n.r.px.no in n.r.px.voters and not n.r.joining]

    # ---- running ---------------------------------------------------------------------------
    def feed(self, n: Node, inp: Any) -> None:
        for x in (inp, Flush()):
            if n.exit is not None:
                return
            self.run(n, n.r.handle(x, self.time, self.time))

    def run(self, n: Node, acts: list) -> None:
        for a in acts:
            if isinstance(a, Send):
                self.send(n, a)
            elif isinstance(a, Reply):
                a.conn.replies.append(a.msg)
            elif isinstance(a, Fatal) and n.exit is None:
                n.exit, n.reason = a.exit_code, a.reason

    def send(self, n: Node, a: Send) -> None:
        if n.dead:
            return
        dst = n.r.addr.get(a.to)
        if dst is None:
            return
        item = (n.mid, dst.get("member_id"), n.r.px.no, a.msg)
        if a.to == n.r.px.no:
            self.net.append((self.time, next(self.seq), *item))  # to itself: never lost
            return
        if self.rng.random() < self.drop:
            return
        for _ in range(2 if self.rng.random() < self.dup else 1):
            self.net.append((self.time + self.rng.uniform(0, self.max_delay), next(self.seq),
                             *item))

    def deliver(self, frm_mid: str, to_mid: str, frm: int, msg: dict) -> None:
        n = self.nodes.get(to_mid)
        if n is None or n.dead or n.exit is not None:
            return
        # the shell's envelope check: a known (id, member id) pair, or a joiner's admission
        known = n.r.addr.get(frm)
        if known is None or known.get("member_id") != frm_mid:
            if msg.get("t") != "JOIN":
                return
            frm = -1
        if frm != n.r.px.no:
            # what the core sends must pass the schema the shell checks on receipt (as the
            # shell sees it: after msgpack, which turns tuples into lists)
            env = {**msg, "v": 1, "cell_id": "sim", "no": frm, "from": frm_mid}
            check_peer(msgpack.unpackb(msgpack.packb(env, use_bin_type=True), raw=False,
                                       strict_map_key=False), inline_snapshots=True)
        self.feed(n, Peer(frm, copy.deepcopy(msg)))

    def step(self) -> None:
        """One tick of simulated time: due messages in random order, then every member ticks."""
        self.time += self.t.tick
        due = [x for x in self.net if x[0] <= self.time]
        self.net = [x for x in self.net if x[0] > self.time]
        self.rng.shuffle(due)
        for _t, _s, frm_mid, to_mid, frm, msg in due:
            self.deliver(frm_mid, to_mid, frm, msg)
        for n in list(self.live()):
            self.feed(n, Tick())
        self.check()

    def run_until(self, pred, limit: float, what: str = "condition") -> None:
        end = self.time + limit
        while not pred():
            assert self.time < end, f"{what} not reached within {limit}s of simulated time"
            self.step()

    def settle(self, seconds: float) -> None:
        end = self.time + seconds
        while self.time < end:
            self.step()

    # ---- clients ---------------------------------------------------------------------------
    def request(self, msg: dict, limit: float = 20.0) -> dict:
        """Send an admin request (no session) to the leader, retrying on ENOT_LEADER."""
        end = self.time + limit
        while True:
            self.run_until(lambda: self.leader() is not None, end - self.time, "a leader")
            conn = Conn()
            self.feed(self.leader(), Client(conn, {"v": 1, "id": next(self.ids), **msg}))
            deadline = self.time + 5.0
            while not conn.replies and self.time < min(deadline, end):
                self.step()
            if conn.replies and conn.replies[0].get("err") != "ENOT_LEADER":
                return conn.replies[0]
            assert self.time < end, f"no answer to {msg}"

    # ---- invariants ------------------------------------------------------------------------
    def check(self) -> None:
        """Every member applies the same values in the same slots; a retired id never counts in
        a quorum; configurations that carry the same version are equal."""
        by_version: dict[int, dict] = {}
        for n in self.nodes.values():
            px = n.r.px
            for s in range(max(n.decided, default=0) + 1, px.delivered + 1):
                if s in px.decided:
                    n.decided[s] = px.decided[s]
            cfg = n.r.cfg
            retired_ids = {i for i, m in n.r.addr.items() if m.get("member_id") in cfg["retired"]}
            for q in px.quorums:
                assert not (q & retired_ids), f"{n.mid}: retired id in quorum {q}"
            if not n.r.joining:
                prev = by_version.setdefault(cfg["version"], cfg)
                assert prev == cfg, f"two configurations with version {cfg['version']}: {prev} {cfg} {n.mid}"
        seen: dict[int, Any] = {}
        for n in self.nodes.values():
            for s, v in n.decided.items():
                assert seen.setdefault(s, v) == v, f"slot {s} decided twice differently"

    def cfg_entries(self, n: Node) -> list[dict]:
        return [c for _s, v in sorted(n.decided.items()) for c in v
                if isinstance(c, dict) and c.get("op") == "_cfg"]
