"""Handlers of the commands that reach other hosts over SSH: deploy, status deploy, fetch.

paramiko is imported only here, so registry commands never pay for it.
"""

from __future__ import annotations

from typing import Any

from paxoslog.app.session import Session
from paxoslog.cli import reports
from paxoslog.core.rules import parse_groups
from paxoslog.errors import RemoteError
from paxoslog.yamlfmt import flat_doc


def _ssh_session(session: Session):
    from paxoslog.remote.ssh import SSHOptions, tty_confirm
    from paxoslog.remote.sshpool import SSHSession

    options = SSHOptions(trust_new_hosts=session.trust_new_hosts,
                         confirm_new_host=tty_confirm if session.interactive else None)
    return SSHSession(options)


def _targets(session: Session, ns: Any) -> list:
    from paxoslog.app.deploy import select_targets

    topology = session.head()[2]
    return select_targets(topology, ns.hostname or (), parse_groups(ns.group))


def deploy(session: Session, ns: Any, message: str) -> int:
    from paxoslog.app import deploy as dep

    targets = _targets(session, ns)
    if not targets:
        session.warn("no host matches")
        return 0
    with _ssh_session(session) as ssh:
        if ns.dry_run:
            outcome = dep.dry_run(session.home, targets, ssh, clean=ns.clean)
            session.write(reports.render_docs(outcome.docs, _dry_run_yaml, session.as_json))
        else:
            outcome = dep.deploy(session.home, targets, ssh, clean=ns.clean,
                                 author=session.author)
    if outcome.errors:
        raise RemoteError(outcome.error_message())
    return 0


def _dry_run_yaml(doc: dict) -> str:
    return flat_doc(doc, quoted=frozenset({"hostname", "changes"}),
                    block=frozenset({"changes"}))


def status_deploy(session: Session, ns: Any, message: str) -> int:
    from paxoslog.app import deploy as dep

    targets = _targets(session, ns)
    with _ssh_session(session) as ssh:
        docs = dep.status(session.home, targets, ssh)
    if ns.short:
        short = {d["hostname"]: d["status"] for d in docs}
        session.write(reports.to_json(short) if session.as_json else reports.short_yaml(short))
    elif not ns.quiet:
        session.write(reports.render(session, docs, _status_yaml, columns=reports.STATUS_COLUMNS))
    return 0 if all(d["status"] == "current" for d in docs) else 1


def _status_yaml(doc: dict) -> str:
    return flat_doc(doc, quoted=frozenset({"hostname", "commit", "author", "time", "reason"}))


def fetch(session: Session, ns: Any, message: str) -> int:
    from paxoslog.app.fetch import fetch as run_fetch

    with _ssh_session(session) as ssh:
        result = run_fetch(session.home, ssh, ns.hostname, use_ssh_config=ns.use_ssh_config,
                           force=ns.force)
    session.local.forget()
    if result.warning:
        session.warn(result.warning)
    return 0
