"""The CSS verbs of `paxos-node` (spec nodes.md §4): start, stop, status and wipe of members.

Each function returns the command's `result` map or raises an AgentError (its exit code)."""

from __future__ import annotations

import datetime
import os
import re
import sys
import time
from typing import Any

from . import daemons, probe
from .errors import Failed, NotRunning, Refused, TimedOut, Usage
from .etc import cell_members, check_key, read_bounded
from .locks import PidFile, TargetLock
from .paths import Home

CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_MARKER = 4096


class Ctx:
    """One call's context. A plain class, not a dataclass: `dataclasses` costs every agent
    call start-up time."""

    def __init__(self, home: Home, warnings: list[str] | None = None) -> None:
        self.home = home
        self.warnings: list[str] = [] if warnings is None else warnings


def target(cell: str, no: int) -> str:
    return f"css-{cell}-{no}"


def lock(ctx: Ctx, cell: str, no: int) -> TargetLock:
    ctx.home.ensure_run()
    return TargetLock(ctx.home.target_lock(target(cell, no)), target(cell, no))


def members_of(ctx: Ctx, cell: str, no: int | None = None) -> dict[int, dict]:
    path = ctx.home.cell_conf(cell)
    members = cell_members(path)
    if no is not None and no not in members:
        raise Usage(f"member {no} is not in {path}")
    return members


def _dir_state(path: str) -> str:
    """'absent', 'empty' or 'full'; a symlink or a file there is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    if not os.path.isdir(path) or os.path.islink(path):
        raise Refused(f"{path} is not a directory")
    del st
    return "full" if os.listdir(path) else "empty"


def next_sequence(path: str) -> int | None:
    """A stopped member's next sequence (§4.1): 0 without data, None without a SHUTDOWN marker."""
    if _dir_state(path) != "full":
        return 0
    try:
        raw = read_bounded(os.path.join(path, "SHUTDOWN"), MAX_MARKER, "marker")
    except FileNotFoundError:
        return None
    except OSError:
        return None
    first = raw.split(maxsplit=1)[:1]
    if not first or not first[0].isdigit() or len(first[0]) > 19:
        return None
    return int(first[0])


# ------------------------------------------------------------------ start


def start(ctx: Ctx, cell: str, no: int, init: bool, cell_id: str | None) -> dict:
    if init != (cell_id is not None):
        raise Usage("--init and --cell-id go together")
    if cell_id is not None and not CELL_ID.fullmatch(cell_id):
        raise Usage(f"bad cell id {cell_id[:80]!r}")
    h = ctx.home
    members_of(ctx, cell, no)
    check_key(h.cell_key(cell))
    h.ensure_log()
    with lock(ctx, cell, no):
        pf = PidFile.probe(h.pid_file(cell, no), remove_stale=True)
        if pf.pid is not None:
            pf.close()
            return {"changed": False, "pid": pf.pid, "message": f"{cell}#{no} already running"}
        data = h.data(cell, no)
        state = _dir_state(data)
        if init and state == "full":
            raise Refused(f"{data}: data directory present; --init needs it absent or empty "
                          "(wipe it first)")
        if not init and state != "full":
            raise Refused(f"{data}: no data directory; start with --init (new cell) or "
                          "replace (new member)")
        argv = [sys.executable, "-m", "nodes.css.server", cell, str(no),
                "--config", h.cell_conf(cell), "--data", data, "--log", "file"]
        if init:
            argv += ["--init", "--cell-id", cell_id or ""]
        argv += _extra_args()
        env = {k: v for k, v in os.environ.items() if k != "PAXOS_CELL_CONFIG"}
        env["HOME"] = h.root
        got = daemons.spawn(argv, env, os.path.join(h.log, f"paxos-css-{cell}-{no}.stderr"),
                            h.root)
        if got.ok:
            return {"changed": True, "pid": got.pid, "mode": "init" if init else "restart"}
        moved = _undo_init(data) if init and state != "full" else None
        msg = f"paxos-css {cell}#{no} did not start: {got.message}"
        if moved:
            msg += f" (its new data directory was moved aside to {moved})"
        if got.timed_out:
            raise TimedOut(msg)
        if got.exit_code in (4, 10, 11):
            raise Refused(msg)
        raise Failed(msg)


def _extra_args() -> list[str]:
    """Test and benchmark timings for the daemon, from PAXOS_NODE_CSS_ARGS (the service
    user's own environment): only `--name value` options of plain characters pass."""
    raw = os.environ.get("PAXOS_NODE_CSS_ARGS", "")
    words = raw.split()
    if len(words) > 32 or any(not re.fullmatch(r"--?[a-z-]{1,40}|[0-9.]{1,20}", w)
                              for w in words):
        raise Usage("PAXOS_NODE_CSS_ARGS holds something else than options and numbers")
    return words


def _undo_init(data: str) -> str | None:
    """A failed --init leaves a data directory the daemon just made (MEMBER, nothing
    acknowledged). Move it aside, never delete, so a retry starts from where it was."""
    if _dir_state(data) != "full":
        return None
    return _move_aside(data, "failed-init")


def _move_aside(data: str, why: str) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    dest = f"{data}.{why}-{stamp}"
    os.rename(data, dest)
    return dest


# ------------------------------------------------------------------ stop


def stop(ctx: Ctx, cell: str, no: int, force: bool, timeout: float, comment: str) -> dict:
    h = ctx.home
    members_of(ctx, cell, no)
    with lock(ctx, cell, no):
        pf = PidFile.probe(h.pid_file(cell, no), remove_stale=True)
        if pf.pid is None:
            return {"changed": False, "next_sequence": next_sequence(h.data(cell, no)),
                    "message": f"{cell}#{no} is not running"}
        try:
            return _stop_running(ctx, cell, no, pf, force, timeout, comment)
        finally:
            pf.close()


def _stop_running(ctx: Ctx, cell: str, no: int, pf: PidFile, force: bool, timeout: float,
                  comment: str) -> dict:
    h = ctx.home
    sock = h.control_sock(cell, no)
    pid = pf.pid or _reread_pid(pf)
    sig = daemons.Signaller(pid) if pid else None
    try:
        try:
            st = probe.status(sock, timeout=max(1.0, min(5.0, timeout)))
        except (Failed, TimedOut) as e:
            if not force:
                raise type(e)(f"{cell}#{no} (pid {pid}) does not answer: {e}; use --force") \
                    from None
            st = None
        if st is not None and not force:
            _quorum_check(cell, no, _leader_view(st, members_of(ctx, cell)))
        forced = killed = False
        try:
            probe.control(sock, {"t": "shutdown", "comment": comment}, max(1.0, min(5.0, timeout)))
        except (Failed, TimedOut) as e:
            if not force:
                raise type(e)(f"{cell}#{no}: shutdown not accepted: {e}; use --force") from None
            forced = True
            if sig is not None:
                sig.send(15)
        if not _wait_exit(pf, timeout):
            if not force:
                raise TimedOut(f"{cell}#{no} (pid {pid}) still running after {timeout:g} s; "
                               "use --force")
            if not forced and sig is not None:
                forced = True
                sig.send(15)
                if _wait_exit(pf, timeout):
                    return _stopped(h, cell, no, pid, forced, killed)
            if sig is None or not sig.send(9):
                if pf.alive():
                    raise Failed(f"{cell}#{no}: cannot signal pid {pid}")
            killed = True
            if not _wait_exit(pf, 10.0):
                raise TimedOut(f"{cell}#{no} (pid {pid}) survived SIGKILL for 10 s")
        return _stopped(h, cell, no, pid, forced, killed)
    finally:
        if sig is not None:
            sig.close()


def _stopped(h: Home, cell: str, no: int, pid: int | None, forced: bool, killed: bool) -> dict:
    return {"changed": True, "pid": pid, "forced": forced, "killed": killed,
            "next_sequence": next_sequence(h.data(cell, no))}


def _reread_pid(pf: PidFile) -> int | None:
    """A daemon that has just taken its lock writes its pid next: give it a moment."""
    from .locks import _read_pid

    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and pf.fd is not None:
        pid = _read_pid(pf.fd, pf.path)
        if pid:
            return pid
        time.sleep(0.05)
    return None


def _wait_exit(pf: PidFile, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pf.alive():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(0.05, left))
    return True


def _leader_view(st: dict, members: dict[int, dict]) -> dict:
    """The leader's status: a follower only knows whom it hears, the leader knows who is
    connected to the cell. Falls back to the member's own view."""
    lead = _int(st.get("leader"))
    if st.get("role") == "leader" or lead is None or lead not in members:
        return st
    try:
        view = probe.tcp_status(tuple(members[lead]["tcp"]), timeout=2.0)
    except (Failed, TimedOut):
        return st
    return view if view.get("role") == "leader" else st


def _quorum_check(cell: str, no: int, st: dict) -> None:
    """§4.1: refuse to leave the cell below quorum while sessions are open."""
    peers = st.get("members")
    counts = st.get("counts")
    if not isinstance(peers, list) or not isinstance(counts, dict):
        return
    voters = [m for m in peers if isinstance(m, dict) and m.get("voter") is True]
    up = [m for m in voters if m.get("connected") is True and m.get("no") != no]
    sessions = counts.get("sessions")
    if voters and len(up) < len(voters) // 2 + 1 and isinstance(sessions, int) and sessions > 0:
        raise Refused(f"stopping {cell}#{no} would leave the cell below quorum while "
                      f"{sessions} session(s) are open; use --force")


# ------------------------------------------------------------------ status


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _text(v: Any, limit: int = 255) -> str | None:
    if not isinstance(v, str):
        return None
    return "".join(c if c.isprintable() else "?" for c in v[:limit])


def _member_entry(h: Home, cell: str, no: int, conf: dict, long: bool) -> dict:
    entry: dict[str, Any] = {
        "No.": no, "address": conf["tcp"][0], "port": conf["tcp"][1], "status": "stopped",
        "master": False, "birth": None, "next_sequence": None, "connected": [], "pid": None,
        "client_list": [], "role": None, "epoch": None, "commit": None, "lag": None,
        "member_id": None, "config_version": None, "config_drift": None}
    pf = PidFile.probe(h.pid_file(cell, no), remove_stale=False)
    try:
        if pf.pid is None:
            entry["next_sequence"] = next_sequence(h.data(cell, no))
            entry["member_id"] = _member_id(h.data(cell, no))
            return entry
        entry["pid"] = pf.pid or None
        try:
            st = probe.status(h.control_sock(cell, no))
        except (Failed, TimedOut) as e:
            entry["status"] = "error"
            entry["error"] = str(e)
            return entry
    finally:
        pf.close()
    entry["status"] = "running"
    role = _text(st.get("role"), 32)
    entry["role"] = role
    entry["master"] = role == "leader"
    entry["birth"] = _int(st.get("leader_since")) if "leader_since" in st else None
    nxt = _int(st.get("next_seq"))
    entry["next_sequence"] = nxt
    entry["epoch"] = _int(st.get("epoch"))
    commit = _int(st.get("commit"))
    entry["commit"] = commit
    entry["lag"] = max(0, commit - (nxt - 1)) if commit is not None and nxt is not None else None
    conn = st.get("connected")
    if isinstance(conn, list):
        entry["connected"] = sorted({n for n in conn if _int(n) is not None and n != no})[:64]
    entry["member_id"] = _text(st.get("member_id"), 64)
    cfg = st.get("config")
    entry["config_version"] = _int(cfg.get("version")) if isinstance(cfg, dict) else None
    drift = st.get("config_drift")
    entry["config_drift"] = drift if isinstance(drift, bool) else None
    entry["leader"] = _int(st.get("leader"))
    entry["client_list"] = _clients(st.get("clients"))
    voters = [m for m in st.get("members") or [] if isinstance(m, dict) and m.get("voter") is True]
    entry["quorum"] = bool(voters) and sum(m.get("connected") is True for m in voters) >= \
        len(voters) // 2 + 1
    if long:
        entry["detail"] = {k: st.get(k) for k in (
            "cell_id", "version", "protocol", "start_mode", "started", "ballot", "lease_ms",
            "last_slot", "snapshot_slot", "members", "config", "counts", "clients_total",
            "auth", "auth_failures", "disk_full", "waiting_for") if k in st}
    return entry


def _clients(clients: Any) -> list[str]:
    """One address per distinct (client host, client pid) of the open sessions (§2.10)."""
    if not isinstance(clients, list):
        return []
    seen: dict[tuple, str] = {}
    for c in clients[:1000]:
        if not isinstance(c, dict):
            continue
        key = (_text(c.get("host")), _int(c.get("pid")))
        addr = c.get("address")
        text = _text(addr[0], 64) if isinstance(addr, list) and addr else _text(c.get("host"))
        if text and key not in seen:
            seen[key] = text
    return list(seen.values())


def _member_id(data: str) -> str | None:
    """The member id from a stopped member's MEMBER file (bounded msgpack), if readable."""
    try:
        raw = read_bounded(os.path.join(data, "MEMBER"), 64 << 10, "MEMBER file")
    except (OSError, Failed, Refused):
        return None
    except Exception:
        return None
    try:
        import msgpack

        m = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:  # msgpack raises several unrelated types on garbage
        return None
    return _text(m.get("member_id"), 64) if isinstance(m, dict) else None


def status(ctx: Ctx, cell: str, no: int | None, long: bool, check: bool) -> dict:
    h = ctx.home
    members = members_of(ctx, cell, no)
    if no is not None:
        nos = [no]
    else:
        nos = [n for n in sorted(members) if os.path.lexists(h.data(cell, n))
               or os.path.lexists(h.pid_file(cell, n))]
    out = [_member_entry(h, cell, n, members[n], long) for n in nos]
    if check:
        if not out:
            raise NotRunning(f"no member of {cell} on this host")
        for e in out:
            if e["status"] != "running":
                raise NotRunning(f"{cell}#{e['No.']} is {e['status']}")
            if e.get("leader") is None or not e.get("quorum"):
                raise NotRunning(f"{cell}#{e['No.']} has no leader or no quorum")
    return {"cell": cell, "members": out}


# ------------------------------------------------------------------ wipe


def wipe(ctx: Ctx, cell: str, no: int, yes: bool) -> dict:
    if not yes:
        raise Usage("wipe moves the data directory aside: confirm with --yes")
    h = ctx.home
    with lock(ctx, cell, no):
        pf = PidFile.probe(h.pid_file(cell, no), remove_stale=True)
        if pf.pid is not None:
            pf.close()
            raise Refused(f"{cell}#{no} is running (pid {pf.pid}); stop it first")
        data = h.data(cell, no)
        if _dir_state(data) == "absent":
            return {"changed": False, "message": f"{data} does not exist"}
        return {"changed": True, "moved_to": _move_aside(data, "wiped")}
