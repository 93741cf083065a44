"""`decide(topology, command, facts) -> events`: every validation rule of admin.md §3, pure.

Facts are what only I/O can know (running state, name resolution); the caller gathers them
beforehand so this module never touches a socket, a file or a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paxoslog.core import rules
from paxoslog.core.events import Event, restored_event
from paxoslog.core.model import (
    DEFAULT_NAME_SPACE,
    DEFAULT_USER,
    MEMCACHE_OPTIONS,
    Pair,
    Topology,
)
from paxoslog.errors import NotFound, Refused

LONG_OPTION = {
    "max_cache_item": "--max-cache-item",
    "checksum_interval": "--checksum-interval",
    "expire_interval": "--expire-interval",
    "worker": "--worker",
}


@dataclass(frozen=True)
class Command:
    name: str  # "register host", "undo", ...
    opts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    cell_status: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    local_memcache_running: frozenset[int] = frozenset()
    resolved: Mapping[str, str] = field(default_factory=dict)

    def cell_running(self, cell: str) -> bool:
        return "running" in self.cell_status.get(cell, ())

    def endpoint(self, host: str, port: int) -> tuple[str, int]:
        return (self.resolved.get(host, host), port)


NO_FACTS = Facts()


def decide(topology: Topology, command: Command, facts: Facts = NO_FACTS) -> list[Event]:
    """The events `command` produces on `topology`; [] when it would change nothing.

    Raises `Refused` with the spec's message on the first failed check.
    """
    return _DECIDERS[command.name](topology, command.opts, facts)


# hosts ---------------------------------------------------------------------------------------

def _register_host(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    name = o["hostname"]
    if t.host(name) is not None:
        raise Refused("host already exists")
    rules.check_new_host(name)
    rules.check_port(o.get("port"))
    rules.check_user(o.get("user"))
    ssh_config = bool(o.get("use_ssh_config"))
    user = o.get("user")
    if user is None and not ssh_config:
        user = DEFAULT_USER
    return [Event("host_registered", {
        "hostname": name, "user": user, "port": o.get("port"),
        "groups": list(rules.parse_groups(o.get("group"))), "use_ssh_config": ssh_config,
    })]


def _unregister_host(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    name = o["hostname"]
    if t.host(name) is None:
        raise NotFound(name)
    if any(s.taddr == name for c in t.cells for s in c.servers):
        raise Refused("this host is in use.")
    return [Event("host_unregistered", {"hostname": name})]


def _modify_host(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    host = t.host(o["hostname"])
    if host is None:
        raise NotFound(o["hostname"])
    rules.check_port(o.get("port"))
    rules.check_user(o.get("user"))
    new: dict[str, Any] = {}
    if o.get("use_ssh_config"):
        new["use_ssh_config"] = True
    elif o.get("not_use_ssh_config"):
        new["use_ssh_config"] = False
        if host.user is None:
            new["user"] = DEFAULT_USER
    if o.get("user") is not None:
        new["user"] = o["user"]
    if o.get("port") is not None:
        new["port"] = o["port"]
    if o.get("group") is not None:
        new["groups"] = list(rules.parse_groups(o["group"]))
    changed = {k: v for k, v in new.items() if _as_tuple(getattr(host, k)) != _as_tuple(v)}
    return [Event("host_modified", {"hostname": host.hostname, **changed})] if changed else []


# cells ---------------------------------------------------------------------------------------

def _register_css(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    name = o["name"]
    if t.cell(name) is not None:
        raise Refused("css already exists")
    rules.check_cell_name(name)
    endpoints = [rules.parse_endpoint(e) for e in o["endpoints"]]
    udp, tcp = endpoints[0::2], endpoints[1::2]
    if len(set(udp)) < len(udp) or len(set(tcp)) < len(tcp):
        raise Refused("the same address has been specified more than once")
    for u, c in zip(udp, tcp, strict=True):
        _check_not_used(t, u, c, skip=None)
    servers = [
        {"no": no, "uaddr": u[0], "uport": u[1], "taddr": c[0], "tport": c[1]}
        for no, (u, c) in enumerate(zip(udp, tcp, strict=True))
    ]
    new_hosts: dict[str, dict] = {}
    grouped: list[str] = []
    for host, _port in tcp:
        known = t.host(host)
        if known is None and host not in new_hosts:
            new_hosts[host] = {"hostname": host, "user": DEFAULT_USER, "port": None,
                               "groups": [name], "use_ssh_config": False}
        elif known is not None and name not in known.groups and host not in grouped:
            # A member registered before the cell must still be selected by `-g <cell>`.
            grouped.append(host)
    data = {"name": name, "servers": servers, "hosts": list(new_hosts.values())}
    if grouped:  # absent otherwise: such events stay exactly what older versions wrote
        data["grouped"] = grouped
    return [Event("css_registered", data)]


def _check_not_used(t: Topology, udp: tuple, tcp: tuple, skip: str | None) -> None:
    for cell in t.cells:
        if cell.name == skip:
            continue
        if any(s.udp == udp or s.tcp == tcp for s in cell.servers):
            raise Refused(f"address is already used by css {cell.name}")


def _unregister_css(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    name = o["name"]
    if t.cell(name) is None:
        raise NotFound(name)
    if any(m.css == name for m in t.memcaches):
        raise Refused("this css is in use.")
    if f.cell_running(name):
        raise Refused("this css is running.")
    return [Event("css_unregistered", {"name": name})]


def _replace(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    """§3.8 checks 1-6 (the registry); 7-8 need the hosts and are the driver's. `mode` is the
    driver's outcome of check 7 (`core.replace.replace_mode`)."""
    name = o["name"]
    cell = t.cell(name)
    if cell is None:
        raise NotFound(name)
    udp_text, tcp_text = o["address"]
    udp, tcp = rules.parse_endpoint(udp_text), rules.parse_endpoint(tcp_text)
    no = o["no"]
    if all(s.no != no for s in cell.servers):
        raise NotFound(f"server {no} of {name}")
    if any(s.udp == udp or s.tcp == tcp for s in cell.servers):
        raise Refused("the same address has been specified more than once")
    _check_not_used(t, udp, tcp, skip=name)
    if t.host(tcp[0]) is None:
        raise NotFound(tcp[0])
    mode = o.get("mode") or "hot"
    data = {"name": name, "no": no, "uaddr": udp[0], "uport": udp[1], "taddr": tcp[0],
            "tport": tcp[1], "mode": mode}
    if name not in t.host(tcp[0]).groups:  # type: ignore[union-attr]
        # like `register css`: `-g <cell>` selects every member's host; absent otherwise, so
        # such events stay exactly what older versions wrote
        data["grouped"] = [tcp[0]]
    return [Event("css_member_replaced", data)]


# memcache ------------------------------------------------------------------------------------

def _check_memcache_options(o: Mapping) -> None:
    rules.check_name_space(o.get("name_space"))
    for key, option in LONG_OPTION.items():
        rules.check_positive(option, o.get(key))


def _register_memcache(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    if t.cell(o["css"]) is None:
        raise NotFound(o["css"])
    mid = o.get("id")
    if mid is not None:
        rules.check_id(mid)
        if t.memcache(mid) is not None:
            raise Refused("memcache id is duplicated")
    else:
        mid = t.next_memcache_id
        if mid > rules.MAX_ID:
            raise Refused(f"no memcache id left to allocate (the counter is past {rules.MAX_ID});"
                          " give a free id with --id")
    options = dict(o)
    if options.get("name_space") is None:
        options["name_space"] = DEFAULT_NAME_SPACE
    _check_memcache_options(options)
    data = {"id": mid, "css": o["css"], "name_space": options["name_space"]}
    data.update({k: o.get(k) for k in MEMCACHE_OPTIONS})
    return [Event("memcache_registered", data)]


def _unregister_memcache(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    mid = o["id"]
    if t.memcache(mid) is None:
        raise NotFound(mid)
    if mid in f.local_memcache_running:
        raise Refused("this memcache is running.")
    return [Event("memcache_unregistered", {"id": mid})]


def _modify_memcache(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    if o.get("css") is not None and t.cell(o["css"]) is None:
        raise NotFound(o["css"])
    mc = t.memcache(o["id"])
    if mc is None:
        raise NotFound(o["id"])
    _check_memcache_options(o)
    keys = ("css", "name_space") + MEMCACHE_OPTIONS
    changed = {k: o[k] for k in keys if o.get(k) is not None and getattr(mc, k) != o[k]}
    return [Event("memcache_modified", {"id": mc.id, **changed})] if changed else []


# pairs ---------------------------------------------------------------------------------------

def _pair_from(o: Mapping) -> Pair:
    return Pair(o["server_address"], o.get("server_port"), o.get("client_address"),
                o.get("client_port"))


def _pair_event(kind: str, mid: int, p: Pair) -> Event:
    return Event(kind, {"id": mid, "shost": p.shost, "sport": p.sport, "chost": p.chost,
                        "cport": p.cport})


def _register_pair(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    mc = t.memcache(o["id"])
    if mc is None:
        raise NotFound(o["id"])
    new = _pair_from(o)
    rules.check_new_host(new.shost)
    rules.check_new_host(new.chost)
    rules.check_port(new.sport)
    rules.check_port(new.cport)
    client, server = f.endpoint(*new.client()), f.endpoint(*new.server())
    for p in mc.pairs:
        if f.endpoint(*p.client()) == client or f.endpoint(*p.server()) == server:
            raise Refused("address is duplicated")
    return [_pair_event("pair_registered", mc.id, new)]


def _unregister_pair(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    mc = t.memcache(o["id"])
    if mc is None:
        raise NotFound(o["id"])
    want = _pair_from(o)
    client, server = f.endpoint(*want.client()), f.endpoint(*want.server())
    for p in mc.pairs:
        if f.endpoint(*p.client()) == client and f.endpoint(*p.server()) == server:
            return [_pair_event("pair_unregistered", mc.id, p)]
    raise Refused("not found pair")


# undo / revert -------------------------------------------------------------------------------

def _restore(t: Topology, o: Mapping, f: Facts) -> list[Event]:
    """Restore the topology `o["topology"]`; o also names the reason and target."""
    target: Topology = o["topology"]
    for cell in t.cells:
        after = target.cell(cell.name)
        if (after is None or after.servers != cell.servers) and f.cell_running(cell.name):
            raise Refused("this css is running.")
    for mc in t.memcaches:
        if target.memcache(mc.id) is None and mc.id in f.local_memcache_running:
            raise Refused("this memcache is running.")
    if _same(t, target) and not o.get("always"):
        return []
    return [restored_event(o["reason"], o["target_rev"], o["target_commit"], target)]


def _same(a: Topology, b: Topology) -> bool:
    # The id counter never decreases, so it is not part of what a restore can restore.
    return (a.hosts, a.cells, a.memcaches) == (b.hosts, b.cells, b.memcaches)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


_DECIDERS: dict[str, Callable[[Topology, Mapping, Facts], list[Event]]] = {
    "register host": _register_host,
    "unregister host": _unregister_host,
    "modify host": _modify_host,
    "register css": _register_css,
    "unregister css": _unregister_css,
    "replace": _replace,
    "register memcache": _register_memcache,
    "unregister memcache": _unregister_memcache,
    "modify memcache": _modify_memcache,
    "register pair": _register_pair,
    "unregister pair": _unregister_pair,
    "restore": _restore,
}
