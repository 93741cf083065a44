"""`paxos-css [options] <cell> <no>`: one member of a CSS cell.

Exit codes: 0 clean stop, 2 usage, 4 refused (cell already initialized, data dir present),
10 storage refused (no data, identity mismatch, corruption, locked), 11 removed, 13 fsync failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from typing import Any

from nodes.daemonlog import setup_logging
from nodes.pidfile import lock_pidfile, write_pid

from . import VERSION
from .config import config_path, data_dir, load_cell_config, member_id, run_dir
from .core.paxos import Recovered
from .core.replica import Replica
from .core.service import Service
from .core.types import Timing
from .errors import ConfigError, StorageError
from .shell.auth import Auth, key_path, load_key
from .shell.guard import Limits
from .shell.node import Node
from .shell.storage import Storage

log = logging.getLogger("css")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paxos-css", description="CSS cell member")
    p.add_argument("cell")
    p.add_argument("no", type=int)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--init", action="store_true", help="initialize a new cell")
    mode.add_argument("--join", action="store_true", help="join as a learner (replace)")
    p.add_argument("--cell-id")
    p.add_argument("--config")
    p.add_argument("--data")
    p.add_argument("--log", default="file", choices=["file", "syslog", "stderr"])
    p.add_argument("--foreground", action="store_true")
    p.add_argument("--test-hooks", action="store_true")
    p.add_argument("--unsafe-no-fsync", action="store_true")
    p.add_argument("--no-auth", action="store_true",
                   help="tests and benchmarks only: no cell secret, member messages unsigned")
    lim = Limits()
    p.add_argument("--max-conns", type=int, default=lim.max_conns)
    p.add_argument("--max-conns-per-addr", type=int, default=lim.max_conns_per_addr)
    p.add_argument("--frame-timeout", type=float, default=lim.frame_timeout,
                   help="seconds a started client frame may take to arrive")
    p.add_argument("--max-pending-bytes", type=int, default=lim.max_pending_bytes)
    d = Timing()
    for name in ("tick", "heartbeat", "lease", "election_min", "election_max", "rho",
                 "retransmit", "drain_timeout", "recall_repeat", "learner_timeout"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name),
                       help=f"seconds (default {getattr(d, name)})" if name != "rho" else None)
    for name in ("pipeline_window", "snapshot_every", "log_retain", "max_state_bytes"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    return p


def timing_from(a: argparse.Namespace) -> Timing:
    t = Timing(**{k: getattr(a, k) for k in (
        "tick", "heartbeat", "lease", "election_min", "election_max", "rho", "retransmit",
        "drain_timeout", "recall_repeat", "learner_timeout", "pipeline_window", "snapshot_every",
        "log_retain", "max_state_bytes")})
    t.check()
    return t


FAIL_LINE_MAX = 200  # the agent reads at most 256 bytes of readiness line (daemons.py)
_ready = False  # READY printed: the readiness pipe is done, later failures only log


def ready_line(pid: int) -> None:
    global _ready
    _ready = True
    print(f"READY {pid}", flush=True)


def fail_line(code: int, msg: str) -> None:
    """`FAIL <code> <message>` on the readiness pipe (spec 4.1), once, before READY only: the
    agent then reports the reason without scraping the stderr file. One printable line."""
    global _ready
    if _ready:
        return
    _ready = True
    text = "".join(c if c.isprintable() else "?" for c in msg)
    try:
        print(f"FAIL {code} {text}"[:FAIL_LINE_MAX], flush=True)
    except (OSError, ValueError):
        pass  # nobody reads the pipe (foreground under a supervisor that closed it)


def fail(code: int, msg: str) -> int:
    print(f"paxos-css: {msg}", file=sys.stderr)
    log.error("%s (exit %d)", msg, code)
    fail_line(code, msg)
    return code


def loop_factory() -> Any:
    """uvloop when installed (less CPU per message on a shared machine), unless
    PAXOS_CSS_LOOP=asyncio asks for the standard loop."""
    if os.environ.get("PAXOS_CSS_LOOP") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    try:
        a = build_parser().parse_args(argv)
    except SystemExit as e:
        if e.code:  # argparse printed the usage error on stderr
            fail_line(2, "usage error: see stderr")
        raise
    try:
        timing = timing_from(a)
        limits = Limits(a.max_conns, a.max_conns_per_addr, a.frame_timeout,
                        a.max_pending_bytes)
        limits.check()
        members = load_cell_config(a.cell, a.config)
    except (ValueError, ConfigError) as e:
        print(f"paxos-css: {e}", file=sys.stderr)
        fail_line(2, str(e))
        return 2
    a.limits = limits
    if a.no_auth:
        a.key = None
    else:
        try:
            a.key = load_key(key_path(a.config or config_path(a.cell), a.cell))
        except ConfigError as e:
            print(f"paxos-css: {e} (start with --no-auth only for tests)", file=sys.stderr)
            fail_line(10, str(e))
            return 10
    if a.no not in members:
        return fail(2, f"member {a.no} is not in the cell configuration")
    if (a.init or a.join) and not a.cell_id:
        return fail(2, "--init and --join need --cell-id")
    if a.unsafe_no_fsync and not a.test_hooks:
        return fail(2, "--unsafe-no-fsync is refused without --test-hooks")
    setup_logging(a.log, f"paxos-css-{a.cell}-{a.no}", f"paxos-css-{a.cell}#{a.no}")
    if a.key is None:
        log.warning("started with --no-auth: member messages are not authenticated")
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(run(a, members, timing))
    except StorageError as e:
        return fail(e.exit_code, str(e))
    except Exception as e:
        fail_line(1, f"internal error: {type(e).__name__}: {e}")
        raise


async def run(a: argparse.Namespace, members: dict[int, dict], timing: Timing) -> int:
    path = a.data or data_dir(a.cell, a.no)
    st = Storage(path, fsync=not a.unsafe_no_fsync)
    if a.init:
        if not st.is_empty():
            return fail(4, f"{path}: data directory present; --init needs it absent or empty")
        # the incarnation tells this data directory from an earlier one of the same identity
        st.create({"cell": a.cell, "cell_id": a.cell_id, "no": a.no,
                   "member_id": member_id(a.cell_id, a.no), "created": time.time(),
                   "incarnation": os.urandom(8).hex()})
        mode = "init"
    elif a.join:
        if not st.is_empty():
            return fail(4, f"{path}: data directory present; --join needs it absent or empty")
        st.create({"cell": a.cell, "cell_id": a.cell_id, "no": a.no, "joined": True,
                   "member_id": os.urandom(8).hex(), "created": time.time()})
        mode = "join"
    elif st.is_empty():
        return fail(10, f"{path}: no data directory; use --init or --join (never recreated "
                        "automatically)")
    else:
        mode = "restart"
    m = st.read_member()
    if m.get("cell") != a.cell or m.get("no") != a.no:
        return fail(10, f"{path}: MEMBER is {m.get('cell')}#{m.get('no')}, not {a.cell}#{a.no}")
    if a.cell_id and m.get("cell_id") != a.cell_id:
        return fail(10, f"{path}: MEMBER has cell id {m.get('cell_id')}, not {a.cell_id}")
    cell_id = m["cell_id"]
    for no, mem in members.items():
        mem["member_id"] = member_id(cell_id, no)
    if not m.get("joined") and m.get("member_id") != members[a.no]["member_id"]:
        return fail(10, f"{path}: member id {m.get('member_id')} does not match the cell id")
    st.lock()
    marker = st.read_shutdown()
    snap_slot, blob, records = st.load()
    rec = Recovered()
    rec.snap_slot = snap_slot
    for r in records:
        rec.feed(r)
    svc, extra = Service.from_blob(blob) if blob is not None else (Service(), {})
    if mode == "restart":
        st.check_continuity(snap_slot)
    now = time.monotonic()
    me = members[a.no]
    join = {"cno": a.no, "member_id": m["member_id"], "udp": me["udp"],
            "tcp": me["tcp"]} if m.get("joined") else None
    replica = Replica(a.no, members, timing, int.from_bytes(os.urandom(4), "big"), now, rec, svc,
                      extra=extra, member_id=m["member_id"], join=join)
    if replica.removed:
        return fail(11, f"{path}: member {m['member_id']} was replaced and retired")
    if mode == "restart":
        if marker is not None:
            if marker[0] != replica.px.delivered + 1:
                return fail(10, f"SHUTDOWN marker says next_seq {marker[0]} but the log "
                                f"recovers to {replica.px.delivered + 1}: corruption")
            mode = "clean restart"
            st.remove_shutdown()
        else:
            mode = "crash restart"
            log.warning("crash recovery: next_seq=%d", replica.px.delivered + 1)
    st.resume()
    rd = run_dir()
    os.makedirs(rd, mode=0o700, exist_ok=True)
    info = {"member_id": m["member_id"], "start_mode": mode, "started": time.time(), "fsync": not a.unsafe_no_fsync,
            "test_hooks": a.test_hooks, "incarnation": m.get("incarnation"),
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "control": os.path.join(rd, f"paxos-css-{a.cell}-{a.no}.sock")}
    node = Node(a.cell, a.no, cell_id, members, replica, st, info, Auth(a.key), a.limits)
    node.hold = mode == "init"  # no election before every genesis member is seen (2.6)
    try:
        await node.start()
    except OSError as e:
        return fail(1, f"cannot bind: {e}")
    pidfile = os.path.join(rd, f"paxos-css-{a.cell}-{a.no}.pid")
    pid_fd = lock_pidfile(pidfile)
    if pid_fd is None:  # the data dir's LOCK makes this another member's leftover holder
        return fail(1, f"{pidfile} is locked by another process")
    write_pid(pid_fd)
    log.info("started %s#%d mode=%s next_seq=%d version=%s", a.cell, a.no, mode,
             replica.px.delivered + 1, VERSION)
    ready_line(os.getpid())
    if mode == "init":
        waiter = asyncio.get_running_loop().create_task(wait_genesis(node, members, cell_id))
        await asyncio.wait([waiter, asyncio.ensure_future(node.stopped.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        refusal = waiter.result() if waiter.done() else None
        waiter.cancel()
        if refusal:
            node.exit_code = 4
            fail(4, refusal)
            node.stopped.set()
    await node.stopped.wait()
    for path_ in (pidfile, info["control"]):
        try:
            os.unlink(path_)
        except OSError:
            pass
    return node.exit_code


async def wait_genesis(node: Node, members: dict[int, dict], cell_id: str) -> str | None:
    """--init (spec 2.6): hold elections until every genesis member answers a probe with this
    cell id and an empty state; None then, or the refusal when a peer already serves this cell
    with applied slots. A peer that is ahead only because it finished this same wait before us
    reports our incarnation among those it saw empty, and is accepted."""
    from .probe import status

    mine = node.info["incarnation"]
    waiting = sorted(n for n in members if n != node.no)
    node.init_wait = {"waiting_for": list(waiting), "seen": {}}
    logged = False
    while waiting:
        for n in list(waiting):
            try:
                st = await status(tuple(members[n]["tcp"]), timeout=0.5)
            except Exception:
                continue
            if st.get("cell_id") != cell_id:
                continue
            seen_me = (st.get("init_seen") or {}).get(str(node.no)) == mine
            if st.get("next_seq", 1) > 1 and not seen_me:
                return "cell already initialized; use replace"
            waiting.remove(n)
            node.init_wait["seen"][str(n)] = st.get("incarnation")
        node.init_wait["waiting_for"] = list(waiting)
        if waiting:
            if not logged:
                log.info("init: waiting for genesis members %s", waiting)
                logged = True
            await asyncio.sleep(0.2)
    log.info("init: every genesis member answered; joining elections")
    node.hold = False
    return None


if __name__ == "__main__":
    sys.exit(main())
