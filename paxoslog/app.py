"""Executes parsed commands: the glue between the grammar, the pure core and the adapters."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from . import reports
from .errors import ConcurrencyError, PaxosError
from .home import Home, head_state, read_head_ref, write_cache, write_etc

if TYPE_CHECKING:  # the pure core is imported only by commands that change something
    from .decide import Command
    from .model import Topology

MAX_ATTEMPTS = 10
_INFRA_KEYS = {"verb", "object", "command", "output", "version", "verbose", "debug",
               "trust_new_hosts", "at"}


@dataclass
class Session:
    """One administrator's context: where state lives and where output goes."""

    home: Home
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    output: str = "yaml"
    _log: Any = None

    @property
    def log(self):
        if self._log is None:
            from .gitlog import EventLog

            self._log = EventLog(self.home.repo)
        return self._log

    @property
    def as_json(self) -> bool:
        return self.output == "json"

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()

    def warn(self, message: str) -> None:
        self.err.write(f"WARNING: {message}\n")
        self.err.flush()


def execute(session: Session, ns: Any, message: str) -> int:
    """Run one parsed command; raises PaxosError for refusals (exit 1)."""
    session.output = getattr(ns, "output", None) or "yaml"
    handler = _HANDLERS.get(ns.command)
    if handler is None:
        from .decide import Command

        return _change(session, Command(ns.command, _opts(ns)), message)
    return handler(session, ns, message)


def _opts(ns: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(ns).items() if k not in _INFRA_KEYS}


# appending -------------------------------------------------------------------------------------

def author() -> str:
    env = os.environ.get("PAXOS_AUTHOR")
    if env:
        return env
    try:
        from dulwich.config import StackedConfig

        config = StackedConfig.default()
        name = config.get((b"user",), b"name").decode()
        email = config.get((b"user",), b"email").decode()
        if name and email:
            return f"{name} <{email}>"
    except (KeyError, OSError, UnicodeDecodeError, ImportError):
        pass
    from .locality import login_user

    user = login_user()
    return f"{user} <{user}@{socket.gethostname()}>"


def append(session: Session, command: Command, message: str,
           facts_topology: Topology | None = None) -> tuple[bytes, int] | None:
    """Decide and append with compare-and-swap; None when the command changes nothing.

    Runtime facts are gathered once: a retry re-validates against the new head with the same
    facts (§5.1), so a concurrent writer can only turn success into a validation error.
    """
    from .decide import decide
    from .events import apply
    from .facts import gather
    from .render import render

    log = session.log
    who = author()
    facts = None
    for attempt in range(MAX_ATTEMPTS):
        # Optimistic first; a writer that lost the race retries holding the writer lock, so
        # every other writer waits at its ref update and this retry cannot lose again.
        pessimistic = attempt > 0 and log.exists()
        with log.writer_lock() if pessimistic else contextlib.nullcontext():
            parent, rev, topology = head_state(session.home)
            if facts is None:
                facts = gather(session.home, facts_topology or topology, command)
            events = decide(topology, command, facts)
            if not events:
                return None
            (event,) = events
            after = apply(topology, event)
            files = render(after)
            sha = log.append(parent, event, rev + 1, files, message, who, lock_held=pessimistic)
        if sha is not None:
            publish(session, sha, rev + 1, after, files)
            return sha, rev + 1
    raise ConcurrencyError()


def publish(session: Session, sha: bytes, rev: int, topology: Topology,
            files: dict[str, bytes]) -> None:
    """Make etc/ and the snapshot cache equal HEAD, under the lock (§5.2)."""
    from .fsutil import locked
    from .render import render

    home = session.home
    with locked(home.lock):
        head = read_head_ref(home)
        if head != sha:  # another administrator appended since: render the newer head
            head, rev, topology = head_state(home)
            files = render(topology)
        else:
            write_cache(home, sha, rev, topology)
        write_etc(home, files)


def _change(session: Session, command: Command, message: str) -> int:
    append(session, command, message)
    return 0


# reports ---------------------------------------------------------------------------------------

def _topology(session: Session, ns: Any) -> Topology:
    at = getattr(ns, "at", None)
    if at is None:
        return head_state(session.home)[2]
    from .history import topology_at
    from .revisions import resolve

    return topology_at(session.log, resolve(session.log, at))


def _hosts(session: Session, ns: Any) -> list:
    from .rules import parse_groups

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


def _show(session: Session, ns: Any, message: str) -> int:
    verb, obj = ns.command.split()
    select, key, doc, yaml_doc = _REPORTS[obj]
    items = select(session, ns)
    if verb == "list":
        session.write(reports.list_output([key(i) for i in items], session.as_json))
    else:
        session.write(reports.render_docs([doc(i) for i in items], yaml_doc, session.as_json))
    return 0


def _history_handler(name: str):
    def run(session: Session, ns: Any, message: str) -> int:
        from . import history_cmds

        return getattr(history_cmds, name)(session, ns, message)

    return run


_HANDLERS = {
    **{f"{verb} {obj}": _show for verb in ("show", "list") for obj in _REPORTS},
    **{name: _history_handler(name) for name in
       ("log", "diff", "undo", "revert", "verify", "replay")},
}


def fail(session: Session, error: PaxosError, interactive: bool) -> int:
    text = error.message
    session.err.write(f"ERROR: {text}\n" if interactive else f"{text}\n")
    session.err.flush()
    return error.exit_code
