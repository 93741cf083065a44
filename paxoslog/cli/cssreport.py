"""The `status css` report (admin.md §4.5) in every mode, from `app.cssrun.Member`s."""

from __future__ import annotations

from typing import Any

from paxoslog.app.cssrun import Member
from paxoslog.cli.reports import css_yaml, render_docs, short_yaml
from paxoslog.yamlfmt import to_json


def server_doc(m: Member, long: bool) -> dict[str, Any]:
    # address/port: the registered UDP endpoint; the agent reports the endpoints of the
    # deployed cell file, which are the registered ones
    doc: dict[str, Any] = {"No.": m.no, "address": m.server.uaddr, "status": m.status,
                           "port": m.server.uport}
    if not long:
        return doc
    if m.status == "running":
        doc.update({"master": m.master, "birth": m.birth, "next_sequence": m.next_sequence,
                    "connected": m.connected, "pid": m.pid, "client_list": m.client_list})
    elif m.status == "stopped":
        doc["next_sequence"] = m.next_sequence
    else:
        doc["reason"] = m.reason or "unknown"
    if m.agent is not None:
        doc["agent"] = m.agent
    return doc


def cell_doc(members: list[Member], long: bool) -> dict[str, Any]:
    return {"name": members[0].cell, "server": [server_doc(m, long) for m in members]}


def short(cells: list[list[Member]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for members in cells:
        seen = list(dict.fromkeys(m.status for m in members))
        out[members[0].cell] = seen[0] if len(seen) == 1 else seen
    return out


def render(cells: list[list[Member]], mode: str, as_json: bool) -> str:
    """mode: normal | long | short | quiet."""
    cells = [ms for ms in cells if ms]
    if mode == "quiet":
        return ""
    if mode == "short":
        s = short(cells)
        return to_json(s) if as_json else short_yaml(s)
    docs = [cell_doc(ms, mode == "long") for ms in cells]
    return render_docs(docs, css_yaml, as_json)


def all_running(cells: list[list[Member]]) -> bool:
    return all(m.status == "running" for ms in cells for m in ms)
