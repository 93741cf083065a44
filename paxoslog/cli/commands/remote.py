"""Handlers of the commands that reach other hosts over SSH: deploy, status deploy, fetch.

paramiko is imported only here, so registry commands never pay for it.
"""

from __future__ import annotations

from typing import Any

from paxoslog.app.session import Session
from paxoslog.cli import reports
from paxoslog.core.rules import parse_groups
from paxoslog.errors import RemoteError, UsageError
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
    """Per-host lines as hosts finish and a recap (JSON: every host's result); each failed host
    is also one `<host>: <reason>` line on stderr, exit 1."""
    from paxoslog.app import deploy as dep
    from paxoslog.remote.hostreport import HostReporter

    if getattr(ns, "diff", False) and not ns.dry_run:
        raise UsageError("argument --diff: only with --dry-run")
    ns.diff = getattr(ns, "diff", False)
    targets = _targets(session, ns)
    if not targets:
        session.warn("no host matches")
        return 0
    # a dry run's report is the documents: no per-host lines between them
    reporter = HostReporter(session.out, session.err,
                            lines=not (ns.dry_run or session.as_json))
    reporter.start(len(targets))
    try:
        with _ssh_session(session) as ssh:
            if ns.dry_run:
                outcome = dep.dry_run(session.home, targets, ssh, clean=ns.clean,
                                      reporter=reporter, diff=ns.diff)
            else:
                outcome = dep.deploy(session.home, targets, ssh, clean=ns.clean,
                                     author=session.author, reporter=reporter)
    finally:
        reporter.close()
    if ns.dry_run:
        by_host = {d["hostname"]: d for d in outcome.docs}
        docs = [by_host.get(r["hostname"], r) for r in outcome.results()]
        session.write(reports.render_docs(docs, _dry_run_yaml, session.as_json))
    elif session.as_json:
        session.write(reports.to_json(outcome.results()))
    else:
        reporter.recap()
    if outcome.errors:
        raise RemoteError(outcome.error_message())
    return 0


def _dry_run_yaml(doc: dict) -> str:
    text = flat_doc({k: v for k, v in doc.items() if k != "diff"},
                    quoted=frozenset({"hostname", "changes", "reason"}),
                    block=frozenset({"changes"}))
    if doc.get("diff"):
        # a literal block: the diff reads as a diff and the stream stays YAML (control
        # characters were escaped when the diff was made)
        text += "diff: |2\n" + "".join(f"  {line}\n" for line in doc["diff"].splitlines())
    elif "diff" in doc:
        text += 'diff: ""\n'
    return text


def status_deploy(session: Session, ns: Any, message: str) -> int:
    from paxoslog.app import deploy as dep
    from paxoslog.remote.hostreport import HostReporter

    targets = _targets(session, ns)
    # no per-host lines (the report is the documents): the bar on a terminal, and on Ctrl-C
    # which hosts had answered
    reporter = HostReporter(session.out, session.err, lines=False)
    try:
        with _ssh_session(session) as ssh:
            docs = dep.status(session.home, targets, ssh, reporter=reporter)
    finally:
        reporter.close()
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
