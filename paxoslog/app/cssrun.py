"""`status css`, `start css` and `stop css` (admin.md §3.6, §6.3) over the `paxos-node` agents.

Every member is reached at its registered TCP host (rule L or SSH, `Agents`). An agent's reply
is hostile: each field of a member entry is type-checked here, and anything off shape makes that
member `error` with a reason, like an unreachable host does. The procedures return what
happened (entries, failure lines); the CLI layer prints them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from paxoslog.core.model import Cell, Host, Server, Topology
from paxoslog.remote.agentcall import AgentReply, Agents
from paxoslog.remote.sshconfig import HostSpec

# agent exit codes (nodes.md §4.1)
NOT_RUNNING, REFUSED, TIMED_OUT, BAD_ETC, LOCKED = 3, 4, 5, 6, 7
START_TIMEOUT = 45.0  # the agent waits up to 30 s for readiness, plus the SSH round trip
STOP_TIMEOUT = 45.0
STOP_GRACE = 10  # agent --timeout: graceful stop, then (with --force) SIGTERM/SIGKILL
MAX_LIST = 1000


@dataclass
class Member:
    """One server's state as the admin reports it (§4.5)."""

    cell: str
    server: Server
    host: Host | None
    status: str = "error"
    reason: str | None = None
    code: int | None = None  # the agent's exit code (or AgentReply's 127/-1/-2)
    timed_out: bool = False
    master: bool = False
    birth: int | None = None
    next_sequence: int | None = None
    connected: list[int] = field(default_factory=list)
    pid: int | None = None
    client_list: list[str] = field(default_factory=list)
    member_id: str | None = None
    leader: int | None = None  # the leader this member follows
    started: int | None = None  # when its process started (Unix seconds)
    agent: str | None = None  # `status --long`: "differs (VERSION BUILD)" for another build

    @property
    def no(self) -> int:
        return self.server.no

    @property
    def hostname(self) -> str:
        return self.server.taddr

    @property
    def fresh(self) -> bool:
        """Stopped and never initialized here: no data directory (§4.1: next_sequence 0)."""
        return self.status == "stopped" and self.next_sequence == 0 and self.member_id is None


def _int(v: Any, lo: int = 0, hi: int = (1 << 63) - 1) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi else None


def _text(v: Any, limit: int = 255) -> str | None:
    if not isinstance(v, str) or not v or len(v) > limit or not v.isprintable():
        return None
    return v


def status_args(cell: str, no: int) -> list[str]:
    return ["status", "css", cell, str(no), "--long"]


def spec_of(host: Host) -> HostSpec:
    """The host's own connection settings (as `app.deploy.spec_of`, without importing the
    deploy machinery and its git library into every status call)."""
    return HostSpec(host.hostname, host.user, host.port, host.use_ssh_config)


def member_from(m: Member, reply: AgentReply) -> Member:
    """Fill `m` from the agent's `status css <cell> <no> --long` reply."""
    m.code, m.timed_out = reply.code, reply.timed_out
    if not reply.ok:
        m.status, m.reason = "error", reply.reason or f"agent exited with {reply.code}"
        return m
    members = (reply.result or {}).get("members")
    entry = members[0] if isinstance(members, list) and len(members) == 1 else None
    if not isinstance(entry, dict) or entry.get("No.") != m.no:
        m.status, m.reason = "error", f"agent reply on {m.hostname} does not describe " \
            f"{m.cell}#{m.no}"
        return m
    status = entry.get("status")
    if status not in ("running", "stopped", "error"):
        m.status, m.reason = "error", "agent reply has no valid status"
        return m
    m.status = status
    m.member_id = _text(entry.get("member_id"), 64)
    m.next_sequence = _int(entry.get("next_sequence"))
    if status == "error":
        m.reason = _text(str(entry.get("error") or ""), 300) or "member does not answer"
        return m
    if status == "stopped":
        return m
    m.master = entry.get("master") is True
    m.birth = _int(entry.get("birth"))
    m.leader = _int(entry.get("leader"), 0, 999)
    detail = entry.get("detail")
    started = detail.get("started") if isinstance(detail, dict) else None
    if isinstance(started, float | int) and not isinstance(started, bool) and \
            0 <= started < 1 << 40:
        m.started = int(started)
    m.pid = _int(entry.get("pid"), 1, 1 << 31)
    conn = entry.get("connected")
    if isinstance(conn, list):
        m.connected = sorted({n for n in conn[:MAX_LIST]
                              if _int(n, 0, 999) is not None and n != m.no})
    clients = entry.get("client_list")
    if isinstance(clients, list):
        m.client_list = [c for c in (_text(x, 255) for x in clients[:MAX_LIST]) if c]
    return m


def members_of(topology: Topology, cell: Cell) -> list[Member]:
    return [Member(cell.name, s, topology.host(s.taddr)) for s in cell.servers]


def status(agents: Agents, topology: Topology, cells: Sequence[Cell], *,
           versions: bool = False) -> list[list[Member]]:
    """Every member of every cell at once (§6.3 `status css`), in registration order.
    `versions` (`--long`): each member's host is also asked its agent's version, in the same
    parallel round, and a version or build other than the admin's is noted in `agent`."""
    out = [members_of(topology, c) for c in cells]
    flat = [m for ms in out for m in ms]
    ask = [m for m in flat if m.host is not None]
    for m in flat:
        if m.host is None:
            m.reason = f"host {m.hostname} is not registered"
    calls = [(m.host, status_args(m.cell, m.no)) for m in ask]
    hosts = list({m.hostname: m.host for m in ask}.values()) if versions else []
    replies = agents.call_many([*calls, *((h, ["version"]) for h in hosts)])  # type: ignore[misc]
    for m, reply in zip(ask, replies[:len(ask)], strict=True):
        member_from(m, reply)
    differs = {h.hostname: agent_differs(r) for h, r in zip(hosts, replies[len(ask):],
                                                            strict=True)}
    for m in ask:
        m.agent = differs.get(m.hostname)
    for members in out:
        _fill_birth(members)
    return out


def agent_differs(reply: AgentReply) -> str | None:
    """`agent: "differs (0.1.0 0123456789ab)"` for an agent of another version or build than
    this admin's; None when it is the same or did not say (a failed call shows in `status`)."""
    from paxoslog.app.agentversion import agent_identity, agent_version_mismatch

    if agent_version_mismatch(reply) is None:
        return None
    version, build = agent_identity(reply)  # type: ignore[misc]
    return f"differs ({version}{' ' + build if build else ''})"


def _fill_birth(members: list[Member]) -> None:
    """`birth` when the daemons do not report `leader_since`: the leader's own start time,
    given to every running member that follows it, so all members agree (§4.5). An
    approximation (the leader may have been elected later) until paxos-css reports it."""
    masters = [m for m in members if m.status == "running" and m.master]
    if len(masters) != 1 or masters[0].birth is not None or masters[0].started is None:
        return
    lead = masters[0]
    for m in members:
        if m.status == "running" and m.birth is None and (m is lead or m.leader == lead.no):
            m.birth = lead.started


# ---------------------------------------------------------------- start


@dataclass
class Outcome:
    """What a start or stop did to one cell: `refused` (the whole cell, one line) or per-host
    `errors` (log lines, without their level), and whether anything failed."""

    refused: str | None = None
    errors: list[str] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.refused is not None or bool(self.errors)


def start_failure(m: Member, reply: AgentReply | None, args: Sequence[str]) -> str:
    """§6.3 step 4: the line for a server that could not be started (reply None: it was in
    `error` before anything was tried, so its status reply tells the cause)."""
    code = reply.code if reply is not None else m.code
    timed_out = reply.timed_out if reply is not None else m.timed_out
    reason = (reply.reason if reply is not None else m.reason) or "agent failed"
    if code == BAD_ETC or code == NOT_RUNNING:
        return f"configuration file to {m.hostname} has not been deployed ({reason})"
    if timed_out or code == TIMED_OUT:
        return f"timeout: {shlex.join(args)}"
    if code == LOCKED:
        return locked_line(m, "start")
    # anything else, a missing agent (127: "paxos-node not found on HOST") included
    return f"{m.hostname}: start operation to this host was not accepted ({reason})"


def locked_line(m: Member, what: str) -> str:
    """Exit 7: another agent (another admin's command) holds this member's lock right now."""
    return (f"{m.hostname}: {m.cell}#{m.no} is busy: another paxos-node command (another "
            f"admin?) holds its lock; {what} not done, try again when it is finished")


def _start_one(agents: Agents, m: Member, extra: Sequence[str], out: Outcome) -> bool:
    args = ["start", "css", m.cell, str(m.no), *extra]
    assert m.host is not None
    reply = agents.call_each(m.host, args, timeout=START_TIMEOUT)
    if reply.ok:
        out.started.append(m.no)
        return True
    out.errors.append(start_failure(m, reply, args))
    return False


def start_cell(agents: Agents, members: list[Member], initialize: bool,
               cell_id: str | None = None,
               join: Callable[[Member], str | None] | None = None) -> Outcome:
    """§6.3 `start css` for one cell whose long state is `members`. `join(m)` brings a member
    without data into a running cell (`joiner`): None, or its failure line."""
    out = Outcome()
    if initialize:
        if any(m.status == "running" for m in members):
            out.refused = "exist server running"
            return out
        return _initialize(agents, members, cell_id or new_cell_id(), out)
    if all(m.fresh for m in members):
        # A cell deployed but never started: nothing to wipe, every member starts empty
        # with one new cell id (the walk-through's first `start css`).
        return _initialize(agents, members, cell_id or new_cell_id(), out, wipe=False)
    for m in members:
        if m.status == "error":
            out.errors.append(start_failure(m, None, ["start", "css", m.cell, str(m.no)]))
    # §6.6: a member without data in a cell that has data (a cold replace's new member) is
    # not started like the others: it joins as a learner once they run, then is promoted
    empty = [m for m in members if m.fresh and m.host is not None]
    for m in start_order(members):
        if m not in empty:
            _start_one(agents, m, (), out)
    if empty:
        _join_empty(members, empty, join, out)
    return out


def _join_empty(members: list[Member], empty: list[Member],
                join: Callable[[Member], str | None] | None, out: Outcome) -> None:
    running = sum(m.status == "running" for m in members) + len(out.started)
    quorum = len(members) // 2 + 1
    for m in empty:
        if join is None or running < quorum:
            out.errors.append(f"{m.hostname}: {m.cell}#{m.no} has no data and cannot join: "
                              f"{running} of {len(members)} members run, {quorum} needed")
            continue
        failure = join(m)
        if failure is None:
            out.started.append(m.no)
            running += 1
        else:
            out.errors.append(failure)


def start_order(members: list[Member]) -> list[Member]:
    """§6.3 step 3: the stopped servers, most up to date first (`null` = -1, ties by number)."""
    return sorted((m for m in members if m.status == "stopped"),
                  key=lambda m: (-(m.next_sequence if m.next_sequence is not None else -1), m.no))


def new_cell_id() -> str:
    import secrets  # only a new cell needs it; `status css` stays light

    return secrets.token_hex(16)


def _initialize(agents: Agents, members: list[Member], cell_id: str, out: Outcome, *,
                wipe: bool = True) -> Outcome:
    usable = [m for m in members if m.host is not None]
    for m in members:
        if m.host is None:
            out.errors.append(start_failure(m, None, ["start", "css", m.cell, str(m.no)]))
    if wipe:
        # nodes.md §2.6: old data is moved aside (never deleted) before `--init`
        calls = [(m.host, ["wipe", "css", m.cell, str(m.no), "--yes"]) for m in usable]
        for m, reply in zip(usable, agents.call_many(calls), strict=True):  # type: ignore[arg-type]
            if not reply.ok:
                out.errors.append(start_failure(m, reply, calls[usable.index(m)][1]))
        if out.errors:
            return out
    for m in usable:
        _start_one(agents, m, ["--init", "--cell-id", cell_id], out)
    return out


# ---------------------------------------------------------------- stop


def stop_order(members: list[Member]) -> list[Member]:
    """§6.3 step 3: the non-masters in number order, then the master."""
    return sorted(members, key=lambda m: (m.master, m.no))


def stop_cell(agents: Agents, members: list[Member], force: bool) -> Outcome:
    """§6.3 `stop css` for one cell whose long state is `members`."""
    out = Outcome()
    if not force and any(m.status == "running" and m.client_list for m in members):
        out.refused = "this css is in use."
        return out
    for m in stop_order(members):
        if m.host is None:
            out.errors.append(f"{m.hostname}: stop operation to this host was not accepted. "
                              f"({m.reason})")
            continue
        args = ["stop", "css", m.cell, str(m.no), "--timeout", str(STOP_GRACE)]
        if force:
            args.append("--force")
        reply = agents.call_each(m.host, args, timeout=STOP_TIMEOUT)
        if reply.ok:
            out.stopped.append(m.no)
        elif reply.code == LOCKED:
            out.errors.append(locked_line(m, "stop"))
        else:
            out.errors.append(f"{m.hostname}: stop operation to this host was not accepted. "
                              f"({reply.reason})")
    return out


def select_cells(topology: Topology, name: str | None) -> list[Cell]:
    """`--name` or every cell in registration order; NotFound for an unknown name."""
    from paxoslog.errors import NotFound

    if name is None:
        return list(topology.cells)
    cell = topology.cell(name)
    if cell is None:
        raise NotFound(name)
    return [cell]
