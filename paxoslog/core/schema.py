"""Validation of everything read back from an event log or a snapshot (admin.md §3.1, §5.1).

A log may come from a host under someone else's control, or from an older build: it is hostile
until validated. A cell name becomes a file name (`etc/cell/<cell>.conf`), so a crafted event
naming `../../x` must be refused here, when the event is applied, not only when a command is
typed. Integers are range-checked so a value written by an older build (a 64-bit id, say) gives
one clear error instead of an OverflowError in every later command. Pure: no I/O.

Strings that never become paths or endpoints (user, groups) are only type-checked: older builds
accepted more there, and refusing them would brick a log for no safety gain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from paxoslog.core.model import Cell, Host, Memcache, Pair, Server, Topology
from paxoslog.errors import LogError

ID_MAX = 2**63 - 1  # ids, counters and revisions fit in 63 bits (signed 64-bit everywhere)
COUNTER_MAX = ID_MAX + 1  # the memcache id counter is one past the highest id ever registered
OPTION_KEYS = ("max_cache_item", "checksum_interval", "expire_interval", "worker")
SERVER_NUMBERS = (0, 1, 2)
_CELL = re.compile(r"[A-Za-z0-9_]+\Z", re.ASCII)  # rule (C): Unicode \w must not pass
_BAD_HOST = re.compile(r"[\s@:/]")  # rule (H)
_COMMIT = re.compile(r"[0-9A-Za-z]{1,64}\Z")  # informational only: an id (tests use short ones)


def _show(value: Any) -> str:
    # repr escapes newlines and control characters, so the message stays on one line.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# fields ----------------------------------------------------------------------------------------

def cell_name(value: Any, what: str = "css name") -> str:
    if type(value) is not str or not _CELL.match(value):
        raise LogError(f"illegal {what} {_show(value)}")
    return value


def hostname(value: Any, what: str = "host name") -> str:
    if type(value) is not str or not value or _BAD_HOST.search(value):
        raise LogError(f"illegal {what} {_show(value)}")
    return value


def opt_hostname(value: Any, what: str) -> str | None:
    return None if value is None else hostname(value, what)


def integer(value: Any, low: int, high: int, what: str) -> int:
    if type(value) is not int:  # bool is an int subclass, and not a number here
        raise LogError(f"{what} {_show(value)} is not an integer")
    if not low <= value <= high:
        raise LogError(f"{what} {value} out of range {low}..{high}")
    return value


def port(value: Any, what: str = "port") -> int:
    return integer(value, 1, 65535, what)


def opt_port(value: Any, what: str) -> int | None:
    return None if value is None else port(value, what)


def boolean(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise LogError(f"{what} {_show(value)} is not a boolean")
    return value


def name_space(value: Any) -> str:
    if type(value) is not str or not value or any(c.isspace() for c in value):
        raise LogError(f"illegal name space {_show(value)}")
    return value


def user(value: Any) -> str | None:
    if value is not None and type(value) is not str:
        raise LogError(f"illegal user name {_show(value)}")
    return value


def groups(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if type(value) not in (list, tuple):
        raise LogError(f"illegal groups {_show(value)}")
    for g in value:  # rule (G): what `-g a:b` can produce
        if type(g) is not str or not g or ":" in g:
            raise LogError(f"illegal group name {_show(g)}")
    return tuple(value)


def memcache_id(value: Any) -> int:
    return integer(value, 0, ID_MAX, "memcache id")


def _option(value: Any, key: str) -> int | None:
    return None if value is None else integer(value, 1, ID_MAX, key)


def _mapping(value: Any, what: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise LogError(f"{what} is not a mapping")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise LogError(f"{what} has an unexpected field {_show(unknown[0])}")
    return value


def _list(value: Any, what: str) -> list | tuple:
    if type(value) not in (list, tuple):
        raise LogError(f"{what} is not a list")
    return value


def _required(d: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return d[key]
    except KeyError:
        raise LogError(f"{what} has no {key}") from None


# objects ---------------------------------------------------------------------------------------

_HOST_KEYS = frozenset({"hostname", "user", "port", "groups", "use_ssh_config"})
_SERVER_KEYS = frozenset({"no", "uaddr", "uport", "taddr", "tport"})
_PAIR_KEYS = frozenset({"shost", "sport", "chost", "cport"})
_MEMCACHE_KEYS = frozenset({"id", "css", "name_space", "checksum", *OPTION_KEYS})


def host(value: Any) -> Host:
    d = _mapping(value, "host", _HOST_KEYS)
    return Host(hostname(_required(d, "hostname", "host")), user(d.get("user")),
                opt_port(d.get("port"), "ssh port"), groups(d.get("groups")),
                boolean(d.get("use_ssh_config", False), "use_ssh_config"))


def server(value: Any, expected_no: int | None = None) -> Server:
    d = _mapping(value, "server", _SERVER_KEYS)
    no = integer(_required(d, "no", "server"), 0, 2, "server number")
    if expected_no is not None and no != expected_no:
        raise LogError(f"server number {no} where {expected_no} was expected")
    return Server(no, hostname(_required(d, "uaddr", "server"), "udp address"),
                  port(_required(d, "uport", "server"), "udp port"),
                  hostname(_required(d, "taddr", "server"), "tcp address"),
                  port(_required(d, "tport", "server"), "tcp port"))


def cell(name: Any, servers: Any) -> Cell:
    servers = _list(servers, "servers")
    if len(servers) != len(SERVER_NUMBERS):
        raise LogError(f"css {_show(name)} has {len(servers)} servers, not 3")
    return Cell(cell_name(name), tuple(server(s, no) for no, s in zip(SERVER_NUMBERS, servers,
                                                                       strict=True)))


def pair(value: Any, allowed: frozenset[str] = _PAIR_KEYS) -> Pair:
    d = _mapping(value, "pair", allowed)
    return Pair(hostname(_required(d, "shost", "pair"), "server address"),
                opt_port(d.get("sport"), "server port"),
                opt_hostname(d.get("chost"), "client address"),
                opt_port(d.get("cport"), "client port"))


def memcache(value: Any, pairs: tuple[Pair, ...] = ()) -> Memcache:
    d = _mapping(value, "memcache", _MEMCACHE_KEYS)
    checksum = d.get("checksum")
    return Memcache(
        memcache_id(_required(d, "id", "memcache")),
        cell_name(_required(d, "css", "memcache"), "css name"),
        name_space(d.get("name_space", "space0")),
        _option(d.get("max_cache_item"), "max_cache_item"),
        None if checksum is None else boolean(checksum, "checksum"),
        _option(d.get("checksum_interval"), "checksum_interval"),
        _option(d.get("expire_interval"), "expire_interval"),
        _option(d.get("worker"), "worker"),
        pairs,
    )


_TOPOLOGY_KEYS = frozenset({"hosts", "cells", "memcaches", "next_memcache_id"})


def topology(value: Any) -> Topology:
    """A validated `Topology` from its plain form (`model.to_plain`): every field checked, and
    hostnames, cell names and memcache ids unique."""
    d = _mapping(value, "topology", _TOPOLOGY_KEYS)
    hosts = tuple(host(h) for h in _list(_required(d, "hosts", "topology"), "hosts"))
    cells = tuple(
        cell(_required(_mapping(c, "css", frozenset({"name", "servers"})), "name", "css"),
             _required(c, "servers", "css"))
        for c in _list(_required(d, "cells", "topology"), "cells")
    )
    memcaches = []
    for m in _list(_required(d, "memcaches", "topology"), "memcaches"):
        m = _mapping(m, "memcache", _MEMCACHE_KEYS | {"pairs"})
        pairs = tuple(pair(p) for p in _list(m.get("pairs", ()), "pairs"))
        memcaches.append(memcache({k: v for k, v in m.items() if k != "pairs"}, pairs))
    _unique((h.hostname for h in hosts), "host")
    _unique((c.name for c in cells), "css")
    _unique((m.id for m in memcaches), "memcache")
    counter = integer(_required(d, "next_memcache_id", "topology"), 0, COUNTER_MAX,
                      "next_memcache_id")
    return Topology(hosts, cells, tuple(memcaches), counter)


def _unique(keys, what: str) -> None:
    seen = set()
    for key in keys:
        if key in seen:
            raise LogError(f"{what} {_show(key)} appears twice")
        seen.add(key)


# events ----------------------------------------------------------------------------------------

def _check_host_registered(d: Mapping) -> None:
    host(d)


def _check_hostname_only(d: Mapping) -> None:
    hostname(_required(_mapping(d, "data", frozenset({"hostname"})), "hostname", "data"))


def _check_host_modified(d: Mapping) -> None:
    d = _mapping(d, "data", _HOST_KEYS)
    hostname(_required(d, "hostname", "data"))
    if "user" in d:
        user(d["user"])
    if "port" in d:
        port(d["port"], "ssh port")  # modify sets a port, never resets it to none
    if "groups" in d:
        groups(d["groups"])
    if "use_ssh_config" in d:
        boolean(d["use_ssh_config"], "use_ssh_config")


def _check_css_registered(d: Mapping) -> None:
    d = _mapping(d, "data", frozenset({"name", "servers", "hosts", "grouped"}))
    cell(_required(d, "name", "data"), _required(d, "servers", "data"))
    for h in _list(d.get("hosts", ()), "hosts"):
        host(h)
    # registered hosts that join the cell's group (optional: absent in older logs)
    for name in _list(d.get("grouped", ()), "grouped"):
        hostname(name)


def _check_css_unregistered(d: Mapping) -> None:
    cell_name(_required(_mapping(d, "data", frozenset({"name"})), "name", "data"))


def _check_css_member_replaced(d: Mapping) -> None:
    d = _mapping(d, "data", _SERVER_KEYS | {"name", "mode", "grouped"})
    cell_name(_required(d, "name", "data"))
    server({k: v for k, v in d.items() if k in _SERVER_KEYS})
    if _required(d, "mode", "data") not in ("hot", "cold"):
        raise LogError(f"illegal replace mode {_show(d['mode'])}")
    # the new member's host joins the cell's group (optional: absent in older logs)
    for name in _list(d.get("grouped", ()), "grouped"):
        hostname(name)


def _check_memcache_registered(d: Mapping) -> None:
    memcache(d)


def _check_memcache_unregistered(d: Mapping) -> None:
    memcache_id(_required(_mapping(d, "data", frozenset({"id"})), "id", "data"))


def _check_memcache_modified(d: Mapping) -> None:
    d = _mapping(d, "data", _MEMCACHE_KEYS)
    memcache_id(_required(d, "id", "data"))
    if "css" in d:
        cell_name(d["css"])
    if "name_space" in d:
        name_space(d["name_space"])
    if "checksum" in d:
        boolean(d["checksum"], "checksum")
    for key in OPTION_KEYS:
        if key in d:
            integer(d[key], 1, ID_MAX, key)  # modify never resets an option to none


def _check_pair(d: Mapping) -> None:
    d = _mapping(d, "data", _PAIR_KEYS | {"id"})
    memcache_id(_required(d, "id", "data"))
    pair({k: v for k, v in d.items() if k != "id"})


_RESTORED_KEYS = frozenset({"reason", "target_rev", "target_commit", "topology"})


def _check_topology_restored(d: Mapping) -> None:
    # The topology is built (and so checked) again by `apply`: restores are rare, and a
    # decoded event is then valid as a whole, whoever reads it.
    d = _mapping(d, "data", _RESTORED_KEYS)
    if _required(d, "reason", "data") not in ("undo", "revert"):
        raise LogError(f"illegal restore reason {_show(d['reason'])}")
    integer(_required(d, "target_rev", "data"), 0, ID_MAX, "target_rev")
    commit = d.get("target_commit")
    if commit is not None and (type(commit) is not str or not _COMMIT.match(commit)):
        raise LogError(f"illegal target_commit {_show(commit)}")
    topology(_required(d, "topology", "data"))


CHECKS: dict[str, Callable[[Mapping], None]] = {
    "host_registered": _check_host_registered,
    "host_unregistered": _check_hostname_only,
    "host_modified": _check_host_modified,
    "css_registered": _check_css_registered,
    "css_unregistered": _check_css_unregistered,
    "css_member_replaced": _check_css_member_replaced,
    "memcache_registered": _check_memcache_registered,
    "memcache_unregistered": _check_memcache_unregistered,
    "memcache_modified": _check_memcache_modified,
    "pair_registered": _check_pair,
    "pair_unregistered": _check_pair,
    "topology_restored": _check_topology_restored,
}


def check_event(kind: str, data: Any) -> None:
    """Raise `LogError` naming the event type and the bad field, unless `data` is what
    `decide` could have produced for an event of type `kind`."""
    check = CHECKS.get(kind)
    if check is None:
        raise LogError(f"unknown event type {_show(kind)}")
    if not isinstance(data, dict):
        raise LogError(f"{kind}: data is not a mapping")
    try:
        check(data)
    except LogError as exc:
        raise LogError(f"{kind}: {exc.message}") from None


def from_plain(data: Any) -> Topology:
    """Inverse of `model.to_plain`, validating every field: the plain form is read back from
    files (the snapshot in a commit, the cache), which are hostile until checked."""
    return topology(data)
