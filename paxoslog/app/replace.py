"""The driver of `replace` (admin.md §3.8, §6.6): performs the actions the pure step function
(`paxoslog.core.replace`) asks for, through the agents, the hosts' files and the event log.

Checks 1-6 are `decide`'s and run before any connection; check 7 (members' states) and 8 (the
agent on the new host) are gathered here. `inject` (tests only) makes the named step fail
without being performed, so every interruption point can be shown to roll back or to leave the
operator a way to finish: `{step: "before"}` fails the step without performing it,
`{step: "after"}` performs it and then reports a failure, `{step: "interrupt"}` performs it
and then raises KeyboardInterrupt as Ctrl-C would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from paxoslog.app.cssrun import Member
from paxoslog.app.session import Session, append
from paxoslog.core.decide import Command, decide
from paxoslog.core.events import apply
from paxoslog.core.model import Host, Topology
from paxoslog.core.render import render
from paxoslog.core.replace import (
    JOIN_TIMEOUT_MESSAGE,
    TIMED_OUT,
    Action,
    Outcome,
    Plan,
    advance,
    replace_mode,
    start,
)
from paxoslog.errors import NotFound, PaxosError, Refused, RemoteError
from paxoslog.remote.agentcall import NO_REPLY, NOT_INSTALLED, AgentReply, Agents
from paxoslog.remote.sshpool import SSHSession

JOIN_CALL = 5  # seconds per join call: the learner's lag is shown between calls
STEP_TIMEOUT = 30  # promote / retire / abort, inside the agent
CALL_SLACK = 40  # SSH, daemon readiness (up to 30 s at the first join) on top of the above
# A survivor's lag is one sample: under load it is briefly past the limit now and then, so a
# check refused for lag or connection is asked again for this long before the replace gives up.
CHECK_PATIENCE = 10.0
TRANSIENT = ("lags", "not connected")


@dataclass
class Request:
    cell: str
    no: int
    address: tuple[str, str]
    force: bool = False
    message: str = ""

    def command(self, mode: str) -> Command:
        return Command("replace", {"name": self.cell, "no": self.no,
                                   "address": list(self.address), "force": self.force,
                                   "mode": mode})


@dataclass
class Report:
    exit_code: int
    message: str | None  # the one-line failure before the point of no return
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    mode: str


def _host(t: Topology, name: str) -> Host:
    host = t.host(name)
    if host is None:
        raise NotFound(name)
    return host


def _outcome(r: AgentReply) -> Outcome:
    return Outcome(r.ok, r.code, r.result or {}, r.reason or "",
                   unreachable=r.code == NO_REPLY and not r.timed_out)


def member_states(agents: Agents, t: Topology, cell: str) -> list[str]:
    """§3.8 check 7's facts: each member's state as its host's agent reports it."""
    servers = t.cell(cell).servers
    calls = [(_host(t, s.taddr), ["status", "css", cell, str(s.no)]) for s in servers]
    states = []
    for reply in agents.call_many(calls):
        members = (reply.result or {}).get("members") if reply.ok else None
        state = members[0].get("status") if isinstance(members, list) and members \
            and isinstance(members[0], dict) else None
        states.append(state if state in ("running", "stopped") else "error")
    return states


def check_agent(agents: Agents, host: Host) -> None:
    """§3.8 check 8."""
    reply = agents.call(host, ["version"])
    if reply.code == NOT_INSTALLED:
        raise Refused(f"it does not properly install PAXOS to {host.hostname}")
    if not reply.ok:
        reason = reply.reason or "no reply"
        # the SSH layer's reason does not always name the host; the operator needs it
        raise RemoteError(reason if reason.startswith(f"{host.hostname}:")
                          else f"{host.hostname}: {reason}")


def rollback_learner(agents: Agents, host: Host, cell: str, no: int,
                     place: Callable[[dict[str, tuple[bytes, int]], list[str]], str | None]
                     ) -> Outcome:
    """Before the point of no return: the learner is removed from the cell, stopped, its data
    directory moved aside, and the join file removed (`place(files, remove)` writes and
    removes files on the learner's host)."""
    args = ["replace", "css", cell, str(no), "--step", "abort", "--timeout", str(STEP_TIMEOUT)]
    abort = _outcome(agents.call_each(host, args, timeout=STEP_TIMEOUT + CALL_SLACK))
    if not abort.ok:
        return abort
    reason = place({}, [join_path(cell)])
    return Outcome(reason is None, 0 if reason is None else 1, reason=reason or "")


def join_path(cell: str) -> str:
    return f"etc/cell/{cell}.join.conf"


def join_learner(agents: Agents, host: Host, cell: str, no: int, conf: bytes,
                 place: Callable[[dict[str, tuple[bytes, int]], list[str]], str | None], *,
                 check_wait: float = 30.0, join_rounds: int = 60,
                 show: Callable[[str], None] | None = None) -> str | None:
    """§6.6 "at the next start css the new member starts empty and catches up from the others
    as a learner before voting": check -> join file (the deployed cell file: the member's line
    is already its own) -> join (repeated while it catches up) -> promote -> join file removed.
    The cell's configuration already names this host, so no event and no deploy follow. Returns
    None, or the one-line failure (after rolling the learner back when it had started)."""
    import time

    def step(name: str, *extra: str, timeout: float = STEP_TIMEOUT + CALL_SLACK) -> Outcome:
        args = ["replace", "css", cell, str(no), "--step", name, *extra]
        return _outcome(agents.call_each(host, args, timeout=timeout))

    # the survivors were just started: poll until they elected a leader and caught up
    deadline = time.monotonic() + check_wait
    while not (check := step("check")).ok and time.monotonic() < deadline:
        time.sleep(0.3)
    if not check.ok:
        return f"{host.hostname}: check failed: {check.reason or 'no reason given'}"
    reason = place({join_path(cell): (conf, 0o644)}, [])
    if reason is not None:
        return f"{host.hostname}: ship failed: {reason}"
    try:
        failure = _join_and_promote(step, host.hostname, cell, no, join_rounds, show)
    except KeyboardInterrupt:
        # not promoted (or not known to be): a learner left behind would never vote, and the
        # next start css would not see the member as empty any more
        rollback_learner(agents, host, cell, no, place)
        raise
    if failure is None:
        # promoted: the member votes from the cell file it was started with, which equals
        # the deployed one; the host keeps only HEAD's files
        reason = place({}, [join_path(cell)])
        return None if reason is None else \
            f"{host.hostname}: the join file could not be removed: {reason}"
    back = rollback_learner(agents, host, cell, no, place)
    if not back.ok:
        failure += (f"; the rollback on {host.hostname} failed too ({back.reason}): run "
                    f"`paxos-node replace css {cell} {no} --step abort` there")
    return failure


def _join_and_promote(step: Callable[..., Outcome], host: str, cell: str, no: int,
                      join_rounds: int, show: Callable[[str], None] | None) -> str | None:
    """join (repeated while the learner catches up), then promote: None, or the failure.
    A promote refused with ENOT_CAUGHT_UP (the learner fell behind again under writes) sends
    it back to join, as the replace step function does; the join rounds bound it all."""
    rounds = 0
    while True:
        while True:
            rounds += 1
            join = step("join", "--timeout", str(JOIN_CALL), timeout=JOIN_CALL + CALL_SLACK)
            if join.ok or join.code != TIMED_OUT:
                break
            if rounds >= join_rounds:
                return f"{host}: {cell}#{no}: {JOIN_TIMEOUT_MESSAGE} ({join.reason})"
            if show is not None:
                show(f"{cell}#{no} on {host}: {join.reason}")
        version = join.result.get("config_version") if join.ok else None
        if not (join.ok and isinstance(version, int) and not isinstance(version, bool)):
            return f"{host}: join failed: {join.reason or 'no configuration version'}"
        promote = step("promote", "--expect-cfg", str(version), "--timeout", str(STEP_TIMEOUT))
        if promote.ok:
            return None
        if "ENOT_CAUGHT_UP" not in promote.reason or rounds >= join_rounds:
            return f"{host}: promote failed: {promote.reason or 'no reason given'}"


class Driver:
    def __init__(self, session: Session, ssh: SSHSession, req: Request,
                 inject: Mapping[str, str] | None = None,
                 show: Callable[[str], None] | None = None) -> None:
        from paxoslog.app.deploy import spec_of

        self.session, self.ssh, self.req = session, ssh, req
        self.inject = dict(inject or {})
        self.show = show or (lambda line: None)
        self.agents = Agents(session.home.root, ssh, spec_of)
        self.topology = session.head()[2]

    # -------------------------------------------------------------- the checks

    def prepare(self) -> Plan:
        t, req = self.topology, self.req
        (event,) = decide(t, req.command("hot"))  # checks 1-6, before any connection
        cell = t.cell(req.cell)
        old = next(s for s in cell.servers if s.no == req.no)
        states = member_states(self.agents, t, req.cell)
        mode = replace_mode(states, req.no, req.force)
        new_host = _host(t, event.data["taddr"])
        if mode == "hot" and new_host.hostname == old.taddr:
            # the learner's data directory ~/data/<cell>/<no> is the running member's
            raise Refused(f"member {req.no} of {req.cell} cannot be replaced on its own host "
                          "while the cell runs; stop the cell for a cold replace")
        check_agent(self.agents, new_host)
        survivor = next((s.taddr for s in cell.servers if s.no != req.no), None)
        self.after = apply(t, event)
        return Plan(req.cell, req.no, mode, new_host.hostname, old.taddr, survivor)

    # -------------------------------------------------------------- the actions

    def _args(self, step: str, *extra: str) -> list[str]:
        return ["replace", "css", self.req.cell, str(self.req.no), "--step", step, *extra]

    def _call(self, host: str, args: list[str], timeout: float) -> Outcome:
        return _outcome(self.agents.call(_host(self.topology, host), args, timeout=timeout))

    def perform(self, plan: Plan, action: Action) -> Outcome:
        when = self.inject.get(action.kind)
        if when == "before":
            return Outcome(False, 1, reason="injected failure")
        outcome = self._perform(plan, action)
        if when == "after":  # done, but the driver "dies" before it learns so
            return Outcome(False, 1, reason="injected failure")
        if when == "interrupt":  # done, then the operator presses Ctrl-C
            raise KeyboardInterrupt
        return outcome

    def _perform(self, plan: Plan, action: Action) -> Outcome:
        kind = action.kind
        if kind == "check":
            deadline = time.monotonic() + CHECK_PATIENCE
            while True:
                got = self._call(action.host, self._args("check"), STEP_TIMEOUT)
                if got.ok or got.code != 4 or time.monotonic() > deadline or not any(
                        t in got.reason for t in TRANSIENT):
                    return got
                time.sleep(0.5)
        if kind == "ship":
            return self._ship(plan)
        if kind == "join":
            return self._call(action.host, self._args("join", "--timeout", str(JOIN_CALL)),
                              JOIN_CALL + CALL_SLACK)
        if kind == "promote":
            return self._call(action.host, self._args(
                "promote", "--expect-cfg", str(action.expect_cfg), "--timeout",
                str(STEP_TIMEOUT)), STEP_TIMEOUT + CALL_SLACK)
        if kind == "rollback":
            return self._rollback(plan)
        if kind == "commit":
            return self._commit(plan)
        if kind == "retire":
            return self._call(action.host, self._args("retire", "--timeout", str(STEP_TIMEOUT)),
                              STEP_TIMEOUT + CALL_SLACK)
        if kind == "wipe":
            return self._call(action.host, ["wipe", "css", plan.cell, str(plan.no), "--yes"],
                              STEP_TIMEOUT)
        if kind == "deploy":
            return self._deploy(plan)
        raise ValueError(f"unknown action {kind}")

    def _join_path(self) -> str:
        return join_path(self.req.cell)

    def _ship(self, plan: Plan) -> Outcome:
        """§6.6 step 2: HEAD's files, the provisional join file (HEAD's lines with line NO at
        the new endpoints) and the cell key; nothing is committed."""
        from paxoslog.app import deploy as dep

        host = _host(self.topology, plan.new_host)
        outcome = dep.deploy(self.session.home, [host], self.ssh, author=self.session.author)
        if outcome.errors:
            return Outcome(False, 1, reason=outcome.errors[host.hostname])
        join = render(self.after)[f"etc/cell/{plan.cell}.conf"]
        files = {self._join_path(): (join, 0o644), **self._key(plan)}
        reason = dep.put_files(self.session.home, host, self.ssh, files)
        return Outcome(reason is None, 0 if reason is None else 1, reason=reason or "")

    def _key(self, plan: Plan) -> dict[str, tuple[bytes, int]]:
        """The cell secret for the new host, from `$PAXOS_HOME/etc/cell/<cell>.key` when the
        admin holds one (deploy does not ship keys; without it the new member cannot run)."""
        key = self.session.home.path(f"etc/cell/{plan.cell}.key")
        if not os.path.isfile(key) or os.path.islink(key):
            return {}
        with open(key, "rb") as f:
            return {f"etc/cell/{plan.cell}.key": (f.read(4096), 0o600)}

    def _rollback(self, plan: Plan) -> Outcome:
        """Before the point of no return: the learner is removed from the cell, stopped, its
        data directory moved aside, and the join file removed."""
        from paxoslog.app import deploy as dep

        host = _host(self.topology, plan.new_host)
        return rollback_learner(self.agents, host, plan.cell, plan.no,
                                lambda files, remove: dep.put_files(
                                    self.session.home, host, self.ssh, files, remove=remove))

    def _commit(self, plan: Plan) -> Outcome:
        try:
            append(self.session, self.req.command(plan.mode), self.req.message)
        except PaxosError as e:
            return Outcome(False, 1, reason=e.message)
        self.topology = self.session.head()[2]
        return Outcome(True)

    def _deploy(self, plan: Plan) -> Outcome:
        """§6.6 step 7: HEAD to every member's host and the old host."""
        from paxoslog.app import deploy as dep

        t = self.topology
        names = [s.taddr for s in t.cell(plan.cell).servers] + [plan.old_host]
        hosts = [_host(t, n) for n in dict.fromkeys(names)]
        outcome = dep.deploy(self.session.home, hosts, self.ssh, author=self.session.author)
        key = self._key(plan)
        if plan.mode == "cold" and key and plan.new_host not in outcome.errors:
            reason = dep.put_files(self.session.home, _host(t, plan.new_host), self.ssh, key)
            if reason:
                outcome.errors[plan.new_host] = reason
        unreachable = frozenset()
        if plan.old_host in outcome.errors:
            probe = self.agents.call(_host(t, plan.old_host), ["version"])
            if probe.code == NO_REPLY and not probe.timed_out:
                unreachable = frozenset({plan.old_host})
        return Outcome(not outcome.errors, failed=dict(outcome.errors),
                       unreachable_hosts=unreachable)

    # -------------------------------------------------------------- the loop

    def run(self) -> Report:
        plan = self.prepare()
        state, action = start(plan)
        while action.kind != "done":
            try:
                outcome = self.perform(plan, action)
            except KeyboardInterrupt:
                # Ctrl-C: before promote this rolls back; after it the event still has to be
                # recorded, so the remaining steps run
                outcome = Outcome(False, 1, reason="interrupted")
            state, action = advance(state, outcome)
            if state.progress:
                self.show(state.progress)
        return Report(action.exit_code, action.message, state.errors, state.warnings, plan.mode)


def run(session: Session, ssh: SSHSession, req: Request, **kw: Any) -> Report:
    return Driver(session, ssh, req, **kw).run()


def joiner(agents: Agents, topology: Topology,
           show: Callable[[str], None] | None = None) -> Callable[[Member], str | None]:
    """`cssrun.start_cell`'s `join`: the agent's replace steps on the member's host, with the
    cell file HEAD renders for it as the join file (here, not in cssrun: only a cold replace's
    next start needs the deploy machinery, and cssrun is below the session)."""
    def join(m: Member) -> str | None:
        from paxoslog.app import deploy as dep
        from paxoslog.store.home import Home

        host = m.host
        assert host is not None
        conf = render(topology)[f"etc/cell/{m.cell}.conf"]
        home = Home(agents.home_root)

        def place(files: dict[str, tuple[bytes, int]], remove: list[str]) -> str | None:
            return dep.put_files(home, host, agents.session, files, remove=remove)
        return join_learner(agents, host, m.cell, m.no, conf, place, show=show)
    return join
