"""The memcache verbs of `paxos-node` (nodes.md §4, admin.md §6.4-§6.5): `start|stop|status
memcache <id>` and `apply pair <id>`.

A proxy is *running* when its pid file is locked and its control socket answers; processes are
never found by parsing `ps`. Options and pairs come from `~/etc/paxos_memcache.conf`; the proxy
is started without pairs and each pair is then added through the control socket, so a pair that
cannot bind costs that pair only and is reported, not the whole start."""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from typing import Any

from . import daemons, probe
from .css import Ctx, _reread_pid, _wait_exit
from .errors import BadEtc, Failed, NotRunning, TimedOut, Usage
from .etc import read_bounded
from .locks import PidFile, TargetLock
from .paths import seconds

MAX_CONF = 4 << 20  # the proxy's own --conf limit
READY_TIMEOUT = 10.0  # admin.md §6.2: start returns once the daemon serves, or fails after 10 s
CONTROL_TIMEOUT = 5.0
STOP_WAIT = 20.0  # admin.md §6.4
TERM_WAIT = 5.0
MAX_PAIRS = 1024
_ENDPOINT = re.compile(r"([A-Za-z0-9._:-]{1,253}):([0-9]{1,5})")


MAX_ID = (1 << 63) - 2  # the admin's range of memcache ids


def memcache_id(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", text) or int(text) > MAX_ID:
        raise Usage(f"bad memcache id {text[:80]!r}")
    return int(text)


def add_parsers(verbs: Any, objs_of: dict[str, Any], parser_class: type) -> None:
    """`memcache` under start/stop/status, and the `apply pair` verb."""
    sp = objs_of["start"].add_parser("memcache", add_help=False)
    sp.add_argument("id", type=memcache_id)
    sp = objs_of["stop"].add_parser("memcache", add_help=False)
    sp.add_argument("id", type=memcache_id)
    sp.add_argument("--force", action="store_true")
    sp.add_argument("--timeout", type=seconds, default=STOP_WAIT)
    sp = objs_of["status"].add_parser("memcache", add_help=False)
    # several ids: the admin asks about exactly the instances it selected, in one call
    sp.add_argument("id", type=memcache_id, nargs="*")
    sp.add_argument("--check", action="store_true")
    objs = verbs.add_parser("apply", add_help=False).add_subparsers(
        dest="object", required=True, parser_class=parser_class)
    objs.add_parser("pair", add_help=False).add_argument("id", type=memcache_id)


def run(a: argparse.Namespace, ctx: Ctx) -> dict:
    if a.verb == "start":
        return start(ctx, a.id)
    if a.verb == "stop":
        return stop(ctx, a.id, a.force, a.timeout)
    if a.verb == "status":
        return status(ctx, a.id, a.check)
    return apply_pairs(ctx, a.id)


# ------------------------------------------------------------------ paths and config


def _pid_file(ctx: Ctx, mid: int) -> str:
    return os.path.join(ctx.home.run, f"paxos-memcache-{mid}.pid")


def _sock(ctx: Ctx, mid: int) -> str:
    return os.path.join(ctx.home.run, f"paxos-memcache-{mid}.sock")


def _lock(ctx: Ctx, mid: int) -> TargetLock:
    ctx.home.ensure_run()
    return TargetLock(ctx.home.target_lock(f"memcache-{mid}"), f"memcache-{mid}")


def _conf_path(ctx: Ctx) -> str:
    return ctx.home.etc("paxos_memcache.conf")


def _topology(ctx: Ctx) -> Any:
    from paxoslog.core.render import parse_conf
    from paxoslog.errors import LogError

    path = _conf_path(ctx)
    try:
        raw = read_bounded(path, MAX_CONF, "configuration file")
    except FileNotFoundError:
        raise BadEtc(f"{path}: missing") from None
    except OSError as e:
        raise BadEtc(f"{path}: cannot read: {e.strerror}") from None
    try:
        return parse_conf(raw)
    except LogError as e:
        raise BadEtc(f"{path}: {e}") from None


def _registered(ctx: Ctx, mid: int) -> Any:
    m = _topology(ctx).memcache(mid)
    if m is None:
        raise BadEtc(f"{_conf_path(ctx)}: no memcache with id {mid}")
    return m


def resolve(host: str) -> str:
    """Rule (E) of admin.md §3.1: the IPv4 address of `host`, or the literal on failure."""
    try:
        return socket.gethostbyname(host)
    except (OSError, UnicodeError, ValueError):
        return host


def _endpoint(host: str, port: int) -> str:
    return f"{resolve(host)}:{port}"


def _normal(text: Any) -> str | None:
    """A proxy's `host:port` in resolved form; None if it is not one."""
    if not isinstance(text, str):
        return None
    m = _ENDPOINT.fullmatch(text)
    if m is None or not 1 <= int(m.group(2)) <= 65535:
        return None
    return _endpoint(m.group(1), int(m.group(2)))


def _proxy_args(m: Any) -> list[str]:
    args = []
    if m.max_cache_item is not None:
        args += ["--max-cache-item", str(m.max_cache_item)]
    if m.checksum is not None:
        args += ["--checksum", "on" if m.checksum else "off"]
    if m.checksum_interval is not None:
        args += ["--checksum-interval", str(m.checksum_interval)]
    if m.expire_interval is not None:
        args += ["--expire-interval", str(m.expire_interval)]
    if m.worker is not None:
        args += ["--workers", str(m.worker)]
    return args


# ------------------------------------------------------------------ start


def start(ctx: Ctx, mid: int) -> dict:
    from .etc import cell_members

    h = ctx.home
    m = _registered(ctx, mid)
    cell_conf = h.cell_conf(m.css)
    cell_members(cell_conf)  # a missing or bad cell file is exit 6 here, not a dead daemon
    h.ensure_log()
    with _lock(ctx, mid):
        pf = PidFile.probe(_pid_file(ctx, mid), remove_stale=True)
        if pf.pid is not None:
            pf.close()
            return {"changed": False, "pid": pf.pid, "added": [], "failed": [],
                    "message": f"paxos-memcache {mid} already running"}
        # positionals after `--`: a name space may begin with '-' (rule N allows it)
        argv = [sys.executable, "-m", "nodes.memcache.main", *_proxy_args(m), "--log", "file",
                *_extra_args_memcache(), "--", str(mid), m.css, m.name_space]
        env = {**os.environ, "HOME": h.root, "PAXOS_CELL_CONFIG": cell_conf}
        got = daemons.spawn(argv, env, os.path.join(h.log, f"paxos-memcache-{mid}.stderr"),
                            h.root, timeout=READY_TIMEOUT)
        if not got.ok:
            msg = f"paxos-memcache {mid} did not start: {got.message}"
            raise TimedOut(msg) if got.timed_out else Failed(msg)
        want = [(_endpoint(*p.client()), _endpoint(*p.server())) for p in m.pairs]
        added, failed = _run_ops(ctx, mid, [("add", c, s) for c, s in want])
        if failed:
            ctx.warnings.append(f"{len(failed)} pair(s) of memcache {mid} not added")
        return {"changed": True, "pid": got.pid, "added": added, "failed": failed,
                "css": _css_state(ctx, mid)}


def _css_state(ctx: Ctx, mid: int) -> str:
    """nodes.md §4.1: whether the proxy's CSS session is already open (`connected`) or still
    being opened in the background (`waiting`; requests get `SERVER_ERROR css unavailable`)."""
    try:
        st = probe.control(_sock(ctx, mid), {"t": "status"}, CONTROL_TIMEOUT)
    except (Failed, TimedOut):
        return "waiting"
    sess = st.get("session") if isinstance(st, dict) else None
    ok = isinstance(sess, dict) and sess.get("valid") is True and sess.get("sid") is not None
    return "connected" if ok else "waiting"


def _extra_args_memcache() -> list[str]:
    """Test timings for the proxy (`--session-timeout 3` ...), from PAXOS_NODE_MEMCACHE_ARGS
    (the service user's own environment): only `--name value` options of plain characters."""
    words = os.environ.get("PAXOS_NODE_MEMCACHE_ARGS", "").split()
    if len(words) > 32 or any(not re.fullmatch(r"--?[a-z-]{1,40}|[0-9.]{1,20}", w)
                              for w in words):
        raise Usage("PAXOS_NODE_MEMCACHE_ARGS holds something else than options and numbers")
    return words


def _run_ops(ctx: Ctx, mid: int, ops: list[tuple[str, str, str]]) -> tuple[list, list]:
    """add_pair / del_pair requests in order; (done, failed) with the reason of each failure."""
    done, failed = [], []
    for op, client, server in ops:
        item: dict[str, Any] = {"op": op, "client": client, "server": server}
        try:
            probe.control(_sock(ctx, mid), {"t": f"{op}_pair", "client": client,
                                            "server": server}, CONTROL_TIMEOUT)
        except TimedOut as e:
            failed.append({**item, "timeout": True, "error": str(e)})
            continue
        except Failed as e:
            failed.append({**item, "timeout": False, "error": str(e)})
            continue
        done.append(item)
    return done, failed


# ------------------------------------------------------------------ stop


def stop(ctx: Ctx, mid: int, force: bool, timeout: float = STOP_WAIT) -> dict:
    with _lock(ctx, mid):
        pf = PidFile.probe(_pid_file(ctx, mid), remove_stale=True)
        if pf.pid is None:
            return {"changed": False, "message": f"paxos-memcache {mid} is not running"}
        pid = pf.pid or _reread_pid(pf)
        sig = daemons.Signaller(pid) if pid else None
        try:
            return _stop_running(ctx, mid, pf, sig, pid, force, timeout)
        finally:
            pf.close()
            if sig is not None:
                sig.close()


def _stop_running(ctx: Ctx, mid: int, pf: PidFile, sig: daemons.Signaller | None,
                  pid: int | None, force: bool, timeout: float) -> dict:
    name = f"paxos-memcache {mid} (pid {pid})"
    accepted = True
    try:
        probe.control(_sock(ctx, mid), {"t": "stop"}, CONTROL_TIMEOUT)
    except TimedOut as e:
        if not force:
            raise TimedOut(f"stop request to {name}: {e}") from None
        accepted = False
    except Failed as e:
        if not force:
            raise Failed(f"{name} does not accept the stop: {e}; use --force") from None
        accepted = False
    # a proxy that took the request drains its connections and releases its delegations
    if accepted and _wait_exit(pf, timeout):
        return {"changed": True, "pid": pid, "forced": False, "killed": False}
    if not force:
        raise Failed(f"{name} still running after {timeout:g} s; use --force")
    if sig is None or not sig.send(15):
        if pf.alive():
            raise Failed(f"{name}: cannot signal it")
    if _wait_exit(pf, TERM_WAIT):
        return {"changed": True, "pid": pid, "forced": True, "killed": False}
    if sig is not None:
        sig.send(9)
    if not _wait_exit(pf, 10.0):
        raise TimedOut(f"{name} survived SIGKILL for 10 s")
    return {"changed": True, "pid": pid, "forced": True, "killed": True}


# ------------------------------------------------------------------ status


def _ids(ctx: Ctx) -> list[int]:
    """Every registered id, and every id with a pid file here (a proxy of an id since
    unregistered still runs until stopped)."""
    ids: set[int] = set()
    try:
        ids = {m.id for m in _topology(ctx).memcaches}
    except BadEtc as e:
        ctx.warnings.append(str(e))
    try:
        names = os.listdir(ctx.home.run)
    except OSError:
        names = []
    for n in names:
        m = re.fullmatch(r"paxos-memcache-([0-9]{1,19})\.pid", n)
        if m and int(m.group(1)) <= MAX_ID:
            ids.add(int(m.group(1)))
    return sorted(ids)


def status(ctx: Ctx, mids: list[int] | int | None, check: bool) -> dict:
    """The selected proxies (all of this host without ids); only those are queried."""
    if isinstance(mids, int):
        mids = [mids]
    ids = sorted(set(mids)) if mids else _ids(ctx)
    entries = [_entry(ctx, i) for i in ids[:MAX_PAIRS]]
    if check:
        if not entries:
            raise NotRunning("no memcache on this host")
        for e in entries:
            if e["status"] != "running":
                raise NotRunning(f"paxos-memcache {e['id']} is not running")
    return {"memcaches": entries}


def _entry(ctx: Ctx, mid: int) -> dict:
    entry: dict[str, Any] = {"id": mid, "status": "stopped", "pid": None}
    pf = PidFile.probe(_pid_file(ctx, mid), remove_stale=False)
    try:
        if pf.pid is None:
            return entry
        entry["pid"] = pf.pid or None
        try:
            st = probe.control(_sock(ctx, mid), {"t": "status"}, CONTROL_TIMEOUT)
        except (Failed, TimedOut) as e:
            entry["reason"] = str(e)  # alive but not answering: not running (§6.4)
            return entry
    finally:
        pf.close()
    if not isinstance(st, dict):
        entry["reason"] = "the proxy's status is not a map"
        return entry
    entry["status"] = "running"
    entry["css"] = _text(st.get("css"), 64)
    entry["name_space"] = _text(st.get("name_space"), 256)
    opts = st.get("options") if isinstance(st.get("options"), dict) else {}
    entry["options"] = {k: opts[k] for k in ("max_cache_item", "checksum_interval",
                                             "expire_interval", "worker")
                        if _int(opts.get(k)) is not None}
    if isinstance(opts.get("checksum"), bool):
        entry["options"]["checksum"] = opts["checksum"]
    entry["pairs"] = _pairs(st.get("pairs"))
    sess = st.get("session") if isinstance(st.get("session"), dict) else {}
    entry["session"] = {"sid": _text(sess.get("sid"), 64),
                        "valid": sess.get("valid") if isinstance(sess.get("valid"), bool)
                        else None}
    return entry


def _pairs(raw: Any) -> list[dict] | None:
    """The proxy's pairs, checked; None when they are not a list of valid pairs."""
    if not isinstance(raw, list) or len(raw) > MAX_PAIRS:
        return None
    out = []
    for p in raw:
        if not isinstance(p, dict):
            return None
        client, server = p.get("client"), p.get("server")
        if not (isinstance(client, str) and _ENDPOINT.fullmatch(client)
                and isinstance(server, str) and _ENDPOINT.fullmatch(server)):
            return None
        out.append({"client": client, "server": server,
                    "backend": "up" if p.get("backend") == "up" else "down",
                    "connections": _int(p.get("connections"))})
    return out


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _text(v: Any, limit: int) -> str | None:
    if not isinstance(v, str):
        return None
    return "".join(c if c.isprintable() else "?" for c in v[:limit])


# ------------------------------------------------------------------ apply pair


def apply_pairs(ctx: Ctx, mid: int) -> dict:
    m = _registered(ctx, mid)
    with _lock(ctx, mid):
        pf = PidFile.probe(_pid_file(ctx, mid), remove_stale=True)
        running = pf.pid is not None
        pf.close()
        if not running:
            return {"changed": False, "running": False, "added": [], "removed": [],
                    "failed": []}
        raw = probe.control(_sock(ctx, mid), {"t": "list_pairs"}, CONTROL_TIMEOUT)
        have_raw = _pairs(raw)
        if have_raw is None:
            raise Failed(f"paxos-memcache {mid}: list_pairs did not answer a list of pairs")
        want = [(_endpoint(*p.client()), _endpoint(*p.server())) for p in m.pairs]
        have = {}
        for p in have_raw:
            c, s = _normal(p["client"]), _normal(p["server"])
            have[c] = (p["client"], p["server"], s)
        ops = plan(want, have)
        done, failed = _run_ops(ctx, mid, ops)
        return {"changed": bool(done), "running": True,
                "added": [d for d in done if d["op"] == "add"],
                "removed": [d for d in done if d["op"] == "del"], "failed": failed}


def plan(want: list[tuple[str, str]], have: dict) -> list[tuple[str, str, str]]:
    """The control requests that make `have` (resolved client -> (client, server as the proxy
    shows them, resolved server)) equal `want`: adds on free listen addresses first, then the
    listeners whose backend changed (removed, then added back: one listen address holds one
    pair), then the removals, so an untouched pair is never closed."""
    adds, moves, dels = [], [], []
    wanted_clients = {c for c, _ in want}
    for c, s in want:
        cur = have.get(c)
        if cur is None:
            adds.append(("add", c, s))
        elif cur[2] != s:
            moves += [("del", cur[0], cur[1]), ("add", c, s)]
    for c, (client, server, _) in have.items():
        if c not in wanted_clients:
            dels.append(("del", client, server))
    return adds + moves + dels
