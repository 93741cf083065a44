"""`replace --name C --no N --address UDP:PORT TCP:PORT [--force]` (admin.md §3.8, §6.6)."""

from __future__ import annotations

from typing import Any

from paxoslog.app.session import Session
from paxoslog.errors import RemoteError


def replace(session: Session, ns: Any, message: str) -> int:
    from paxoslog.app.replace import Request, run
    from paxoslog.cli.commands.remote import _ssh_session

    req = Request(ns.name, ns.no, tuple(ns.address), bool(ns.force), message)

    def show(line: str) -> None:
        session.err.write(f"{line}\n")
        session.err.flush()

    with _ssh_session(session) as ssh:
        report = run(session, ssh, req, show=show)
    for line in report.warnings:
        session.warn(line)
    if report.message:  # before the point of no return: rolled back, one line
        raise RemoteError(report.message)
    for line in report.errors:  # after it: the event stands; what is left for the operator
        session.err.write(f"ERROR: {line}\n")
    session.err.flush()
    return report.exit_code
