"""Handlers of the history commands (§3.11); the logic lives in `history`."""

from __future__ import annotations

from typing import Any

from paxoslog.app.session import Session, append
from paxoslog.cli import reports
from paxoslog.cli.commands import loglist
from paxoslog.core.render import render
from paxoslog.errors import Refused
from paxoslog.store import history
from paxoslog.store.revisions import resolve


def _docs(session: Session, docs: list[dict]) -> None:
    session.write(reports.render_docs(docs, reports.history_yaml, session.as_json))


def log(session: Session, ns: Any, message: str) -> int:
    # The audit trail needs no topology: a commit whose snapshot is unreadable (a value out of
    # range, say) must still be listed, so the operator can see what happened.
    from paxoslog.store.home import read_head_ref

    head = read_head_ref(session.home)
    head_rev = session.log.rev(head) if head is not None else 0
    docs: list[dict] = []
    if head_rev and session.log.exists():
        if getattr(ns, "author", None) or getattr(ns, "since", None) is not None or getattr(
                ns, "patch", False):
            docs = loglist.entries(session.log, head_rev, ns)
        else:
            docs = history.log_docs(session.log, head_rev, ns.max_count, ns.reverse)
    elif not session.as_json:
        return 0
    _page(session, loglist.render(session, docs, getattr(ns, "oneline", False)))
    return 0


def diff(session: Session, ns: Any, message: str) -> int:
    log_ = session.log
    old = history.rendered_at(log_, resolve(log_, ns.rev1))
    new = history.rendered_at(log_, resolve(log_, ns.rev2))
    entries = history.diff_entries(old, new)
    if session.as_json:
        _docs(session, entries)
        return 0
    text = "".join(e["diff"] for e in entries)
    _page(session, loglist.coloured_diff(session, text))
    return 0


def _page(session: Session, text: str) -> None:
    from paxoslog.cli.pager import page

    if text:
        page(session.out, text)


def undo(session: Session, ns: Any, message: str) -> int:
    _, head_rev, _ = session.head()
    target = history.undo_target(session.log, head_rev) if head_rev else None
    if target is None:
        raise Refused("nothing to undo")
    rev, commit, command, parent = target
    restored = session.log.topology(parent)
    cmd = history.restore_command("undo", rev, commit, restored, always=True)
    result = append(session, cmd, message)
    if result is None:  # cannot happen with always=True; keeps the type checker honest
        raise Refused("nothing to undo")
    _docs(session, [{"rev": result[1], "undone": rev, "command": command}])
    return 0


def revert(session: Session, ns: Any, message: str) -> int:
    target = resolve(session.log, ns.rev)
    restored = history.topology_at(session.log, target)
    result = append(session, history.restore_command(
        "revert", target.number, target.commit, restored), message)
    if result is None:
        session.warn("nothing to revert")
        return 0
    _docs(session, [{"rev": result[1], "reverted_to": target.number}])
    return 0


def verify(session: Session, ns: Any, message: str) -> int:
    result = history.verify(session.log)
    if not result.problems:
        result.warnings = local_leftovers(session, result)
    for warning in result.warnings:
        session.warn(warning)
    _docs(session, [result.doc()])
    return 1 if result.problems else 0


def local_leftovers(session: Session, result: history.Verification) -> list[str]:
    """What a writer killed with -9 can leave behind: temp files, and etc/ behind HEAD."""
    from paxoslog.store.home import etc_differences, read_head_ref, stale_files

    out = []
    if session.log.exists():
        repo = "var/paxoslog.git/"
        out += [f"stale temporary file {repo}{p}"
                for p in session.log.stale_temp_objects(everywhere=True)]
    out += [f"stale temporary file {p}" for p in stale_files(session.home)]
    head = read_head_ref(session.home)
    if head is not None and head.decode() == result.commit:  # else appended meanwhile
        out += [f"etc/ differs from HEAD: {d}"
                for d in etc_differences(session.home, render(result.topology))]
    return out


def replay(session: Session, ns: Any, message: str) -> int:
    result = history.verify(session.log)
    doc = result.doc()
    if result.problems:
        _docs(session, [doc])
        return 1
    if session.log.exists():
        # A temp object is stale only when its writer's pid is dead; the lock keeps sweepers
        # and ref moves apart, as in `EventLog.move_branch`.
        with session.log.writer_lock():
            removed = session.log.sweep_temp_objects(everywhere=True)
        if removed:
            doc["removed"] = [f"var/paxoslog.git/{p}" for p in removed]
    commit = result.commit.encode() if result.commit else None
    known = (commit, result.head, result.topology, render(result.topology)) if commit else None
    doc["rewritten"] = session.local.publish(known)  # appended meanwhile: HEAD wins
    _docs(session, [doc])
    return 0

