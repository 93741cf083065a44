"""Rendering the topology into the files the nodes read (admin.md §5.3), and reading them back.

Rendering is deterministic (same topology, byte-identical files), so a git tree of rendered
files doubles as a snapshot of the topology: reading HEAD never needs a replay.
"""

from __future__ import annotations

from typing import Any

from .errors import LogError
from .model import Cell, Topology, from_plain
from .yamlfmt import dq

CONF_PATH = "etc/paxos_memcache.conf"
CELL_DIR = "etc/cell"
CONF_VERSION = 1


def cell_path(name: str) -> str:
    return f"{CELL_DIR}/{name}.conf"


def render(topology: Topology) -> dict[str, bytes]:
    """Every rendered file, keyed by path relative to $PAXOS_HOME, in diff order."""
    files = {CONF_PATH: render_conf(topology)}
    for cell in sorted(topology.cells, key=lambda c: c.name):
        files[cell_path(cell.name)] = render_cell(cell)
    return files


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
    out = [f"version: {CONF_VERSION}", "hosts:" + ("" if t.hosts else " []")]
    for h in t.hosts:
        out += [
            f"  - hostname: {_v(h.hostname)}",
            f"    user: {_v(h.user)}",
            f"    port: {_v(h.port)}",
            f"    groups: {_list(h.groups)}",
            f"    use_ssh_config: {_v(h.use_ssh_config)}",
        ]
    out.append("cells:" + ("" if t.cells else " []"))
    for c in t.cells:
        out += [f"  - name: {_v(c.name)}", "    servers:"]
        for s in c.servers:
            out += [
                f"      - number: {s.no}",
                f"        udp_address: {_v(s.uaddr)}",
                f"        udp_port: {s.uport}",
                f"        tcp_address: {_v(s.taddr)}",
                f"        tcp_port: {s.tport}",
            ]
    out.append("memcaches:" + ("" if t.memcaches else " []"))
    for m in t.memcaches:
        out += [
            f"  - id: {m.id}",
            f"    css: {_v(m.css)}",
            f"    name_space: {_v(m.name_space)}",
            f"    max_cache_item: {_v(m.max_cache_item)}",
            f"    checksum: {_v(m.checksum)}",
            f"    checksum_interval: {_v(m.checksum_interval)}",
            f"    expire_interval: {_v(m.expire_interval)}",
            f"    worker: {_v(m.worker)}",
            "    pairs:" + ("" if m.pairs else " []"),
        ]
        for p in m.pairs:
            out += [
                f"      - server_address: {_v(p.shost)}",
                f"        server_port: {_v(p.sport)}",
                f"        client_address: {_v(p.chost)}",
                f"        client_port: {_v(p.cport)}",
            ]
    out.append(f"next_memcache_id: {t.next_memcache_id}")
    return ("\n".join(out) + "\n").encode()


def parse_conf(text: bytes) -> Topology:
    """Inverse of `render_conf`; raises `LogError` on anything it did not write."""
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
    except (KeyError, TypeError) as exc:
        raise LogError(f"malformed {CONF_PATH} ({exc.__class__.__name__}: {exc})") from None
