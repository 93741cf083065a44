"""Gathering the runtime facts `decide` needs (§3.1), at the I/O edge.

Name resolution for rule (E), and running state from the daemons' pid files: a daemon holds an
flock on its pid file while it runs (nodes.md §4.1), so a lock we cannot take means "running".
"""

from __future__ import annotations

import fcntl
import os
import socket

from paxoslog.core.decide import Command, Facts
from paxoslog.core.model import Topology
from paxoslog.core.rules import check_new_host
from paxoslog.errors import Refused
from paxoslog.remote.locality import is_local
from paxoslog.store.home import Home


def pid_file_running(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _resolve(name: str) -> str:
    """Rule (E): the address of `name`, or the literal name when resolution fails. A name that
    rule (H) refuses is not looked up at all: `decide` refuses the command anyway, and the
    resolver raises on it (UnicodeError from IDNA on `a..b`, ValueError on a NUL) rather than
    failing like a lookup does."""
    try:
        check_new_host(name)
    except Refused:
        return name
    try:
        return socket.gethostbyname(name)
    except (OSError, UnicodeError, ValueError, TypeError):
        return name


def gather(home: Home, topology: Topology, command: Command) -> Facts:
    o = command.opts
    resolved: dict[str, str] = {}
    cell_status: dict[str, tuple[str, ...]] = {}
    running: set[int] = set()
    if command.name in ("register pair", "unregister pair"):
        mc = topology.memcache(o["id"])
        names = {o.get("server_address"), o.get("client_address"), "127.0.0.1"}
        for p in mc.pairs if mc else ():
            names |= {p.shost, p.chost}
        resolved = {n: _resolve(n) for n in names if n}
    if command.name in ("unregister css", "restore"):
        cells = topology.cells if command.name == "restore" else [topology.cell(o["name"])]
        cell_status = {c.name: local_cell_status(home, topology, c.name) for c in cells if c}
    if command.name in ("unregister memcache", "restore"):
        running = {m.id for m in topology.memcaches
                   if pid_file_running(home.path(f"run/paxos-memcache-{m.id}.pid"))}
    return Facts(cell_status=cell_status, local_memcache_running=frozenset(running),
                 resolved=resolved)


def local_cell_status(home: Home, topology: Topology, cell_name: str) -> tuple[str, ...]:
    """Status of the cell's members that run on this host (rule L); remote members are
    reported by the paxos-node agent over SSH, not from here."""
    cell = topology.cell(cell_name)
    out = []
    for server in cell.servers if cell else ():
        host = topology.host(server.taddr)
        if host is not None and is_local(host):
            pid = home.path(f"run/paxos-css-{cell_name}-{server.no}.pid")
            out.append("running" if pid_file_running(pid) else "stopped")
    return tuple(out)
