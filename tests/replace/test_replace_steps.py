"""The replace procedure's pure step function (paxoslog.core.replace): every transition,
each interruption before the point of no return rolled back, each failure after it recorded."""

from __future__ import annotations

import pytest

from paxoslog.core.replace import (
    JOIN_TIMEOUT_MESSAGE,
    OK,
    Outcome,
    Plan,
    advance,
    start,
)

HOT = Plan("c0", 0, "hot", new_host="new", old_host="old", survivor="s1", join_rounds=3)
COLD = Plan("c0", 0, "cold", new_host="new", old_host="old")
FAIL = Outcome(False, 1, reason="boom")
DOWN = Outcome(False, -1, reason="connection refused", unreachable=True)


def walk(plan, outcomes):
    state, action = start(plan)
    seen = [(action.kind, action.host)]
    for o in outcomes:
        state, action = advance(state, o)
        seen.append((action.kind, action.host))
    return state, action, seen


CHECKED = Outcome(True, result={"config_version": 4})
JOINED = Outcome(True, result={"caught_up": True, "config_version": 5})


def test_hot_happy_path_in_order_and_promote_expects_joins_version() -> None:
    state, action = start(HOT)
    assert (action.kind, action.host) == ("check", "s1")
    state, action = advance(state, CHECKED)
    assert (action.kind, action.host) == ("ship", "new")
    state, action = advance(state, OK)
    assert (action.kind, action.host) == ("join", "new")
    state, action = advance(state, JOINED)
    assert (action.kind, action.expect_cfg) == ("promote", 5)  # check's + 1: the admission
    state, action = advance(state, OK)
    assert action.kind == "commit"
    state, action = advance(state, OK)
    assert (action.kind, action.host) == ("retire", "old")
    state, action = advance(state, OK)
    assert action.kind == "deploy"
    state, action = advance(state, OK)
    assert (action.kind, action.exit_code, action.message) == ("done", 0, None)
    assert state.errors == () and state.warnings == ()


def test_check_refusal_changes_nothing_no_rollback() -> None:
    _, action, seen = walk(HOT, [Outcome(False, 4, reason="a configuration change is pending")])
    assert seen == [("check", "s1"), ("done", None)]
    assert action.exit_code == 1
    assert action.message == "s1: check failed: a configuration change is pending"
    _, action, _ = walk(HOT, [Outcome(True, result={})])
    assert action.kind == "done" and action.exit_code == 1


@pytest.mark.parametrize("fail_at", ["ship", "join", "promote"])
def test_failure_before_promote_rolls_back(fail_at) -> None:
    steps = {"ship": [CHECKED], "join": [CHECKED, OK], "promote": [CHECKED, OK, JOINED]}
    state, action, seen = walk(HOT, [*steps[fail_at], FAIL])
    assert (action.kind, action.host) == ("rollback", "new")
    assert "commit" not in [k for k, _ in seen]
    state, action = advance(state, OK)
    assert action.kind == "done" and action.exit_code == 1
    assert action.message == f"new: {fail_at} failed: boom"


def test_rollback_failure_tells_the_operator_what_to_run() -> None:
    state, action, _ = walk(HOT, [CHECKED, OK, FAIL])
    state, action = advance(state, DOWN)
    assert action.kind == "done" and action.exit_code == 1
    assert action.message.startswith("new: join failed: boom; the rollback on new failed too")
    assert "paxos-node replace css c0 0 --step abort" in action.message


def test_join_repeats_with_progress_then_times_out() -> None:
    slow = Outcome(False, 5, reason="learner c0#0 (ab) not caught up within 5 s (lag 812)")
    state, action, seen = walk(HOT, [CHECKED, OK, slow])
    assert action.kind == "join" and state.progress == "c0#0 on new: learner lag 812"
    state, action = advance(state, slow)
    assert action.kind == "join" and state.join_round == 3
    state, action = advance(state, slow)  # third round: the plan's limit
    assert action.kind == "rollback" and state.failure == JOIN_TIMEOUT_MESSAGE
    state, action = advance(state, OK)
    assert action.message == "cannot start the css server"


def test_a_learner_behind_again_at_promote_catches_up_and_is_promoted() -> None:
    # under writes the learner can fall behind between join and promote: nothing changed, so
    # it joins (catches up) again and the promote is retried, within the join rounds
    behind = Outcome(False, 4, reason="promote of ab as c0#0 refused: ENOT_CAUGHT_UP")
    state, action, seen = walk(HOT, [CHECKED, OK, JOINED, behind])
    assert (action.kind, action.host) == ("join", "new")
    assert state.progress and "fell behind" in state.progress
    state, action = advance(state, Outcome(True, result={"caught_up": True,
                                                         "config_version": 5}))
    assert (action.kind, action.expect_cfg) == ("promote", 5)
    state, action = advance(state, OK)
    assert action.kind == "commit"
    # the rounds still bound it: a learner that never keeps up is rolled back
    state, action, _ = walk(HOT, [CHECKED, OK, JOINED, behind, JOINED, behind, JOINED])
    assert state.join_round == 3 and action.kind == "promote"
    state, action = advance(state, behind)
    assert action.kind == "rollback" and "ENOT_CAUGHT_UP" in state.failure


def test_join_without_caught_up_version_rolls_back() -> None:
    _, action, _ = walk(HOT, [CHECKED, OK, Outcome(True, result={"caught_up": True})])
    assert action.kind == "rollback"


def test_failures_after_promote_are_recorded_and_the_rest_still_runs() -> None:
    state, action, seen = walk(HOT, [CHECKED, OK, JOINED, OK, OK, FAIL,
                                     Outcome(False, failed={"m1": "timeout"})])
    assert [k for k, _ in seen][-3:] == ["retire", "deploy", "done"]
    assert action.exit_code == 1 and action.message is None
    assert state.errors == ("old: retire failed: boom", "m1: deploy failed: timeout")


def test_unreachable_old_host_is_a_warning_only() -> None:
    state, action, _ = walk(HOT, [CHECKED, OK, JOINED, OK, OK, DOWN,
                                  Outcome(False, failed={"old": "no route"},
                                          unreachable_hosts=frozenset({"old"}))])
    assert action.kind == "done" and action.exit_code == 0
    assert len(state.warnings) == 2 and state.errors == ()


def test_commit_failure_after_promote_retires_but_does_not_deploy() -> None:
    state, action, seen = walk(HOT, [CHECKED, OK, JOINED, OK, FAIL, OK])
    assert [k for k, _ in seen][-3:] == ["commit", "retire", "done"]
    assert action.exit_code == 1 and state.errors == ("c0: commit failed: boom",)


def test_cold_path_and_its_failures() -> None:
    state, action, seen = walk(COLD, [OK, OK, OK])
    assert seen == [("commit", None), ("wipe", "old"), ("deploy", None), ("done", None)]
    assert action.exit_code == 0
    _, action, seen = walk(COLD, [Outcome(False, reason="not found: c0")])
    assert seen[-1] == ("done", None) and action.message == "not found: c0"
    state, action, _ = walk(COLD, [OK, DOWN, OK])  # dead old host: wipe skipped, warned
    assert action.exit_code == 0 and state.warnings
    state, action, _ = walk(COLD, [OK, FAIL, OK])
    assert action.exit_code == 1 and state.errors == ("old: wipe failed: boom",)


def test_nothing_follows_done() -> None:
    state, action, _ = walk(COLD, [OK, OK, OK])
    with pytest.raises(ValueError):
        advance(state, OK)
    with pytest.raises(ValueError):
        start(Plan("c0", 0, "warm", "n", "o"))
