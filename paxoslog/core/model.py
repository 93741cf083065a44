"""The topology: immutable values, so projections can share structure and be compared with ==."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_USER = "paxos"
DEFAULT_NAME_SPACE = "space0"
DEFAULT_CLIENT_HOST = "127.0.0.1"
DEFAULT_PORT = 11211
MEMCACHE_OPTIONS = ("max_cache_item", "checksum", "checksum_interval", "expire_interval", "worker")


@dataclass(frozen=True)
class Host:
    hostname: str
    user: str | None = DEFAULT_USER
    port: int | None = None
    groups: tuple[str, ...] = ()
    use_ssh_config: bool = False


@dataclass(frozen=True)
class Server:
    no: int
    uaddr: str
    uport: int
    taddr: str
    tport: int

    @property
    def udp(self) -> tuple[str, int]:
        return (self.uaddr, self.uport)

    @property
    def tcp(self) -> tuple[str, int]:
        return (self.taddr, self.tport)


@dataclass(frozen=True)
class Cell:
    name: str
    servers: tuple[Server, ...]


@dataclass(frozen=True)
class Pair:
    """A client endpoint (where the proxy listens) and a server endpoint (memcached), as typed."""

    shost: str
    sport: int | None = None
    chost: str | None = None
    cport: int | None = None

    def client(self) -> tuple[str, int]:
        return (self.chost or DEFAULT_CLIENT_HOST, DEFAULT_PORT if self.cport is None else self.cport)

    def server(self) -> tuple[str, int]:
        return (self.shost, DEFAULT_PORT if self.sport is None else self.sport)


@dataclass(frozen=True)
class Memcache:
    id: int
    css: str
    name_space: str = DEFAULT_NAME_SPACE
    max_cache_item: int | None = None
    checksum: bool | None = None
    checksum_interval: int | None = None
    expire_interval: int | None = None
    worker: int | None = None
    pairs: tuple[Pair, ...] = ()


@dataclass(frozen=True)
class Topology:
    hosts: tuple[Host, ...] = ()
    cells: tuple[Cell, ...] = ()
    memcaches: tuple[Memcache, ...] = ()
    next_memcache_id: int = 0
    _index: dict = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def host(self, hostname: str) -> Host | None:
        return self._lookup("h", self.hosts, "hostname").get(hostname)

    def cell(self, name: str) -> Cell | None:
        return self._lookup("c", self.cells, "name").get(name)

    def memcache(self, mid: int) -> Memcache | None:
        return self._lookup("m", self.memcaches, "id").get(mid)

    def _lookup(self, key: str, items: tuple, attr: str) -> dict:
        # Lookups by key are frequent (every decide), so build each index once per value.
        index = self._index
        if index is None:
            index = {}
            object.__setattr__(self, "_index", index)
        table = index.get(key)
        if table is None:
            table = index[key] = {getattr(item, attr): item for item in items}
        return table

    def with_(self, **changes: Any) -> Topology:
        # Filled through __dict__: a frozen dataclass's __init__ sets each field through
        # object.__setattr__, three times slower, and a replay makes one per event. Every
        # field is set here, as __init__ would (the index starts empty).
        new = object.__new__(Topology)
        new.__dict__.update(
            hosts=changes.get("hosts", self.hosts), cells=changes.get("cells", self.cells),
            memcaches=changes.get("memcaches", self.memcaches),
            next_memcache_id=changes.get("next_memcache_id", self.next_memcache_id),
            _index=None)
        return new


EMPTY = Topology()


def select_memcaches(t: Topology, mid: int | None = None, css: str | None = None,
                     name_space: str | None = None) -> list[Memcache]:
    """The instances matching every filter given (`show`/`status memcache`'s -i, -c, -N)."""
    return [
        m for m in t.memcaches
        if (mid is None or m.id == mid) and (css is None or m.css == css)
        and (name_space is None or m.name_space == name_space)
    ]


def to_plain(topology: Topology) -> dict[str, Any]:
    """A msgpack/JSON-ready dict; inverse of `schema.from_plain`."""
    return {
        "hosts": [_fields(h) for h in topology.hosts],
        "cells": [{"name": c.name, "servers": [_fields(s) for s in c.servers]} for c in topology.cells],
        "memcaches": [
            {**_fields(m, skip=("pairs",)), "pairs": [_fields(p) for p in m.pairs]}
            for m in topology.memcaches
        ],
        "next_memcache_id": topology.next_memcache_id,
    }


def host_from(data: dict[str, Any]) -> Host:
    return Host(
        hostname=data["hostname"],
        user=data.get("user"),
        port=data.get("port"),
        groups=tuple(data.get("groups") or ()),
        use_ssh_config=bool(data.get("use_ssh_config")),
    )


def _fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    # vars() rather than dataclasses.fields(): this runs for every host on every cache write.
    # Tuples stay tuples; msgpack and json write them as arrays.
    out = dict(vars(obj))
    for name in skip:
        del out[name]
    return out
