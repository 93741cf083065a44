"""`paxos install [-g G] [host ...]`: the node programs of this version onto hosts (§6.2,
issue 9 item 4). Host selection is deploy's (§3.9)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from paxoslog.app.session import Session
from paxoslog.cli import reports
from paxoslog.cli.commands.remote import _ssh_session, _targets
from paxoslog.errors import RemoteError
from paxoslog.remote.locality import is_local
from paxoslog.yamlfmt import flat_doc


def wheel_cache(session: Session) -> Path:
    """Where the wheels of each build are kept: `$PAXOS_HOME/var/wheels/`."""
    return Path(os.path.join(session.home.root, "var", "wheels"))


def install(session: Session, ns: Any, message: str) -> int:
    from paxoslog.app import install as app

    targets = _targets(session, ns)
    if not targets:
        session.warn("no host matches")
        return 0
    from paxoslog.remote.hostreport import HostReporter

    # stdout is the report: per-host lines (and the bar) on a terminal's stderr only; Ctrl-C
    # says which hosts finished, as deploy does
    tty = _tty(session.err)
    reporter = HostReporter(session.err, session.err, lines=tty, progress=None if tty else False)
    reporter.start(sum(1 for h in targets if not is_local(h)))
    try:
        with _ssh_session(session) as ssh:
            docs = app.install(wheel_cache(session), targets, ssh, reporter=reporter)
    finally:
        reporter.close()
    session.write(reports.render_docs(docs, _yaml, session.as_json))
    errors = [f"{d['hostname']}: {d['reason']}" for d in docs if d["status"] == "error"]
    if errors:
        raise RemoteError(", ".join(errors))
    return 0


def _tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _yaml(doc: dict) -> str:
    return flat_doc(doc, quoted=frozenset({"hostname", "version", "build", "python", "reason"}))
