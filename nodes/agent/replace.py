"""`replace css <cell> <no> --step check|join|promote|retire|abort` (spec nodes.md §4.2).

Each step is one idempotent agent command the admin's replace drives host by host:
- check (any host of the cell): a leader exists, the survivors are running, connected and
  caught up, no configuration change is pending; reports the configuration version.
- join (the new host): starts `paxos-css --join` from `~/etc/cell/<cell>.join.conf` and waits
  until the leader sees the learner caught up; repeated while it runs it reports progress.
- promote (the new host): REPLACE (with `--expect-cfg`), waits for FINALIZE.
- retire (the old host): stops the old member if it runs and renames its data directory to
  `<no>.retired-<member_id>`; refused while the replicated configuration still has it voting.
- abort (the new host, before promote): `remove_learner` by the learner's member id, stops the
  local learner and moves its data directory aside like retire.
The cell is reached on every endpoint of the cell file and of the join file, because the
leader may be the member being replaced (its address is only in the cell file)."""

from __future__ import annotations

import os
import sys
import time

from nodes.css.errors import CssError, RequestError

from . import css, daemons, probe
from .errors import Failed, Refused, TimedOut, Usage
from .etc import cell_members, check_key
from .locks import PidFile

STEPS = ("check", "join", "promote", "retire", "abort")
PROMOTE_MAX_LAG = 16  # the leader refuses REPLACE above this (nodes/css/core/reconfig.py)
REFUSALS = ("ENOT_CAUGHT_UP", "EQUORUM_AT_RISK", "ECONFIG_CHANGED", "EBUSY", "ENOT_LEARNER")


def step(ctx: css.Ctx, cell: str, no: int, name: str, timeout: float,
         expect_cfg: int | None = None) -> dict:
    if name == "check":
        return check(ctx, cell, no)
    if name == "join":
        return join(ctx, cell, no, timeout)
    if name == "promote":
        return promote(ctx, cell, no, expect_cfg, timeout)
    if name == "retire":
        return retire(ctx, cell, no, timeout)
    if name == "abort":
        return abort(ctx, cell, no, timeout)
    raise Usage(f"unknown step {name}")


def _addrs(ctx: css.Ctx, cell: str) -> list[tuple[str, int]]:
    members = cell_members(ctx.home.cell_conf(cell))
    out = [tuple(m["tcp"]) for _, m in sorted(members.items())]
    if os.path.lexists(ctx.home.join_conf(cell)):
        for _, m in sorted(cell_members(ctx.home.join_conf(cell)).items()):
            if tuple(m["tcp"]) not in out:
                out.append(tuple(m["tcp"]))
    return out  # type: ignore[return-value]


def _peer_endpoints(st: dict) -> list[tuple[str, int]]:
    """The client endpoints a member's status lists for its peers, where well-formed."""
    out = []
    for m in st.get("members") or []:
        tcp = m.get("tcp") if isinstance(m, dict) else None
        if isinstance(tcp, (list, tuple)) and len(tcp) == 2 and isinstance(tcp[0], str) \
                and 0 < len(tcp[0]) <= 255 and css._int(tcp[1]) is not None \
                and 0 < tcp[1] < 65536:
            out.append((tcp[0], tcp[1]))
    return out


def _leader_status(addrs: list[tuple[str, int]]) -> dict:
    """The status of the member that leads, asked on every endpoint; Refused without one.
    The files on this host may predate the last replace (the old host before the final
    deploy), so the endpoints the members report for their peers are asked too, once."""
    seen = []
    todo, asked = list(addrs), set()
    while todo:
        a = todo.pop(0)
        if a in asked or len(asked) >= 8:
            continue
        asked.add(a)
        try:
            st = probe.tcp_status(a, timeout=2.0)
        except (Failed, TimedOut):
            continue
        seen.append(st)
        if st.get("role") == "leader" and css._int(st.get("lease_ms")):
            return st
        todo += [p for p in _peer_endpoints(st) if p not in asked]
    raise Refused(f"no leader among {len(asked)} endpoint(s) ({len(seen)} answered)")


def _await_leader(addrs: list[tuple[str, int]], timeout: float) -> dict:
    """`_leader_status`, polled up to `timeout`: right after a promote that replaced the
    leader, the cell has no leader until the old one's hand-over (LEAVE) is done."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _leader_status(addrs)
        except Refused:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.2)


def _voters(st: dict) -> list[dict]:
    return [m for m in st.get("members") or [] if isinstance(m, dict) and m.get("voter") is True]


def check(ctx: css.Ctx, cell: str, no: int) -> dict:
    css.members_of(ctx, cell, no)
    lead = _leader_status(_addrs(ctx, cell))
    cfg = lead.get("config") if isinstance(lead.get("config"), dict) else {}
    if cfg.get("learners") or cfg.get("joint"):
        raise Refused("a configuration change is pending (a learner or a joint phase)")
    survivors = [m for m in _voters(lead) if m.get("no") != no]
    for m in survivors:
        lag = css._int(m.get("lag"))
        if m.get("connected") is not True:
            raise Refused(f"survivor {m.get('no')} is not connected to the leader")
        if lag is None or lag > PROMOTE_MAX_LAG:
            raise Refused(f"survivor {m.get('no')} lags {lag} slots")
    if len(survivors) < 2:
        raise Refused(f"only {len(survivors)} survivor(s) besides member {no}")
    old = [m for m in _voters(lead) if m.get("no") == no]
    return {"changed": False, "leader": css._int(lead.get("no")),
            "config_version": css._int(cfg.get("version")),
            "cell_id": css._text(lead.get("cell_id"), 64),
            "survivors": sorted(css._int(m.get("no")) or 0 for m in survivors),
            "replaced_member_id": css._text(old[0].get("member_id"), 64) if old else None,
            "replaced_connected": bool(old and old[0].get("connected"))}


def _learner_lag(lead: dict, member_id: str | None) -> int | None:
    for m in lead.get("members") or []:
        if isinstance(m, dict) and member_id and m.get("member_id") == member_id:
            return css._int(m.get("lag"))
    return None


def join(ctx: css.Ctx, cell: str, no: int, timeout: float) -> dict:
    h = ctx.home
    conf = h.join_conf(cell)
    members = cell_members(conf)
    if no not in members:
        raise Usage(f"member {no} is not in {conf}")
    check_key(h.cell_key(cell))
    h.ensure_log()
    addrs = _addrs(ctx, cell)
    with css.lock(ctx, cell, no):
        pf = PidFile.probe(h.pid_file(cell, no), remove_stale=True)
        pf.close()
        changed = False
        if pf.pid is None:
            data = h.data(cell, no)
            if css._dir_state(data) != "absent":
                raise Refused(f"{data} exists; a joining member needs a fresh data directory")
            lead = _leader_status(addrs)
            cell_id = css._text(lead.get("cell_id"), 64)
            if not cell_id or not css.CELL_ID.fullmatch(cell_id):
                raise Failed("the leader reports no usable cell id")
            argv = [sys.executable, "-m", "nodes.css.server", cell, str(no), "--config", conf,
                    "--data", data, "--log", "file", "--join", "--cell-id", cell_id,
                    *css._extra_args()]
            env = {k: v for k, v in os.environ.items() if k != "PAXOS_CELL_CONFIG"}
            env["HOME"] = h.root
            got = daemons.spawn(argv, env, os.path.join(h.log, f"paxos-css-{cell}-{no}.stderr"),
                                h.root)
            if not got.ok:
                moved = css._move_aside(data, "failed-join") \
                    if css._dir_state(data) == "full" else None
                msg = f"learner {cell}#{no} did not start: {got.message}" + \
                    (f" (its data directory was moved aside to {moved})" if moved else "")
                raise (TimedOut if got.timed_out else Failed)(msg)
            changed = True
    member_id = css._member_id(h.data(cell, no))
    deadline = time.monotonic() + timeout
    lag = shown = None
    while True:
        try:
            lead = _leader_status(addrs)
            lag = _learner_lag(lead, member_id)
        except Refused:
            lead = None
        if lead is not None and lag is not None and lag <= PROMOTE_MAX_LAG:
            cfg = lead.get("config") if isinstance(lead.get("config"), dict) else {}
            # the admission (add_learner) moved the version on: promote expects this one
            return {"changed": changed, "member_id": member_id, "lag": lag, "caught_up": True,
                    "config_version": css._int(cfg.get("version"))}
        if lag != shown:  # progress for the admin's display: stderr, never the document
            print(f"paxos-node: learner {cell}#{no} lag {lag}", file=sys.stderr, flush=True)
            shown = lag
        if time.monotonic() >= deadline:
            raise TimedOut(f"learner {cell}#{no} ({member_id}) not caught up within "
                           f"{timeout:g} s (lag {lag})")
        time.sleep(0.2)


def _cell_call(coro: object, what: str, unknown_ok: bool = False) -> dict:
    import asyncio  # only the steps that talk to the cell need it: keep start-up light

    try:
        res = asyncio.run(coro)  # type: ignore[arg-type]
    except RequestError as e:
        if unknown_ok and e.code == "ENOT_LEARNER" and isinstance(e.info, dict) \
                and e.info.get("state") == "unknown":
            return {"removed": False}  # never admitted, or already gone: nothing to undo
        if e.code in REFUSALS:
            state = e.info.get("state") if isinstance(e.info, dict) else None
            raise Refused(f"{what} refused: {e.code}" + (f" ({state})" if state else "")) \
                from None
        raise Failed(f"{what} failed: {e.code}") from None
    except TimeoutError:
        raise TimedOut(f"{what}: no leader answered in time") from None
    except (OSError, ConnectionError, CssError) as e:
        raise Failed(f"{what}: {e.__class__.__name__}") from None
    if not isinstance(res, dict):
        raise Failed(f"{what}: the answer is not a map")
    return res


def promote(ctx: css.Ctx, cell: str, no: int, expect_cfg: int | None, timeout: float) -> dict:
    from nodes.css.probe import replace as css_replace

    h = ctx.home
    member_id = css._member_id(h.data(cell, no))
    if not member_id:
        raise Refused(f"no learner data for {cell}#{no} on this host (join first)")
    with css.lock(ctx, cell, no):
        res = _cell_call(css_replace(_addrs(ctx, cell), no, member_id, expect_cfg, timeout),
                         f"promote of {member_id} as {cell}#{no}")
    return {"changed": True, "member_id": member_id, "config_version": css._int(res.get("cfg"))}


def _stop_local(ctx: css.Ctx, cell: str, no: int, timeout: float) -> bool:
    """Stop a local daemon of this target if one runs (it may have exited by itself)."""
    h = ctx.home
    pf = PidFile.probe(h.pid_file(cell, no), remove_stale=True)
    if pf.pid is None:
        return False
    try:
        css._stop_running(ctx, cell, no, pf, True, timeout, "retired")
    finally:
        pf.close()
    return True


def _member_here(data: str, what: str) -> str | None:
    """The member id in `data`'s MEMBER file; None when there is no data dir at all (nothing to
    do); Refused when the dir is there but its identity cannot be read."""
    member_id = css._member_id(data)
    if member_id is None and css._dir_state(data) != "absent":
        raise Refused(f"{data}: no readable MEMBER file; not {what}")
    return member_id


def _set_aside(data: str, member_id: str) -> str:
    """§4.2 step 5: the data dir is renamed, never deleted, and never used again."""
    dest = f"{data}.retired-{member_id}"
    os.rename(data, dest)
    return dest


def retire(ctx: css.Ctx, cell: str, no: int, timeout: float) -> dict:
    h = ctx.home
    data = h.data(cell, no)
    with css.lock(ctx, cell, no):
        member_id = _member_here(data, "retired")
        if member_id is None:
            return {"changed": False, "message": f"{data} does not exist"}
        try:
            lead = _await_leader(_addrs(ctx, cell), timeout)
        except Refused as e:
            raise Refused(f"cannot confirm {member_id} was replaced: {e}") from None
        if any(m.get("member_id") == member_id for m in _voters(lead)):
            raise Refused(f"{cell}#{no} ({member_id}) is still a voter; promote first")
        stopped = _stop_local(ctx, cell, no, timeout)
        dest = _set_aside(data, member_id)
    return {"changed": True, "stopped": stopped, "member_id": member_id, "moved_to": dest}


def abort(ctx: css.Ctx, cell: str, no: int, timeout: float) -> dict:
    from nodes.css.probe import remove_learner

    h = ctx.home
    data = h.data(cell, no)
    with css.lock(ctx, cell, no):
        member_id = _member_here(data, "aborted")
        if member_id is None:
            return {"changed": False, "message": f"no learner of {cell}#{no} here"}
        res = _cell_call(remove_learner(_addrs(ctx, cell), member_id=member_id,
                                        timeout=min(timeout, 30.0)),
                         f"abort of the learner {member_id}", unknown_ok=True)
        stopped = _stop_local(ctx, cell, no, min(timeout, 30.0))
        dest = _set_aside(data, member_id)
    return {"changed": True, "removed": res.get("removed") is True, "stopped": stopped,
            "member_id": member_id, "moved_to": dest,
            "config_version": css._int(res.get("cfg"))}
