"""`show` and `list` of hosts, cells and memcache instances (§3.2-§3.4, §4.2-§4.4)."""

from __future__ import annotations

from typing import Any

from paxoslog.app.session import Session
from paxoslog.cli import reports
from paxoslog.core.model import Topology, select_memcaches


def _topology(session: Session, ns: Any) -> Topology:
    at = getattr(ns, "at", None)
    if at is None:
        return session.head()[2]
    from paxoslog.store.history import topology_at
    from paxoslog.store.revisions import resolve

    return topology_at(session.log, resolve(session.log, at))


def _hosts(session: Session, ns: Any) -> list:
    from paxoslog.core.rules import parse_groups

    return reports.select_hosts(_topology(session, ns), getattr(ns, "hostname", None),
                                ns.user, ns.port, parse_groups(ns.group))


def _cells(session: Session, ns: Any) -> list:
    name = getattr(ns, "name", None)
    return [c for c in _topology(session, ns).cells if name is None or c.name == name]


def _memcaches(session: Session, ns: Any) -> list:
    return select_memcaches(_topology(session, ns), getattr(ns, "id", None),
                                    getattr(ns, "css", None), getattr(ns, "name_space", None))


# object -> (selection, key for `list`, document, YAML printer)
_REPORTS = {
    "host": (_hosts, lambda h: h.hostname, reports.host_doc, reports.host_yaml),
    "css": (_cells, lambda c: c.name, reports.css_doc, reports.css_yaml),
    "memcache": (_memcaches, lambda m: m.id, reports.memcache_doc, reports.memcache_yaml),
}


# `-o table`: the column of `list`, and the rows of `show` (one per cell member, pairs as text)
_LIST_COLUMN = {"host": "hostname", "css": "name", "memcache": "id"}
HOST_COLUMNS = ("hostname", "user", "port", "group", "use_ssh_config")


def _css_rows(docs: list[dict]) -> list[dict]:
    return [{"name": d["name"], "no": s["No."], "udp": f"{s['address_udp']}:{s['port_udp']}",
             "tcp": f"{s['address_tcp']}:{s['port_tcp']}"} for d in docs for s in d["server"]]


def _memcache_rows(docs: list[dict]) -> list[dict]:
    return [{**{k: v for k, v in d.items() if k != "pair"},
             "pair": [f"{c}:{cp}>{s}:{sp}" for c, cp, s, sp in d["pair"] or ()]} for d in docs]


def show(session: Session, ns: Any, message: str) -> int:
    verb, obj = ns.command.split()
    select, key, doc, yaml_doc = _REPORTS[obj]
    items = select(session, ns)
    if verb == "list":
        keys = [key(i) for i in items]
        if session.output == "table":
            from paxoslog.cli.table import render_table

            column = _LIST_COLUMN[obj]
            session.write(render_table([{column: k} for k in keys], [column]))
        else:
            session.write(reports.list_output(keys, session.as_json))
        return 0
    docs = [doc(i) for i in items]
    if obj == "host":
        rows = [{**d, "use_ssh_config": d.get("use_ssh_config", False)} for d in docs]
        session.write(reports.render(session, docs, yaml_doc, rows, HOST_COLUMNS))
    else:
        rows = _css_rows(docs) if obj == "css" else _memcache_rows(docs)
        session.write(reports.render(session, docs, yaml_doc, rows))
    return 0


