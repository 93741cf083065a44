"""Deterministic simulated network for the pure Paxos core.

Messages can be dropped, duplicated, delayed and reordered; members crash (losing every record
not yet made durable and every gated send) and restart from their durable records. Each member's
clock runs at its own rate within rho.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from nodes.css.core.membership import cfg_quorums
from nodes.css.core.paxos import Paxos, Recovered
from nodes.css.core.types import Persist, Send, Timing

TIMING = Timing(tick=0.01, heartbeat=0.05, lease=0.3, election_min=0.4, election_max=0.8,
                retransmit=0.06, pipeline_window=8, catchup_batch=16)


@dataclass
class Member:
    no: int
    px: Paxos | None
    rate: float
    durable: list[dict] = field(default_factory=list)
    pending: list[tuple[int, list[dict]]] = field(default_factory=list)
    gated: list[tuple[int, Send]] = field(default_factory=list)
    durable_token: int = 0


class Sim:
    def __init__(self, n: int, seed: int, drop: float = 0.1, dup: float = 0.05,
                 max_delay: float = 0.05, rho: float = 0.05, replace: bool = False) -> None:
        """`replace`: one extra member (id n) joins as a learner and replaces member n-1
        through a joint configuration (replace, then finalize entries)."""
        self.rng = random.Random(seed)
        self.n = n
        self.retired: int | None = None
        self.time = 0.0
        self.drop, self.dup, self.max_delay = drop, dup, max_delay
        self.voters = list(range(n))
        self.replace = replace
        total = n + 1 if replace else n
        self.all_ids = set(range(total))
        self.members = [Member(i, None, 1 + self.rng.uniform(-rho, rho) / 2)
                        for i in range(total)]
        self.cfg_slot: dict[int, tuple] = {}  # leader -> (ballot, slot of its config entry)
        self.finalized = False
        for m in self.members:
            m.px = self._new_px(m, seed * 31 + m.no, None)
        self.net: list[tuple[float, int, int, dict]] = []
        self.chosen: dict[int, object] = {}  # slot -> value, from every apply anywhere
        self.proposed: set[str] = set()
        self.applied: dict[int, list] = {i: [] for i in range(n + 1)}
        self.cut: set[tuple[int, int]] = set()  # directed links that drop everything
        self.counter = 0
        self.proposing = True

    def _new_px(self, m: Member, seed: int, rec: Recovered | None) -> Paxos:
        px = Paxos(m.no, self.voters, TIMING, seed, self.now(m), rec)
        px.cfg_of = cfg_quorums
        px.set_config([frozenset(self.voters)], self.all_ids)
        return px

    def _configure(self, m: Member, val) -> None:
        """Applying a configuration entry: it governs every later slot of this member."""
        qs = cfg_quorums(val)
        if qs is None:
            return
        peers = set(self.all_ids)
        if len(qs) == 1:  # finalize: the replaced member is out
            peers -= {self.n - 1}
            self.retired = self.n - 1
        m.px.set_config(qs, peers)

    def now(self, m: Member) -> float:
        return self.time * m.rate

    # ---- running actions -------------------------------------------------------------------
    def run(self, m: Member, out) -> None:
        for a in out.actions:
            if isinstance(a, Persist):
                m.pending.append((a.token, a.records))
            elif isinstance(a, Send):
                if a.after is not None and a.after > m.durable_token:
                    m.gated.append((a.after, a))
                else:
                    self.send(m.no, a)
        for slot, val, _tok in out.applied:
            self.check_apply(m.no, slot, val)
            if m.px is not None:
                self._configure(m, val)

    def send(self, frm: int, a: Send) -> None:
        if a.to == frm:
            self.net.append((self.time, frm, a.to, a.msg))  # local: never lost
            return
        if (frm, a.to) in self.cut or self.rng.random() < self.drop:
            return
        copies = 2 if self.rng.random() < self.dup else 1
        for _ in range(copies):
            self.net.append((self.time + self.rng.uniform(0, self.max_delay), frm, a.to, a.msg))

    def check_apply(self, no: int, slot: int, val) -> None:
        prev = self.chosen.setdefault(slot, val)
        assert prev == val, f"slot {slot}: {prev!r} vs {val!r} at member {no}"
        for v in val:
            assert cfg_quorums([v]) or v in self.proposed, f"slot {slot}: {v!r} never proposed"
        log = self.applied[no]
        assert not log or log[-1] < slot

    def fsync(self, m: Member) -> None:
        for tok, recs in m.pending:
            m.durable.extend(recs)
            m.durable_token = max(m.durable_token, tok)
        m.pending = []
        ready = [a for t, a in m.gated if t <= m.durable_token]
        m.gated = [(t, a) for t, a in m.gated if t > m.durable_token]
        for a in ready:
            self.send(m.no, a)

    def crash(self, m: Member) -> None:
        m.px = None
        m.pending, m.gated = [], []
        self.net = [x for x in self.net if x[2] != m.no]

    def restart(self, m: Member) -> None:
        rec = Recovered()
        for r in m.durable:
            rec.feed(r)
        m.durable_token = 0
        m.px = self._new_px(m, self.rng.randrange(1 << 30), rec)
        self.applied[m.no] = []
        # recovery re-applies what is durable: it must agree with what was chosen
        self.run(m, m.px.start())
        for s, v in sorted(m.px.decided.items()):
            self.check_apply(m.no, s, v)

    # ---- stepping --------------------------------------------------------------------------
    def leader(self) -> Member | None:
        ls = [m for m in self.members if m.px and m.px.is_leader() and m.px.term_started()]
        return ls[0] if ls else None

    def propose(self) -> bool:
        m = self.leader()
        if m is None or not m.px.can_propose():
            return False
        ballot, slot = self.cfg_slot.get(m.no, (None, 0))
        if ballot == m.px.ballot and m.px.delivered < slot:
            return False  # a configuration entry is a barrier until applied (in this term)
        if self.replace and self.rng.random() < 0.05:
            val = self._cfg_value(m)
            if val is not None:
                self.cfg_slot[m.no] = (m.px.ballot, m.px.next_slot)
                self.run(m, m.px.propose(val, self.now(m)))
                return True
        self.counter += 1
        v = f"v{self.counter}"
        self.proposed.add(v)
        self.run(m, m.px.propose([v], self.now(m)))
        return True

    def _cfg_value(self, m: Member) -> list | None:
        old = frozenset(self.voters)
        new = frozenset(self.voters[:-1] + [self.n])
        if m.px.quorums == [old]:
            return [{"op": "_cfg", "kind": "replace", "quorums": [sorted(old), sorted(new)]}]
        if len(m.px.quorums) == 2:
            return [{"op": "_cfg", "kind": "finalize", "quorums": [sorted(new)]}]
        return None

    def deliver_one(self, idx: int) -> None:
        _, frm, to, msg = self.net.pop(idx)
        m = self.members[to]
        if m.px is not None:
            self.run(m, m.px.handle(frm, msg, self.now(m)))

    def step(self, faults: bool = True) -> None:
        r = self.rng.random()
        if r < 0.45 and self.net:
            due = [x for x in self.net if x[0] <= self.time]
            if due:
                # reordering: every due message goes, in random order (delivering one at a time
                # let retransmissions pile up faster than the network drained them)
                self.net = [x for x in self.net if x[0] > self.time]
                self.rng.shuffle(due)
                for x in due:
                    self.net.append(x)
                    self.deliver_one(len(self.net) - 1)
                return
        if r < 0.6:
            self.time += self.rng.uniform(0, TIMING.tick)
            for m in self.members:
                if m.px is not None:
                    self.run(m, m.px.tick(self.now(m)))
            return
        if r < 0.8:
            m = self.rng.choice(self.members)
            if m.px is not None:
                self.fsync(m)
            return
        if r < 0.9:
            if self.proposing:
                self.propose()
            return
        if not faults:
            return
        m = self.rng.choice(self.members)
        f = self.rng.random()
        if f < 0.03 and m.px is not None:
            self.crash(m)
        elif f < 0.3 and m.px is None:
            self.restart(m)
        elif f < 0.35:
            a, b = self.rng.sample(range(self.n), 2)
            self.cut.add((a, b))
        elif f < 0.45:
            self.cut.clear()
        elif f < 0.55:
            # the interesting case for Paxos: a leader whose accepts reached only some members
            lead = self.leader()
            if lead is not None:
                other = self.rng.choice([i for i in range(self.n) if i != lead.no])
                self.cut.add((lead.no, other))
                if self.rng.random() < 0.5:
                    self.crash(lead)

    def heal(self) -> None:
        self.cut.clear()
        self.drop = self.dup = 0.0
        for m in self.members:
            if m.px is None:
                self.restart(m)

    def check_lease(self) -> None:
        """At most one member believes it holds a valid leader lease right now."""
        holders = [m.no for m in self.members if m.px and m.px.lease_valid(self.now(m))]
        assert len(holders) <= 1, f"two lease holders {holders} at t={self.time}"
