"""Memcache runtime on the admin's own host (admin.md §3.7, §6.4, §6.5): local only, never SSH.

Every operation goes through this admin's own `paxos-node` (rule L: `call_local`, same
`$PAXOS_HOME`), whose replies are validated like any host's. The functions here decide what to
call and what to report; they write warnings through the session and return the exit code, and
`status` returns the documents of §4.6 for the CLI to print.
"""

from __future__ import annotations

from typing import Any

from paxoslog.app.session import Session, log_event
from paxoslog.core.model import Memcache
from paxoslog.errors import NotFound
from paxoslog.remote.agentcall import AgentReply, call_local

START_ATTEMPTS = 3
START_TIMEOUT = 60.0  # readiness (10 s) plus one control call per pair
STOP_TIMEOUT = 60.0  # the stop request, 20 s to drain, SIGTERM and SIGKILL with --force
CALL_TIMEOUT = 30.0
TIMED_OUT = 5  # the agent's exit code for a timeout (nodes.md §4.1)
# the proxy's defaults (nodes.md §3.1): an option shows in `status` when it is registered or
# the running proxy uses another value
PROXY_DEFAULTS = {"max_cache_item": 2000, "checksum": True, "checksum_interval": 5000,
                  "expire_interval": 300, "worker": 5}
OPTION_KEYS = (("max_cache_item", "max cache item"), ("checksum", "checksum"),
               ("checksum_interval", "checksum interval"),
               ("expire_interval", "expire interval"), ("worker", "worker"))


def _agent(session: Session, args: list[str], timeout: float = CALL_TIMEOUT) -> AgentReply:
    reply = call_local(session.home.root, args, timeout=timeout)
    if not reply.ok:
        log_event("info", "paxos-node %s: %s", " ".join(args), reply.reason)
    return reply


def _error(session: Session, message: str) -> None:
    session.err.write(f"ERROR: {message}\n")
    session.err.flush()


def selected(session: Session, mid: int | None) -> list[Memcache]:
    """The registered instances of `--id` (NotFound if unknown), else all; ascending id."""
    topology = session.head()[2]
    if mid is not None:
        m = topology.memcache(mid)
        if m is None:
            raise NotFound(mid)
        return [m]
    return sorted(topology.memcaches, key=lambda m: m.id)


def _clean(text: str, limit: int = 300) -> str:
    """One printable line of bounded length: agent output is not trusted to be either."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _failed_ops(reply: AgentReply) -> list[dict]:
    failed = (reply.result or {}).get("failed")
    return [f for f in failed if isinstance(f, dict)] if isinstance(failed, list) else []


# start --------------------------------------------------------------------------------------

def start(session: Session, mid: int | None) -> int:
    code = 0
    for m in selected(session, mid):
        for _ in range(START_ATTEMPTS):
            reply = _agent(session, ["start", "memcache", str(m.id)], START_TIMEOUT)
            if reply.ok:
                break
            session.warn("failed to start PAXOS memcache")
        else:
            code = 1  # all attempts failed: no pair is added (the proxy never ran)
            continue
        for _ in _failed_ops(reply):
            session.warn(f"not be able to add a pair (id={m.id})")
            code = 1
    return code


# stop ---------------------------------------------------------------------------------------

def stop(session: Session, mid: int | None, force: bool) -> int:
    code = 0
    for m in selected(session, mid):
        args = ["stop", "memcache", str(m.id)] + (["--force"] if force else [])
        reply = _agent(session, args, STOP_TIMEOUT)
        if reply.ok:
            continue
        if reply.timed_out or reply.code == TIMED_OUT:
            what = _clean(reply.reason or " ".join(args))
            _error(session, what if what.startswith("timeout: ") else f"timeout: {what}")
        session.warn("failed to stop PAXOS memcache")
        code = 1
    return code


# apply pair ---------------------------------------------------------------------------------

def apply_pair(session: Session, mid: int | None) -> int:
    code = 0
    for m in selected(session, mid):
        reply = _agent(session, ["apply", "pair", str(m.id)])
        if not reply.ok:
            session.warn(f"not be able to apply pairs (id={m.id}): {reply.reason}")
            code = 1
            continue
        for f in _failed_ops(reply):
            if f.get("timeout") is True:
                what = _clean(f"{f.get('op')}_pair {f.get('client')} {f.get('server')}")
                _error(session, f"timeout: {what}")
            session.warn(f"not be able to {'add' if f.get('op') == 'add' else 'del'} a pair "
                         f"(id={m.id})")
            code = 1
    return code


# status -------------------------------------------------------------------------------------

def status(session: Session, mid: int | None, css: str | None,
           name_space: str | None) -> tuple[list[dict], int]:
    """The §4.6 documents of the selected instances (registered, matching every filter,
    ascending id) and the exit code: 0 when at least one is selected and all run."""
    from paxoslog.core.model import select_memcaches

    chosen = sorted(select_memcaches(session.head()[2], mid, css, name_space),
                    key=lambda m: m.id)
    if not chosen:
        return [], 1
    # one agent call, about the selected instances only (the original queried every proxy
    # of the host and crashed on one it could not parse)
    reply = _agent(session, ["status", "memcache", *(str(m.id) for m in chosen)])
    running: dict[int, dict] = {}
    if reply.ok:
        entries = reply.result.get("memcaches") if reply.result else None
        for e in entries if isinstance(entries, list) else ():
            if isinstance(e, dict) and isinstance(e.get("id"), int) \
                    and e.get("status") == "running":
                running[e["id"]] = e
    else:
        session.warn(f"state of memcache can not be obtained: {reply.reason}")
    docs = []
    for m in chosen:
        e = running.get(m.id)
        if e is None:
            docs.append({"status": "stopped", "id": m.id})
            continue
        pairs = _pair_rows(e.get("pairs"))
        if pairs is None:
            session.warn(f"state of 'pair' can not be obtained (id={m.id})")
            docs.append({"status": "running", "id": m.id})
            continue
        docs.append(_running_doc(m, e, pairs))
    code = 0 if all(d["status"] == "running" for d in docs) else 1
    return docs, code


def _running_doc(m: Memcache, e: dict, pairs: list[list]) -> dict[str, Any]:
    doc: dict[str, Any] = {"status": "running", "id": m.id,
                           "css": e.get("css") if isinstance(e.get("css"), str) else m.css}
    opts = e.get("options") if isinstance(e.get("options"), dict) else {}
    for attr, key in OPTION_KEYS:
        value = opts.get(attr)
        if not isinstance(value, int):  # bool is an int: checksum passes
            value = getattr(m, attr)
        if value is not None and (getattr(m, attr) is not None
                                  or value != PROXY_DEFAULTS[attr]):
            doc[key] = value
    ns = e.get("name_space")
    doc["name space"] = ns if isinstance(ns, str) else m.name_space
    doc["pair"] = pairs or None
    return doc


def _pair_rows(raw: Any) -> list[list] | None:
    """`[client host, client port, server host, server port]` rows from the proxy's pairs
    (addresses as the proxy reports them); None when they are unusable."""
    if not isinstance(raw, list):
        return None
    rows = []
    for p in raw:
        if not isinstance(p, dict):
            return None
        row: list = []
        for side in ("client", "server"):
            text = p.get(side)
            if not isinstance(text, str):
                return None
            host, sep, port = text.rpartition(":")
            if not sep or not host or not port.isdigit() or len(port) > 5:
                return None
            row += [host, int(port)]
        rows.append(row)
    return rows
