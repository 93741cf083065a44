"""Safety and liveness of the pure Multi-Paxos core under a hostile simulated network."""

from __future__ import annotations

from css_simnet import TIMING, Sim
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nodes.css.core.paxos import Paxos, Recovered
from nodes.css.core.types import Persist, Send

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def settle(sim: Sim, steps: int) -> None:
    for _ in range(steps):
        sim.step(faults=False)
        sim.check_lease()


@SETTINGS
@given(seed=st.integers(0, 2**31), n=st.sampled_from([3, 3, 5]),
       drop=st.sampled_from([0.0, 0.1, 0.3]), steps=st.integers(200, 4000))
def test_agreement_under_faults(seed: int, n: int, drop: float, steps: int) -> None:
    sim = Sim(n, seed, drop=drop)
    for _ in range(steps):
        sim.step()
        sim.check_lease()
    # liveness: once healed, with everyone up, a new proposal is decided everywhere
    sim.heal()
    bound = TIMING.election_max + TIMING.lease + 10 * TIMING.heartbeat
    start = sim.time
    while sim.leader() is None:
        assert sim.time - start < 4 * bound, "no leader after healing"
        sim.step(faults=False)
        sim.check_lease()
    target = sim.counter + 1
    while not sim.propose():
        sim.step(faults=False)
    want = f"v{target}"
    start = sim.time

    def done() -> bool:
        slots = [s for s, val in sim.chosen.items() if want in val]
        return bool(slots) and all(m.px.commit >= slots[0] for m in sim.members)

    while not done():
        assert sim.time - start < 4 * bound, "proposal not decided everywhere after healing"
        sim.step(faults=False)
        sim.check_lease()


@SETTINGS
@given(seed=st.integers(0, 2**31))
def test_applied_logs_are_prefixes(seed: int) -> None:
    sim = Sim(3, seed, drop=0.05)
    logs: dict[int, list] = {i: [] for i in range(3)}
    orig = sim.check_apply

    def record(no: int, slot: int, val) -> None:
        orig(no, slot, val)
        logs[no].append(slot)

    sim.check_apply = record  # type: ignore[method-assign]
    for _ in range(1500):
        sim.step(faults=False)
    for log in logs.values():
        assert log == list(range(1, len(log) + 1)), "slots applied out of order or with gaps"


def test_gated_sends_wait_for_durability() -> None:
    px = Paxos(1, [0, 1, 2], TIMING, 1, 0.0)
    out = px.handle(0, {"t": "ACCEPT", "b": [1, 0], "s": 1, "val": ["x"], "commit": 0}, 10.0)
    persists = [a for a in out.actions if isinstance(a, Persist)]
    sends = [a for a in out.actions if isinstance(a, Send) and a.msg["t"] == "ACCEPTED"]
    assert len(persists) == 1 and sends and sends[0].after == persists[0].token
    out = px.handle(2, {"t": "PREPARE", "b": [2, 2], "fs": 1}, 10.0)
    assert all(a.msg["t"] == "NACK" for a in out.actions if isinstance(a, Send)), \
        "a follower with a fresh lease must refuse another candidate"


def test_recovery_restores_promise_and_decisions() -> None:
    rec = Recovered()
    for r in [{"r": "PROMISE", "b": [3, 1]},
              {"r": "ACCEPT", "s": 1, "b": [3, 1], "val": ["a"]},
              {"r": "ACCEPT", "s": 2, "b": [3, 1], "val": ["b"]},
              {"r": "CHOSEN", "from": 1, "to": 1, "b": [3, 1]},
              {"r": "LEARNED", "s": 3, "val": ["c"]}]:
        rec.feed(r)
    px = Paxos(0, [0, 1, 2], TIMING, 1, 0.0, rec)
    assert [s for s, _v, _t in px.start().applied] == [1]
    assert px.promised == (3, 1) and px.commit == 1 and px.delivered == 1
    assert 2 in px.accepted and px.decided[3] == ["c"]
    out = px.handle(2, {"t": "PREPARE", "b": [2, 2], "fs": 1}, 100.0)
    assert [a.msg["t"] for a in out.actions if isinstance(a, Send)] == ["NACK"]


def test_three_members_elect_and_decide() -> None:
    sim = Sim(3, 7, drop=0.0, dup=0.0)
    while sim.leader() is None:
        sim.step(faults=False)
    for _ in range(5):
        while not sim.propose():
            sim.step(faults=False)
    sim.proposing = False
    for _ in range(3000):
        sim.step(faults=False)
    decided = [v for s, val in sorted(sim.chosen.items()) for v in val]
    assert decided == [f"v{i}" for i in range(1, sim.counter + 1)][:len(decided)]
    assert len(decided) == sim.counter


def test_new_leader_reproposes_highest_ballot_value() -> None:
    px = Paxos(0, [0, 1, 2], TIMING, 1, 0.0)
    out = px.tick(100.0)  # election timeout passed
    assert px.role == "candidate"
    b = list(px.ballot)
    px.handle(0, {"t": "PROMISE", "b": b, "commit": 0, "acc": [[1, [1, 0], ["v"]]], "dec": []},
              100.0)
    out = px.handle(1, {"t": "PROMISE", "b": b, "commit": 0,
                        "acc": [[1, [2, 1], ["w"]], [2, [1, 2], ["x"]]], "dec": []}, 100.0)
    assert px.role == "leader"
    accepts = {a.msg["s"]: a.msg["val"] for a in out.actions
               if isinstance(a, Send) and a.msg["t"] == "ACCEPT"}
    assert accepts[1] == ["w"] and accepts[2] == ["x"] and accepts[3] == []
    assert px.term_start == 3


@SETTINGS
@given(seed=st.integers(0, 2**31), drop=st.sampled_from([0.0, 0.1, 0.3]),
       steps=st.integers(500, 4000))
# failing seeds found so far, kept as regression cases: a starved simulated network, a barrier
# left over from a lost term, and the seed that caught a wrong choice of re-proposed value
@example(seed=384, drop=0.1, steps=1494)
@example(seed=134166031, drop=0.0, steps=665)
@example(seed=839, drop=0.3, steps=2752)
def test_agreement_across_member_replacement(seed: int, drop: float, steps: int) -> None:
    sim = Sim(3, seed, drop=drop, replace=True)
    for _ in range(steps):
        sim.step()
        sim.check_lease()
    sim.heal()
    sim.replace = True
    start = sim.time
    bound = TIMING.election_max + TIMING.lease + 10 * TIMING.heartbeat
    # drive the replacement to its end, then check the new member votes and the old one does not
    while sim.retired is None:
        assert sim.time - start < 20 * bound, "replacement did not finish after healing"
        sim.step(faults=False)
        sim.check_lease()
    lead = None
    while lead is None or lead.no == 2:
        if lead is not None and lead.no == 2:
            sim.crash(lead)  # a retired leader may linger; it can no longer win
        sim.step(faults=False)
        lead = sim.leader()
        assert sim.time - start < 40 * bound
    assert lead.px.quorums == [frozenset({0, 1, 3})]
