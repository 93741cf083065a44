"""`show` and `list` of hosts, cells and memcache instances (§3.2-§3.4, §4.2-§4.4)."""

from __future__ import annotations

from typing import Any

from paxoslog.app.session import Session
from paxoslog.cli import reports
from paxoslog.core.model import Topology


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
    return reports.select_memcaches(_topology(session, ns), getattr(ns, "id", None),
                                    getattr(ns, "css", None), getattr(ns, "name_space", None))


# object -> (selection, key for `list`, document, YAML printer)
_REPORTS = {
    "host": (_hosts, lambda h: h.hostname, reports.host_doc, reports.host_yaml),
    "css": (_cells, lambda c: c.name, reports.css_doc, reports.css_yaml),
    "memcache": (_memcaches, lambda m: m.id, reports.memcache_doc, reports.memcache_yaml),
}


def show(session: Session, ns: Any, message: str) -> int:
    verb, obj = ns.command.split()
    select, key, doc, yaml_doc = _REPORTS[obj]
    items = select(session, ns)
    if verb == "list":
        session.write(reports.list_output([key(i) for i in items], session.as_json))
    else:
        session.write(reports.render_docs([doc(i) for i in items], yaml_doc, session.as_json))
    return 0


