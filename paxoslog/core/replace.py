"""The `replace` procedure of admin.md §6.6 as a pure step function.

`start(plan)` gives the first action; `advance(state, outcome)` takes what the last action did
and gives the next one, until an action of kind "done". The driver (`paxoslog.app.replace`)
performs the actions through the agents and the event log; this module has no sockets, files
or clock, so every transition — including each interruption and its rollback — is a plain
function call in the tests.

Hot: check -> ship -> join (repeated while the learner catches up) -> promote -> commit ->
retire -> deploy -> done. Promote is the point of no return: a failure before it runs
`rollback` (the agent's abort step plus removal of the join file) and ends with exit 1; a
failure after it is recorded and the remaining steps still run.
Cold: commit -> retire (the agent's wipe: the data directory moved aside) -> deploy -> done.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from paxoslog.errors import Refused

# Steps before the point of no return: their failure rolls the whole replace back.
BEFORE_PROMOTE = ("check", "ship", "join", "promote")
JOIN_TIMEOUT_MESSAGE = "cannot start the css server"
NOT_RUNNING_MESSAGE = "cannot be members change because not running servers"
TIMED_OUT = 5  # the agent's exit code for a timeout (nodes.md §4.1)
_LAG = re.compile(r"\(lag (\d+|None)\)")


def replace_mode(states: Sequence[str], no: int, force: bool) -> str:
    """§3.8 check 7 on the members' states (indexed by member number): 'hot' or 'cold'."""
    others = [s for i, s in enumerate(states) if i != no]
    mine = states[no] if 0 <= no < len(states) else "error"
    if others and all(s == "running" for s in others) and (mine != "error" or force):
        return "hot"
    if all(s == "stopped" for s in states):
        return "cold"
    if force and "running" not in states:
        return "cold"
    raise Refused(NOT_RUNNING_MESSAGE)


@dataclass(frozen=True)
class Plan:
    cell: str
    no: int
    mode: str  # "hot" or "cold"
    new_host: str
    old_host: str
    survivor: str | None = None  # hot: the host the check runs on
    join_rounds: int = 60  # join calls (a few seconds each) before the learner is given up


@dataclass(frozen=True)
class Action:
    kind: str  # check ship join promote commit retire wipe deploy rollback done
    host: str | None = None
    expect_cfg: int | None = None
    exit_code: int = 0
    message: str | None = None  # done: the one-line failure (before the point of no return)


@dataclass(frozen=True)
class Outcome:
    """What an action did. `code` is the agent's exit code (negative: no reply);
    `unreachable` marks a host that could not be reached at all; for deploy, `failed` maps
    each host that failed to its reason."""

    ok: bool
    code: int = 0
    result: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    unreachable: bool = False
    failed: Mapping[str, str] = field(default_factory=dict)
    unreachable_hosts: frozenset[str] = frozenset()


OK = Outcome(True)


@dataclass(frozen=True)
class State:
    plan: Plan
    last: Action
    expect_cfg: int | None = None
    join_round: int = 0
    failure: str | None = None  # why the rollback runs
    committed: bool = False
    errors: tuple[str, ...] = ()  # `<host>: <step> failed: <reason>` after the point of no return
    warnings: tuple[str, ...] = ()
    progress: str | None = None  # a line for the operator (the learner's lag)


def start(plan: Plan) -> tuple[State, Action]:
    if plan.mode == "hot":
        first = Action("check", plan.survivor)
    elif plan.mode == "cold":
        first = Action("commit")
    else:
        raise ValueError(f"unknown replace mode {plan.mode!r}")
    return State(plan, first), first


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _go(state: State, action: Action, **changes: Any) -> tuple[State, Action]:
    return replace(state, last=action, progress=None, **changes), action


def _finish(state: State) -> tuple[State, Action]:
    done = Action("done", exit_code=1 if state.errors else 0)
    return _go(state, done)


def _roll_back(state: State, failure: str) -> tuple[State, Action]:
    return _go(state, Action("rollback", state.plan.new_host), failure=failure)


def _failed(host: str | None, step: str, outcome: Outcome) -> str:
    return f"{host}: {step} failed: {outcome.reason or 'no reason given'}"


def advance(state: State, outcome: Outcome) -> tuple[State, Action]:
    kind = state.last.kind
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise ValueError(f"no step follows {kind!r}")
    return handler(state, outcome)


def _after_check(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    if not o.ok:
        # nothing has been done yet: a refusal, not a rollback
        return _go(state, Action("done", exit_code=1, message=_failed(p.survivor, "check", o)))
    version = _int(o.result.get("config_version"))
    if version is None:
        return _go(state, Action("done", exit_code=1,
                                 message=f"{p.survivor}: check reported no configuration version"))
    return _go(state, Action("ship", p.new_host), expect_cfg=version)


def _after_ship(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    if not o.ok:
        return _roll_back(state, _failed(p.new_host, "ship", o))
    return _go(state, Action("join", p.new_host), join_round=1)


def _after_join(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    if o.ok:
        version = _int(o.result.get("config_version"))
        if o.result.get("caught_up") is not True or version is None:
            return _roll_back(state, f"{p.new_host}: join failed: the learner reported no "
                                     "caught-up configuration version")
        # the learner's admission moved the version on: promote is guarded by that one
        return _go(state, Action("promote", p.new_host, expect_cfg=version), expect_cfg=version)
    if o.code == TIMED_OUT:
        if state.join_round >= p.join_rounds:
            return _roll_back(state, JOIN_TIMEOUT_MESSAGE)
        m = _LAG.search(o.reason)
        lag = m.group(1) if m else "unknown"
        new, action = _go(state, Action("join", p.new_host), join_round=state.join_round + 1)
        return replace(new, progress=f"{p.cell}#{p.no} on {p.new_host}: learner lag {lag}"), action
    return _roll_back(state, _failed(p.new_host, "join", o))


def _after_promote(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    if not o.ok:
        # Under writes the learner falls behind again between its join and the promote: the
        # leader refuses with ENOT_CAUGHT_UP and nothing changed, so it catches up once more
        # (another join round) and is promoted then; the join rounds bound the retries.
        if "ENOT_CAUGHT_UP" in o.reason and state.join_round < p.join_rounds:
            new, action = _go(state, Action("join", p.new_host), join_round=state.join_round + 1)
            return replace(new, progress=f"{p.cell}#{p.no} on {p.new_host}: learner fell "
                                         "behind before its promotion; catching up"), action
        return _roll_back(state, _failed(p.new_host, "promote", o))
    return _go(state, Action("commit"))


def _after_rollback(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    message = state.failure or "replace failed"
    if not o.ok:
        message += (f"; the rollback on {p.new_host} failed too ({o.reason}): run "
                    f"`paxos-node replace css {p.cell} {p.no} --step abort` there")
    return _go(state, Action("done", exit_code=1, message=message))


def _after_commit(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    if p.mode == "cold":
        if not o.ok:  # nothing had changed in the cell: a plain refusal
            return _go(state, Action("done", exit_code=1, message=o.reason or "commit failed"))
        return _go(state, Action("wipe", p.old_host), committed=True)
    if not o.ok:
        # the cell has changed already: go on with what can still be done (retire), but do
        # not deploy a HEAD that lacks the change
        return _go(state, Action("retire", p.old_host),
                   errors=state.errors + (f"{p.cell}: commit failed: {o.reason}",))
    return _go(state, Action("retire", p.old_host), committed=True)


def _after_retire(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    step = state.last.kind
    if o.ok:
        pass
    elif o.unreachable:  # §6.6: the old member is retired only "if reachable"
        state = replace(state, warnings=state.warnings + (
            f"{p.old_host}: not reachable; the old member of {p.cell}#{p.no} was not "
            f"retired ({o.reason})",))
    else:
        state = replace(state, errors=state.errors + (_failed(p.old_host, step, o),))
    if not state.committed:
        return _finish(state)
    return _go(state, Action("deploy"))


def _after_deploy(state: State, o: Outcome) -> tuple[State, Action]:
    p = state.plan
    errors, warnings = list(state.errors), list(state.warnings)
    for host, reason in o.failed.items():
        if host == p.old_host and host in o.unreachable_hosts:
            warnings.append(f"{host}: not reachable; deploy it when it is back ({reason})")
        else:
            errors.append(f"{host}: deploy failed: {reason}")
    if not o.ok and not o.failed:
        errors.append(f"{p.cell}: deploy failed: {o.reason}")
    return _finish(replace(state, errors=tuple(errors), warnings=tuple(warnings)))


_HANDLERS = {
    "check": _after_check,
    "ship": _after_ship,
    "join": _after_join,
    "promote": _after_promote,
    "rollback": _after_rollback,
    "commit": _after_commit,
    "retire": _after_retire,
    "wipe": _after_retire,
    "deploy": _after_deploy,
}
