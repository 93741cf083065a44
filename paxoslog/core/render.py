"""Rendering the topology into the files the nodes read (admin.md §5.3), and reading them back.

Rendering is deterministic (same topology, byte-identical files), so a git tree of rendered
files doubles as a snapshot of the topology: reading HEAD never needs a replay.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from paxoslog.core.model import Cell, Host, Memcache, Topology
from paxoslog.core.schema import from_plain
from paxoslog.errors import LogError
from paxoslog.yamlfmt import dq

CONF_PATH = "etc/paxos_memcache.conf"
CELL_DIR = "etc/cell"
CONF_VERSION = 1


def cell_path(name: str) -> str:
    return f"{CELL_DIR}/{name}.conf"


def render(topology: Topology) -> dict[str, bytes]:
    """Every rendered file, keyed by path relative to $PAXOS_HOME, in diff order."""
    return {CONF_PATH: render_conf(topology), **_CELL_FILES(topology.cells)}


def render_parts(topology: Topology) -> tuple[bytes, dict[str, bytes]]:
    """`render` as (the conf file, the cell files). The cell files are the very same dict
    while the cells do not change (do not modify it), so a caller can memoize on it."""
    return render_conf(topology), _CELL_FILES(topology.cells)


def _cell_files(cells: tuple[Cell, ...]) -> dict[str, bytes]:
    return {cell_path(c.name): render_cell(c) for c in sorted(cells, key=lambda c: c.name)}


@lru_cache(maxsize=1024)
def render_cell(cell: Cell) -> bytes:
    return "".join(
        f"{s.no} {s.uaddr} {s.uport} {s.taddr} {s.tport}\n" for s in cell.servers
    ).encode()


def _v(value: Any) -> str:
    # Strings are always double-quoted with JSON escaping, which YAML reads back unchanged.
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return dq(value)


def _list(values: tuple | list) -> str:
    return "[" + ", ".join(_v(v) for v in values) + "]"


def render_conf(t: Topology) -> bytes:
    # Blocks are memoized per (immutable) host, cell and memcache, and sections per tuple: a
    # replay renders every commit, an event changes one block of one section, and an event
    # that leaves a section alone leaves the very same tuple in it.
    return (
        f"version: {CONF_VERSION}\n" + _HOSTS(t.hosts) + _CELLS(t.cells)
        + _MEMCACHES(t.memcaches) + f"next_memcache_id: {t.next_memcache_id}\n"
    ).encode()


class _Memo:
    """fn(obj) memoized by the object's identity: hashing a dataclass walks all its fields,
    identity is free. The memo keeps every object it holds a text for alive, so no other
    object can take its id while the entry lives: a hit by id is that very object."""

    __slots__ = ("fn", "value", "alive")
    LIMIT = 20000

    def __init__(self, fn) -> None:
        self.fn = fn
        self.value: dict[int, Any] = {}
        self.alive: list[object] = []

    def __call__(self, obj: object) -> Any:
        value = self.value.get(id(obj))
        if value is None:
            if len(self.alive) >= self.LIMIT:
                self.value.clear()
                self.alive.clear()
            value = self.value[id(obj)] = self.fn(obj)
            self.alive.append(obj)
        return value

    def each(self, items: tuple) -> list:
        # The loop runs in C when every item is known, which is the rule in a replay.
        values = list(map(self.value.get, map(id, items)))
        if None in values:
            for i, value in enumerate(values):  # render only the new items
                if value is None:
                    values[i] = self(items[i])
        return values


class _Last:
    """fn(obj) for the object of the last call (held, so its id stays its own): a section
    that an event leaves alone is the very same tuple in the next topology, while a section
    it changes is new and never seen again, so a bigger memo would only cost its upkeep."""

    __slots__ = ("fn", "key", "value")

    def __init__(self, fn) -> None:
        self.fn, self.key, self.value = fn, None, None

    def __call__(self, obj: object) -> Any:
        if obj is not self.key or self.value is None:
            self.value, self.key = self.fn(obj), obj
        return self.value


def _section(key: str, block: _Memo) -> _Last:
    def render_section(items: tuple) -> str:
        return (f"{key}:\n" if items else f"{key}: []\n") + "".join(block.each(items))

    return _Last(render_section)


def _host_block(h: Host) -> str:
    return (
        f"  - hostname: {_v(h.hostname)}\n"
        f"    user: {_v(h.user)}\n"
        f"    port: {_v(h.port)}\n"
        f"    groups: {_list(h.groups)}\n"
        f"    use_ssh_config: {_v(h.use_ssh_config)}\n"
    )


def _cell_block(c: Cell) -> str:
    out = [f"  - name: {_v(c.name)}\n", "    servers:\n"]
    for s in c.servers:
        out.append(
            f"      - number: {s.no}\n"
            f"        udp_address: {_v(s.uaddr)}\n"
            f"        udp_port: {s.uport}\n"
            f"        tcp_address: {_v(s.taddr)}\n"
            f"        tcp_port: {s.tport}\n"
        )
    return "".join(out)


def _memcache_block(m: Memcache) -> str:
    out = [
        f"  - id: {m.id}\n"
        f"    css: {_v(m.css)}\n"
        f"    name_space: {_v(m.name_space)}\n"
        f"    max_cache_item: {_v(m.max_cache_item)}\n"
        f"    checksum: {_v(m.checksum)}\n"
        f"    checksum_interval: {_v(m.checksum_interval)}\n"
        f"    expire_interval: {_v(m.expire_interval)}\n"
        f"    worker: {_v(m.worker)}\n"
        f"    pairs:{'' if m.pairs else ' []'}\n"
    ]
    for p in m.pairs:
        out.append(
            f"      - server_address: {_v(p.shost)}\n"
            f"        server_port: {_v(p.sport)}\n"
            f"        client_address: {_v(p.chost)}\n"
            f"        client_port: {_v(p.cport)}\n"
        )
    return "".join(out)


_CELL_FILES = _Last(_cell_files)
_HOSTS = _section("hosts", _Memo(_host_block))
_CELLS = _section("cells", _Memo(_cell_block))
_MEMCACHES = _section("memcaches", _Memo(_memcache_block))


def parse_conf(text: bytes) -> Topology:
    """Inverse of `render_conf`; raises `LogError` on anything it did not write, including any
    field out of its type or range (`schema.from_plain` validates)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise LogError(f"unreadable {CONF_PATH}: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or doc.get("version") != CONF_VERSION:
        version = doc.get("version") if isinstance(doc, dict) else None
        raise LogError(f"unknown {CONF_PATH} version {version!r}")
    try:
        return from_plain({
            "hosts": doc["hosts"],
            "cells": [
                {"name": c["name"], "servers": [
                    {"no": s["number"], "uaddr": s["udp_address"], "uport": s["udp_port"],
                     "taddr": s["tcp_address"], "tport": s["tcp_port"]} for s in c["servers"]
                ]} for c in doc["cells"]
            ],
            "memcaches": [
                {**{k: v for k, v in m.items() if k != "pairs"}, "pairs": [
                    {"shost": p["server_address"], "sport": p["server_port"],
                     "chost": p["client_address"], "cport": p["client_port"]} for p in m["pairs"]
                ]} for m in doc["memcaches"]
            ],
            "next_memcache_id": doc["next_memcache_id"],
        })
    except LogError as exc:  # a field out of its type or range (schema)
        raise LogError(f"{CONF_PATH}: {exc.message}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise LogError(f"malformed {CONF_PATH} ({exc.__class__.__name__}: {exc})") from None
