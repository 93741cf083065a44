"""Gathering the runtime facts `decide` needs (§3.1), at the I/O edge.

Name resolution for rule (E), and running state: from the daemons' pid files on this host (a
daemon holds an flock on its pid file while it runs, nodes.md §4.1, so a lock we cannot take
means "running"), and from the `paxos-node` agents for the members of a cell that may run.

A cell may run only if it has a secret: members refuse to start without `<cell>.key`, and the
admin creates it on the cell's first deploy (or `fetch` restores it from a member host). So the
agents are asked only about cells that have a local key and that the command would change; a
cell that was only ever registered (registry data, e.g. 192.168.x addresses) is never contacted.
A member whose state cannot be obtained is `error`, which does not block (§3.3), with a warning.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable

from paxoslog.app.cellkeys import has_key
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


def gather(home: Home, topology: Topology, command: Command,
           warn: Callable[[str], None] | None = None) -> Facts:
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
        cells = _changed_cells(topology, command)
        cell_status = {c: local_cell_status(home, topology, c) for c in cells}
        remote = [c for c in cells if has_key(home, c)]
        if remote:
            cell_status.update(remote_cell_status(home, topology, remote, warn))
    if command.name in ("unregister memcache", "restore"):
        running = {m.id for m in topology.memcaches
                   if pid_file_running(home.path(f"run/paxos-memcache-{m.id}.pid"))}
    return Facts(cell_status=cell_status, local_memcache_running=frozenset(running),
                 resolved=resolved)


def _changed_cells(topology: Topology, command: Command) -> list[str]:
    """The cells whose running state matters: the one unregistered, or those a restore would
    remove or change (decide refuses only for those)."""
    o = command.opts
    if command.name == "unregister css":
        return [o["name"]] if topology.cell(o["name"]) is not None else []
    target: Topology = o["topology"]
    return [c.name for c in topology.cells
            if target.cell(c.name) is None or target.cell(c.name).servers != c.servers]


def remote_cell_status(home: Home, topology: Topology, cells: list[str],
                       warn: Callable[[str], None] | None) -> dict[str, tuple[str, ...]]:
    """Every member's state through its agent (rule L or SSH, all at once)."""
    from paxoslog.app.cssrun import spec_of, status
    from paxoslog.remote.agentcall import Agents
    from paxoslog.remote.sshpool import SSHSession

    chosen = [c for c in (topology.cell(n) for n in cells) if c is not None]
    with SSHSession() as ssh:
        states = status(Agents(home.root, ssh, spec_of), topology, chosen)
    out = {}
    for cell, members in zip(chosen, states, strict=True):
        for m in members:
            if m.status == "error" and warn is not None:
                warn(f"{m.hostname}: state of {m.cell}#{m.no} unknown ({m.reason}); "
                     "counted as not running")
        out[cell.name] = tuple(m.status for m in members)
    return out


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
