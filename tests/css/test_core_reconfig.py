"""Pure-core tests of learner removal: the remove_learner entry, the admin abort and the learner
timeout, on whole Replicas in the simulated cell (css_replsim)."""

from __future__ import annotations

from css_replsim import CELL, Conn, RSim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.css.core import membership as mb
from nodes.css.core.paxos import Recovered
from nodes.css.core.replica import Replica
from nodes.css.core.types import Client, Closed, Peer


def learners(n) -> dict[int, str]:
    return {i: m["member_id"] for i, m in n.r.cfg["members"].items() if m["role"] == "learner"}


def admitted(sim: RSim, mid: str) -> None:
    sim.run_until(lambda: all(mid in learners(n).values() for n in sim.voters())
                  and not sim.nodes[mid].r.joining, 20, f"{mid} admitted")


def agreed(sim: RSim) -> dict:
    """Wait until every live voter has the same configuration; return it."""
    sim.run_until(lambda: len({repr(n.r.cfg) for n in sim.voters()}) == 1, 20, "agreement")
    return sim.voters()[0].r.cfg


def replace(sim: RSim, mid: str, no: int = 0) -> dict:
    """As the admin does: refusals that changed nothing are retried until a deadline."""
    end = sim.time + 60
    while True:
        rep = sim.request({"t": "replace", "no": no, "new": mid})
        if rep.get("ok"):  # finalize applied on the leader: wait for the others
            sim.run_until(lambda: all(mid in [m["member_id"] for m in n.r.cfg["members"].values()]
                                      and not n.r.cfg["joint"] for n in sim.voters()), 20,
                          "finalize everywhere")
            return rep
        if rep.get("err") not in ("ENOT_CAUGHT_UP", "EQUORUM_AT_RISK", "EBUSY") or \
                sim.time > end:
            return rep
        sim.settle(0.2)


# ---- the configuration entry ---------------------------------------------------------------
def test_remove_learner_entry_rules() -> None:
    cfg = mb.genesis({i: dict(m) for i, m in CELL.items()})
    add = mb.add_learner_cmd(cfg, {"cno": 0, "member_id": "L", "udp": ["h", 1], "tcp": ["h", 2],
                                   "expect_cfg": 1})
    cfg, code = mb.apply_cfg(cfg, add)
    assert code is None and mb.pending(cfg)
    assert mb.remove_learner_cmd(cfg, 3, 1, "abort") == "ECONFIG_CHANGED"
    assert mb.remove_learner_cmd(cfg, 0, 2, "abort") == "ENOT_LEARNER"  # a voter, never
    assert mb.remove_learner_cmd(cfg, 9, 2, "abort") == "ENOT_LEARNER"
    rm = mb.remove_learner_cmd(cfg, 3, 2, "abort")
    assert isinstance(rm, dict) and mb.cfg_quorums([rm]) is None  # voters unchanged
    # applied deterministically: a forged entry naming a voter or another id changes nothing
    for bad in ({**rm, "id": 0, "member_id": "g0"}, {**rm, "member_id": "other"}):
        assert mb.apply_cfg(cfg, bad) == (cfg, "ENOT_LEARNER")
    after, code = mb.apply_cfg(cfg, rm)
    assert code is None and after["version"] == 3 and 3 not in after["members"]
    assert after["retired"] == ["L"] and not mb.pending(after)
    assert mb.voters(after) == [0, 1, 2] and after["next_id"] == 4  # ids are never reused
    assert mb.apply_cfg(after, rm)[1] == "ECONFIG_CHANGED"  # a replayed entry is a no-op
    # the retired id cannot come back; a fresh one can
    assert mb.add_learner_cmd(after, {"cno": 0, "member_id": "L", "expect_cfg": 3}) == "EEXIST"
    assert isinstance(mb.add_learner_cmd(after, {"cno": 0, "member_id": "M",
                                                 "expect_cfg": 3}), dict)
    # once REPLACE is decided the learner is a voter: the point of no return
    joint, _ = mb.apply_cfg(cfg, mb.replace_cmd(cfg, 0, 3, 2))
    assert mb.remove_learner_cmd(joint, 3, 3, "abort") == "ENOT_LEARNER"
    assert mb.apply_cfg(joint, {**rm, "expect": 3})[1] == "ENOT_LEARNER"


def test_learner_timeout_must_exceed_a_few_heartbeats(capsys) -> None:
    from nodes.css.server import main
    assert main(["cell0", "0", "--learner-timeout", "0.2", "--heartbeat", "0.05"]) == 2
    assert "learner_timeout" in capsys.readouterr().err
    assert main(["cell0", "0", "--learner-timeout", "-1"]) == 2


# ---- the admin abort, at every step of a replace --------------------------------------------
def test_abort_right_after_admission_then_second_replace_succeeds() -> None:
    sim = RSim(1)
    sim.join("L1")
    admitted(sim, "L1")
    v = agreed(sim)["version"]
    rep = sim.request({"t": "remove_learner", "member_id": "L1", "expect_cfg": v})
    assert rep["ok"] and rep["res"] == {"cfg": v + 1, "removed": True, "member_id": "L1"}
    cfg = agreed(sim)
    assert cfg["version"] == v + 1 and "L1" in cfg["retired"] and not learners(sim.voters()[0])
    sim.run_until(lambda: sim.nodes["L1"].exit == 11, 10, "the removed learner stops")
    # retries are harmless; the retired id may not join again
    again = sim.request({"t": "remove_learner", "member_id": "L1"})
    assert again["ok"] and again["res"]["removed"] is False and again["cfg"] == v + 1
    sim.nodes.pop("L1")
    sim.join("L1")
    sim.run_until(lambda: sim.nodes["L1"].exit == 11, 10, "the retired id is told REMOVED")
    assert agreed(sim)["version"] == v + 1
    # a fresh learner is admitted and replaces member 0
    sim.join("L2")
    admitted(sim, "L2")
    assert replace(sim, "L2")["ok"]
    cfg = agreed(sim)
    assert sorted(m["member_id"] for m in cfg["members"].values()) == ["L2", "g1", "g2"]
    assert cfg["retired"] == ["L1", "g0"]
    assert sim.request({"t": "remove_learner", "member_id": "L2"})["info"]["state"] == "voter"


def test_abort_of_a_lagging_learner_and_of_a_caught_up_one() -> None:
    sim = RSim(2)
    sim.join("L1")
    admitted(sim, "L1")
    sim.kill("L1")  # lags from here on: its catch-up never finishes
    v = agreed(sim)["version"]
    rep = sim.request({"t": "remove_learner", "no": 0})
    assert rep["ok"] and rep["res"]["member_id"] == "L1"
    assert agreed(sim)["version"] == v + 1
    # a caught-up learner, aborted before REPLACE: by line number, with a stale version refused
    sim.join("L2")
    admitted(sim, "L2")
    sim.settle(1.0)
    v = agreed(sim)["version"]
    assert sim.request({"t": "remove_learner", "no": 0, "expect_cfg": v - 1})["err"] == \
        "ECONFIG_CHANGED"
    assert sim.request({"t": "remove_learner", "no": 0, "expect_cfg": v})["ok"]
    sim.run_until(lambda: sim.nodes["L2"].exit == 11, 10, "L2 stops")
    sim.join("L3")
    admitted(sim, "L3")
    assert replace(sim, "L3")["ok"]
    assert agreed(sim)["retired"] == ["L1", "L2", "g0"]


def test_abort_is_refused_once_replace_is_decided() -> None:
    sim = RSim(3)
    sim.join("L1")
    admitted(sim, "L1")
    sim.settle(1.0)
    # while REPLACE is in flight the abort is refused as busy (one change at a time)
    lead = sim.leader()
    rc, ab = Conn(), Conn()
    sim.feed(lead, Client(rc, {"v": 1, "id": 1, "t": "replace", "no": 0, "new": "L1"}))
    assert rc.replies == []  # proposed, not yet decided
    sim.feed(lead, Client(ab, {"v": 1, "id": 2, "t": "remove_learner", "member_id": "L1"}))
    assert ab.replies[0]["err"] == "EBUSY"
    sim.run_until(lambda: bool(rc.replies), 10, "replace finished")
    assert rc.replies[0]["ok"]
    assert replace(sim, "L1")["ok"]  # a retry: already done
    cfg = agreed(sim)
    for req in ({"member_id": "L1"}, {"no": 0}):
        rep = sim.request({"t": "remove_learner", **req})
        assert rep["err"] == "ENOT_LEARNER", rep
    assert sim.request({"t": "remove_learner", "member_id": "g1"})["info"]["state"] == "voter"
    assert sim.request({"t": "remove_learner", "member_id": "nobody"})["info"]["state"] == \
        "unknown"
    assert sim.request({"t": "remove_learner", "member_id": "L1", "no": 0})["err"] == "EINVAL"
    assert sim.request({"t": "remove_learner", "no": True})["err"] == "EINVAL"
    assert agreed(sim) == cfg  # nothing changed


def test_replace_retried_between_replace_and_finalize_is_answered_with_finalize() -> None:
    """A retry of a replace after its REPLACE is chosen and before its FINALIZE is applied (the
    first request's leader died, or its admin gave up waiting) is the same request: it gets the
    first one's answer once finalize is applied, not EINVAL ("not a learner": it is a voter
    already), which the admin takes as a refusal (test_crash_replace, 1 run in 10)."""
    sim = RSim(5)
    sim.join("L1")
    admitted(sim, "L1")
    sim.settle(1.0)
    lead = sim.leader()
    first = Conn()
    sim.feed(lead, Client(first, {"v": 1, "id": 1, "t": "replace", "no": 0, "new": "L1"}))
    sim.run_until(lambda: bool(lead.r.cfg["joint"]), 10, "replace applied on the leader")
    sim.feed(lead, Closed(first))
    retry, again = Conn(), Conn()
    sim.feed(lead, Client(retry, {"v": 1, "id": 2, "t": "replace", "no": 0, "new": "L1"}))
    assert lead.r.cfg["joint"] and retry.replies == [], retry.replies  # waits for finalize
    sim.feed(lead, Client(again, {"v": 1, "id": 3, "t": "replace", "no": 0, "new": "L1"}))
    assert again.replies[0]["err"] == "EBUSY"  # one waiter; a third copy comes back later
    sim.run_until(lambda: bool(retry.replies), 10, "the retry answered")
    assert retry.replies[0]["ok"] and not lead.r.cfg["joint"], retry.replies
    assert retry.replies[0]["res"]["cfg"] == lead.r.cfg["version"]
    assert first.replies == []
    assert replace(sim, "L1")["ok"]  # and after finalize: already done


# ---- the learner timeout --------------------------------------------------------------------
def test_silent_learner_is_dropped_after_the_timeout_and_a_live_one_is_not() -> None:
    sim = RSim(4, learner_timeout=2.0)
    sim.join("L1")
    admitted(sim, "L1")
    v = agreed(sim)["version"]
    sim.settle(3 * 2.0)  # alive and answering: kept
    assert agreed(sim)["version"] == v and "L1" in learners(sim.voters()[0]).values()
    sim.kill("L1")
    t0 = sim.time
    sim.run_until(lambda: "L1" in agreed(sim)["retired"], 10, "the dead learner dropped")
    assert sim.time - t0 >= 2.0  # not before learner_timeout
    cfg = agreed(sim)
    assert cfg["version"] == v + 1 and not learners(sim.voters()[0])
    entry = sim.cfg_entries(sim.voters()[0])[-1]
    assert entry["kind"] == "remove_learner" and entry["why"] == "timeout"
    sim.join("L2")
    admitted(sim, "L2")
    assert replace(sim, "L2")["ok"]


def test_forged_join_is_dropped_after_the_timeout() -> None:
    sim = RSim(5, learner_timeout=1.5)
    sim.run_until(lambda: sim.leader() is not None, 10, "a leader")
    lead = sim.leader()
    # a JOIN from nobody: admitted as a learner that never answers
    sim.feed(lead, Peer(-1, {"t": "JOIN", "cno": 1, "member_id": "forged", "udp": ["10.9.9.9", 1],
             "tcp": ["10.9.9.9", 2]}))
    sim.run_until(lambda: "forged" in learners(sim.voters()[0]).values(), 10, "admitted")
    sim.run_until(lambda: "forged" in agreed(sim)["retired"], 10, "forged learner dropped")
    sim.join("L1")
    admitted(sim, "L1")
    assert replace(sim, "L1")["ok"]


def test_removed_learner_notices_after_a_partition() -> None:
    sim = RSim(6)
    sim.join("L1")
    admitted(sim, "L1")
    sim.kill("L1")
    assert sim.request({"t": "remove_learner", "member_id": "L1"})["ok"]
    agreed(sim)
    sim.settle(1.0)
    sim.nodes["L1"].dead = False  # heals: it hears nobody, probes, and is told REMOVED
    sim.run_until(lambda: sim.nodes["L1"].exit == 11, 10, "the learner notices")


def test_restart_of_a_learner_whose_log_has_its_removal_is_refused() -> None:
    sim = RSim(7)
    sim.join("L1")
    admitted(sim, "L1")
    assert sim.request({"t": "remove_learner", "member_id": "L1"})["ok"]
    agreed(sim)
    g1 = sim.nodes["g1"]
    rec = Recovered()
    rec.decided = dict(g1.r.px.decided)
    r = Replica(0, {i: dict(m) for i, m in CELL.items()}, sim.t, 1, 0.0, rec,
                member_id="L1", join={"cno": 0, "member_id": "L1", "udp": [], "tcp": []})
    assert r.removed  # the server exits 11 instead of starting


# ---- property: random loss, random abort point, then a second replace -----------------------
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), drop=st.sampled_from([0.0, 0.1, 0.25]),
       how=st.sampled_from(["abort", "abort_no", "kill", "kill_then_abort", "leader_killed"]),
       wait=st.floats(0.0, 2.0))
def test_any_abandoned_join_lets_a_later_replace_succeed(seed: int, drop: float, how: str,
                                                          wait: float) -> None:
    sim = RSim(seed, drop=drop, dup=0.05, learner_timeout=2.0)
    sim.join("L1")
    admitted(sim, "L1")
    sim.settle(wait)
    if how in ("kill", "kill_then_abort"):
        sim.kill("L1")
    no = 1
    if how == "leader_killed":
        sim.kill("L1")
        sim.run_until(lambda: sim.leader() is not None, 20, "a leader")
        dead = sim.leader()
        sim.kill(dead.mid)  # the new leader must drop it too (its own timeout)
        no = dead.r.cfg["members"][dead.r.px.no]["no"]  # then the dead member is replaced
    if how in ("abort", "kill_then_abort"):
        rep = sim.request({"t": "remove_learner", "member_id": "L1"})
        # a retried or raced request may find it already removed by the timeout
        assert rep["ok"], rep
    if how == "abort_no":
        rep = sim.request({"t": "remove_learner", "no": 0})
        assert rep["ok"] or rep["err"] == "ENOT_LEARNER", rep
    sim.run_until(lambda: "L1" in agreed(sim)["retired"], 30, "L1 removed")
    for n in sim.voters():
        assert all(m["member_id"] != "L1" for m in n.r.cfg["members"].values())
    sim.join("L2", cno=no)
    admitted(sim, "L2")
    assert replace(sim, "L2", no=no)["ok"]
    cfg = agreed(sim)
    assert "L1" in cfg["retired"] and f"g{no}" in cfg["retired"]
    assert sorted(m["member_id"] for m in cfg["members"].values()) == sorted(
        ["L2"] + [f"g{i}" for i in range(3) if i != no])


def test_cli_usage_errors_of_the_abort_commands(capsys) -> None:
    from nodes.css.cli import main
    members = ["--members", "127.0.0.1:9"]  # never contacted: usage is checked first
    assert main([*members, "abort-join", "zero"]) == 2
    assert "not an integer" in capsys.readouterr().err
    assert main([*members, "remove-learner"]) == 2
    assert main([*members, "remove-learner", "a", "b"]) == 2
    assert "exactly one argument" in capsys.readouterr().err
