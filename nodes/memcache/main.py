"""`paxos-memcache [options] <id> <css-cell> <name-space>`: the PAXOS memcache proxy.

Exit codes: 0 clean stop, 1 cannot bind or already running, 2 usage or bad option, 6 bad cell
file. Prints `READY <pid>` on stdout once the control socket and every pair listener are bound;
the CSS session opens in the background (until then requests get `SERVER_ERROR css
unavailable`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from nodes.css.config import load_cell_config
from nodes.css.errors import ConfigError
from nodes.daemonlog import setup_logging
from nodes.pidfile import lock_pidfile, write_pid

from . import VERSION
from .config import Options, parse
from .errors import ProxyConfigError
from .shell.server import Proxy

log = logging.getLogger("memcache")


def run_dir() -> str:
    return os.path.join(os.path.expanduser("~"), "run")


def fail(code: int, msg: str) -> int:
    print(f"paxos-memcache: {msg}", file=sys.stderr)
    log.error("%s (exit %d)", msg, code)
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        opts = parse(argv)
    except ProxyConfigError as e:
        if str(e):
            print(f"paxos-memcache: {e}", file=sys.stderr)
        return 2
    try:
        cell = load_cell_config(opts.cell, opts.cell_config)
    except ConfigError as e:
        print(f"paxos-memcache: {e}", file=sys.stderr)
        return 6
    members = [tuple(m["tcp"]) for _, m in sorted(cell.items())]
    setup_logging(opts.log, f"paxos-memcache-{opts.id}", f"paxos-memcache#{opts.id}")
    try:
        return _event_loop_runner()(run(opts, members))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 0


def _event_loop_runner():  # type: ignore[no-untyped-def]
    """uvloop's runner when it is installed (the proxy's socket writes cost a third of its
    time on the default loop), else asyncio's; behaviour is the same either way."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


async def run(opts: Options, members: list[tuple[str, int]]) -> int:
    rd = run_dir()
    os.makedirs(rd, mode=0o700, exist_ok=True)
    pidfile = os.path.join(rd, f"paxos-memcache-{opts.id}.pid")
    sock = os.path.join(rd, f"paxos-memcache-{opts.id}.sock")
    fd = lock_pidfile(pidfile)
    if fd is None:
        return fail(1, f"proxy {opts.id} is already running ({pidfile} is locked)")
    proxy = Proxy(opts, members)
    try:
        await proxy.start_control(sock)
        for pair in opts.pairs:
            await proxy.add_pair(pair)
    except OSError as e:
        await proxy.stop()
        os.close(fd)
        return fail(1, f"cannot bind: {e.strerror or e}")
    write_pid(fd)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, proxy.stopped.set)
    proxy.coh.start()
    log.info("started id=%d cell=%s name_space=%s pairs=%d version=%s", opts.id, opts.cell,
             opts.name_space, len(opts.pairs), VERSION)
    print(f"READY {os.getpid()}", flush=True)
    await proxy.stopped.wait()
    log.info("stopping")
    await proxy.stop()
    for p in (pidfile, sock):
        try:
            os.unlink(p)
        except OSError:
            pass
    os.close(fd)
    log.info("stopped")
    return proxy.exit_code


if __name__ == "__main__":
    sys.exit(main())
