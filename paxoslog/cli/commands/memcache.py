"""`start|stop|status memcache` and `apply pair` (admin.md §3.7, §4.6, §6.4, §6.5): proxies on
this host only, through the admin's own agent (`app.memcacherun`); never SSH."""

from __future__ import annotations

from typing import Any

from paxoslog.app import memcacherun
from paxoslog.app.session import Session


def start_memcache(session: Session, ns: Any, message: str) -> int:
    return memcacherun.start(session, ns.id)


def stop_memcache(session: Session, ns: Any, message: str) -> int:
    return memcacherun.stop(session, ns.id, ns.force)


def apply_pair(session: Session, ns: Any, message: str) -> int:
    return memcacherun.apply_pair(session, ns.id)


def status_memcache(session: Session, ns: Any, message: str) -> int:
    from paxoslog.cli import reports
    from paxoslog.yamlfmt import to_json

    docs, code = memcacherun.status(session, ns.id, ns.css, ns.name_space)
    if ns.quiet:
        return code
    if ns.short:
        if docs and session.as_json:
            session.write(to_json({str(d["id"]): d["status"] for d in docs}))
        else:  # `0: running`: the id is a YAML integer key, as in the original
            session.write("".join(f"{d['id']}: {d['status']}\n" for d in docs))
        return code
    if docs:
        session.write(reports.render_docs(docs, reports.memcache_yaml, session.as_json))
    return code
