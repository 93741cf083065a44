"""Report documents of §4: one function builds the data (for JSON), one prints it as YAML."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from paxoslog.core.model import Cell, Host, Memcache, Topology
from paxoslog.yamlfmt import dq, flat_doc, flow, plain, scalar, to_json

MEMCACHE_KEYS = (
    ("max_cache_item", "max cache item"),
    ("checksum", "checksum"),
    ("checksum_interval", "checksum interval"),
    ("expire_interval", "expire interval"),
    ("worker", "worker"),
)


def render_docs(docs: list[dict], yaml_doc: Callable[[dict], str], as_json: bool) -> str:
    if as_json:
        return to_json(docs)
    return "".join(yaml_doc(d) for d in docs)


def render(session: Any, docs: list[dict], yaml_doc: Callable[[dict], str],
           rows: list[dict] | None = None, columns: Sequence[str] | None = None) -> str:
    """A report in the session's format: JSON and YAML from `docs`, `-o table` from `rows`
    (default: the docs themselves) with a `status` column coloured on a terminal."""
    if session.output == "table":
        from paxoslog.cli.table import render_table

        styles = None
        if table_colour(session):
            from paxoslog.cli import colour

            styles = {"status": colour.status}
        return render_table(docs if rows is None else rows, columns, styles)
    return render_docs(docs, yaml_doc, session.as_json)


def table_colour(session: Any) -> bool:
    from paxoslog.cli import colour

    return colour.enabled(session.out)


# hosts -------------------------------------------------------------------------------------

def host_doc(h: Host) -> dict[str, Any]:
    doc: dict[str, Any] = {"hostname": h.hostname}
    if h.user is not None:
        doc["user"] = h.user
    if h.port is not None:
        doc["port"] = h.port
    if h.groups:
        doc["group"] = list(h.groups)
    if h.use_ssh_config:
        doc["use_ssh_config"] = True
    return doc


def host_yaml(doc: dict) -> str:
    return flat_doc(doc, quoted=frozenset({"hostname", "user"}), yes=frozenset({"use_ssh_config"}))


def select_hosts(t: Topology, names: list[str] | None = None, user: str | None = None,
                 port: int | None = None, groups: Iterable[str] | None = None) -> list[Host]:
    wanted = set(groups or ())
    return [
        h for h in t.hosts
        if (not names or h.hostname in names)
        and (user is None or h.user == user)
        and (port is None or h.port == port)
        and (not wanted or wanted.intersection(h.groups))
    ]


# cells -------------------------------------------------------------------------------------

def css_doc(c: Cell) -> dict[str, Any]:
    return {"name": c.name, "server": [
        {"No.": s.no, "address_udp": s.uaddr, "port_udp": s.uport,
         "address_tcp": s.taddr, "port_tcp": s.tport} for s in c.servers
    ]}


def nested_yaml(doc: dict, list_key: str) -> str:
    """`name: x` then `server:` with `  -` items whose keys are indented 4 (§4.3, §4.5)."""
    lines = ["---"]
    for key, value in doc.items():
        if key != list_key:
            lines.append(f"{key}: {scalar(value)}")
            continue
        lines.append(f"{key}:")
        for item in value:
            lines.append("  -")
            for k, v in item.items():
                lines.append(f"    {k}: {_item_value(k, v)}")
    return "\n".join(lines) + "\n"


def _item_value(key: str, value: Any) -> str:
    if isinstance(value, list):
        return flow(value, quote="sq" if key == "client_list" else "")
    return scalar(value, quote=key == "reason")


def css_yaml(doc: dict) -> str:
    return nested_yaml(doc, "server")


# memcache ----------------------------------------------------------------------------------

def memcache_doc(m: Memcache) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": m.id, "css": m.css}
    for attr, key in MEMCACHE_KEYS:
        value = getattr(m, attr)
        if value is not None:
            doc[key] = value
    doc["name space"] = m.name_space
    doc["pair"] = [[*p.client(), *p.server()] for p in m.pairs] or None
    return doc


def memcache_yaml(doc: dict) -> str:
    lines = ["---"]
    for key, value in doc.items():
        if key == "pair":
            lines.append("pair:")
            for c_host, c_port, s_host, s_port in value or ():
                lines.append(f"    - [{dq(c_host)}, {c_port}, {dq(s_host)}, {s_port}]")
        else:
            lines.append(f"{key}: {scalar(value)}")
    return "\n".join(lines) + "\n"


# list --------------------------------------------------------------------------------------

def list_output(keys: list, as_json: bool) -> str:
    if as_json:
        return to_json(keys)
    return "".join(f"{k}\n" for k in keys)


# history -----------------------------------------------------------------------------------

LOG_QUOTED = frozenset({"commit", "time", "author", "command", "reason", "changes", "problems"})


def history_yaml(doc: dict) -> str:
    return flat_doc(doc, quoted=LOG_QUOTED,
                    block=frozenset({"changes", "problems", "rewritten", "warnings", "removed"}))


def short_yaml(mapping: dict) -> str:
    """`--short`: one mapping, no `---`; a list value prints in flow style."""
    out = []
    for key, value in mapping.items():
        v = flow(value) if isinstance(value, list) else scalar(value)
        out.append(f"{plain(str(key))}: {v}")
    return "".join(line + "\n" for line in out)


# `status deploy -o table`
STATUS_COLUMNS = ("hostname", "status", "rev", "behind", "commit", "author", "time", "stale",
                  "reason")
