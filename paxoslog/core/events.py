"""Events: the versioned msgpack schema and the pure projection `apply(topology, event)`.

Replaying never re-runs `decide`'s rules and never resolves names. It does check every field's
type and range (`schema`): a log may come from a hostile host or an older build, and a name in
an event becomes a file name when rendered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from paxoslog.core import schema
from paxoslog.core.model import (
    EMPTY,
    Cell,
    Host,
    Memcache,
    Pair,
    Server,
    Topology,
    host_from,
    to_plain,
)
from paxoslog.errors import LogError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    # Set by `decode`, which validated `data`; events made by `decide` are checked by `apply`.
    checked: bool = field(default=False, compare=False, repr=False)


def encode(event: Event) -> bytes:
    return msgpack.packb({"v": SCHEMA_VERSION, "type": event.type, "data": event.data},
                         use_bin_type=True)


def decode(blob: bytes) -> Event:
    """Decode an event blob; raise `LogError` (never anything else) when it is not one."""
    try:
        raw = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise LogError(f"undecodable event ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict) or "v" not in raw:
        raise LogError("not an event")
    if raw["v"] != SCHEMA_VERSION:
        raise LogError(f"unknown event version {raw['v']!r}")
    kind = raw.get("type")
    if type(kind) is not str or kind not in _APPLY or not isinstance(raw.get("data"), dict):
        raise LogError(f"unknown event type {schema._show(kind)}")
    schema.check_event(kind, raw["data"])
    # Filled through __dict__, as `Topology.with_` does: a frozen dataclass's __init__ costs
    # a microsecond per event of a replay. Every field is set.
    event = object.__new__(Event)
    event.__dict__.update(type=kind, data=raw["data"], checked=True)
    return event


def apply(topology: Topology, event: Event) -> Topology:
    """The projection: the topology after `event`. Pure. Raises `LogError` naming the event
    type and the field when the event is not one `decide` could have made."""
    if not event.checked:
        schema.check_event(event.type, event.data)
    try:
        return _APPLY[event.type](topology, event.data)
    except LogError as exc:
        raise LogError(f"{event.type}: {exc.message}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise LogError(f"malformed {event.type} event ({exc.__class__.__name__}: {exc})") from None


def fold(events: Iterable[Event], start: Topology = EMPTY) -> Topology:
    topology = start
    for event in events:
        topology = apply(topology, event)
    return topology


def _new(t: Topology, hosts=(), cell: Cell | None = None, mc: Memcache | None = None) -> None:
    # A key registered twice would render two blocks for one name (and one file for two
    # cells): the projection keeps every key unique, whatever the log says.
    for h in hosts:
        if _has_host(t, h.hostname):
            raise LogError(f"host {schema._show(h.hostname)} is already registered")
    if len({h.hostname for h in hosts}) < len(hosts):
        raise LogError("a host is registered twice")
    if cell is not None and t.cell(cell.name) is not None:
        raise LogError(f"css {cell.name!r} is already registered")
    if mc is not None and t.memcache(mc.id) is not None:
        raise LogError(f"memcache {mc.id} is already registered")


def _has_host(t: Topology, name: str) -> bool:
    # A replay makes a new topology per event and asks once: a scan is cheaper than building
    # the index `Topology.host` keeps for the many lookups of `decide`.
    if t._index is not None and "h" in t._index:
        return t.host(name) is not None
    return any(h.hostname == name for h in t.hosts)


def _host_registered(t: Topology, d: dict) -> Topology:
    host = host_from(d)
    _new(t, (host,))
    return t.with_(hosts=t.hosts + (host,))


def _host_unregistered(t: Topology, d: dict) -> Topology:
    name, hosts = d["hostname"], t.hosts
    for i, h in enumerate(hosts):
        if h.hostname == name:  # hostnames are unique (`_new`): the first is the only one
            return t.with_(hosts=hosts[:i] + hosts[i + 1:])
    return t.with_()


def _host_modified(t: Topology, d: dict) -> Topology:
    changes = {k: v for k, v in d.items() if k != "hostname"}
    if "groups" in changes:
        changes["groups"] = schema.groups(changes["groups"])
    return t.with_(hosts=tuple(_replace(h, changes) if h.hostname == d["hostname"] else h
                               for h in t.hosts))


def _css_registered(t: Topology, d: dict) -> Topology:
    cell = Cell(d["name"], tuple(Server(**s) for s in d["servers"]))
    new_hosts = tuple(host_from(h) for h in d.get("hosts", ()))
    _new(t, new_hosts, cell=cell)
    hosts = t.hosts
    grouped = d.get("grouped", ())
    if grouped:
        missing = set(grouped) - {h.hostname for h in hosts}
        if missing:
            raise LogError(f"grouped host {schema._show(sorted(missing)[0])} is not registered")
        hosts = tuple(_replace(h, {"groups": h.groups + (cell.name,)})
                      if h.hostname in grouped and cell.name not in h.groups else h
                      for h in hosts)
    return t.with_(cells=t.cells + (cell,), hosts=hosts + new_hosts)


def _css_unregistered(t: Topology, d: dict) -> Topology:
    return t.with_(cells=tuple(c for c in t.cells if c.name != d["name"]))


def _css_member_replaced(t: Topology, d: dict) -> Topology:
    def swap(cell: Cell) -> Cell:
        if cell.name != d["name"]:
            return cell
        new = Server(d["no"], d["uaddr"], d["uport"], d["taddr"], d["tport"])
        return Cell(cell.name, tuple(new if s.no == d["no"] else s for s in cell.servers))

    return t.with_(cells=tuple(swap(c) for c in t.cells),
                   hosts=_into_group(t.hosts, d.get("grouped", ()), d["name"]))


def _into_group(hosts: tuple[Host, ...], grouped: Any, name: str) -> tuple[Host, ...]:
    """`grouped` hosts join the group `name`; each must be registered."""
    if not grouped:
        return hosts
    missing = set(grouped) - {h.hostname for h in hosts}
    if missing:
        raise LogError(f"grouped host {schema._show(sorted(missing)[0])} is not registered")
    return tuple(_replace(h, {"groups": h.groups + (name,)})
                 if h.hostname in grouped and name not in h.groups else h for h in hosts)


def _memcache_registered(t: Topology, d: dict) -> Topology:
    mc = Memcache(**{k: v for k, v in d.items() if k != "pairs"})
    _new(t, mc=mc)
    return t.with_(memcaches=t.memcaches + (mc,),
                   next_memcache_id=max(t.next_memcache_id, mc.id + 1))


def _memcache_unregistered(t: Topology, d: dict) -> Topology:
    return t.with_(memcaches=tuple(m for m in t.memcaches if m.id != d["id"]))


def _memcache_modified(t: Topology, d: dict) -> Topology:
    changes = {k: v for k, v in d.items() if k != "id"}
    return _map_memcache(t, d["id"], lambda m: _replace(m, changes))


def _pair_registered(t: Topology, d: dict) -> Topology:
    pair = _pair(d)
    return _map_memcache(t, d["id"], lambda m: _replace(m, {"pairs": m.pairs + (pair,)}))


def _pair_unregistered(t: Topology, d: dict) -> Topology:
    pair = _pair(d)
    return _map_memcache(
        t, d["id"], lambda m: _replace(m, {"pairs": tuple(p for p in m.pairs if p != pair)})
    )


def _topology_restored(t: Topology, d: dict) -> Topology:
    restored = schema.topology(d["topology"])
    # The id counter never goes back, so an id is never reused by a different instance.
    return restored.with_(next_memcache_id=max(t.next_memcache_id, restored.next_memcache_id))


def restored_event(reason: str, target_rev: int, target_commit: str, topology: Topology) -> Event:
    return Event("topology_restored", {
        "reason": reason, "target_rev": target_rev, "target_commit": target_commit,
        "topology": to_plain(topology),
    })


def _pair(d: dict) -> Pair:
    return Pair(d["shost"], d["sport"], d["chost"], d["cport"])


def _map_memcache(t: Topology, mid: int, fn) -> Topology:
    return t.with_(memcaches=tuple(fn(m) if m.id == mid else m for m in t.memcaches))


def _replace(obj: Host | Memcache, changes: dict) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)


_APPLY = {
    "host_registered": _host_registered,
    "host_unregistered": _host_unregistered,
    "host_modified": _host_modified,
    "css_registered": _css_registered,
    "css_unregistered": _css_unregistered,
    "css_member_replaced": _css_member_replaced,
    "memcache_registered": _memcache_registered,
    "memcache_unregistered": _memcache_unregistered,
    "memcache_modified": _memcache_modified,
    "pair_registered": _pair_registered,
    "pair_unregistered": _pair_unregistered,
    "topology_restored": _topology_restored,
}
