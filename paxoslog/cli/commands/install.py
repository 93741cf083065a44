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
    with _ssh_session(session) as ssh:
        docs = app.install(wheel_cache(session), targets, ssh)
    session.write(reports.render_docs(docs, _yaml, session.as_json))
    errors = [f"{d['hostname']}: {d['reason']}" for d in docs if d["status"] == "error"]
    if errors:
        raise RemoteError(", ".join(errors))
    return 0


def _yaml(doc: dict) -> str:
    return flat_doc(doc, quoted=frozenset({"hostname", "version", "build", "python", "reason"}))
