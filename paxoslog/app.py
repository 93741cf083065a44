"""Executes parsed commands: the glue between the grammar, the pure core and the adapters."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from . import reports
from .errors import ConcurrencyError, PaxosError
from .home import Home, check_etc, head_state, read_head_ref, write_cache, write_etc

if TYPE_CHECKING:  # the pure core is imported only by commands that change something
    from .decide import Command
    from .model import Topology

MAX_ATTEMPTS = 10


def log_event(level: str, msg: str, *args: Any) -> None:
    """Log through `logging` only when -v/--debug configured it: importing logging on every
    one-shot command would cost start-up time for lines nobody reads."""
    logging = sys.modules.get("logging")
    if logging is not None:
        getattr(logging.getLogger("paxoslog"), level)(msg, *args, stacklevel=2)
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
    interactive: bool = False
    trust_new_hosts: bool = False
    _head: Any = None
    _author: str | None = None

    @property
    def log(self):
        if self._log is None:
            from .gitlog import EventLog

            self._log = EventLog(self.home.repo)
        return self._log

    def head(self) -> tuple[bytes | None, int, Topology]:
        """(HEAD, its rev, its topology); a shell keeps the same topology object while HEAD
        does not move, so rendering reuses what it rendered for it before."""
        sha = read_head_ref(self.home)
        if self._head is None or self._head[0] != sha:
            self._head = head_state(self.home)
        return self._head

    @property
    def author(self) -> str:
        if self._author is None:
            self._author = author()
        return self._author

    def remember(self, sha: bytes, rev: int, topology: Topology) -> None:
        self._head = (sha, rev, topology)

    def forget(self) -> None:
        self._head = None

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
    import socket

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
    who = session.author
    check_etc(session.home)
    facts = None
    for attempt in range(MAX_ATTEMPTS):
        # Optimistic first; a writer that lost the race retries holding the writer lock, so
        # every other writer waits at its ref update and this retry cannot lose again.
        pessimistic = attempt > 0 and log.exists()
        with log.writer_lock() if pessimistic else contextlib.nullcontext():
            parent, rev, topology = session.head()
            if facts is None:
                facts = gather(session.home, facts_topology or topology, command)
            events = decide(topology, command, facts)
            if not events:
                return None
            (event,) = events
            after = apply(topology, event)
            files = render(after)
            sha = log.append(parent, event, rev + 1, files, message, who,
                             lock_held=pessimistic)
        if sha is None:
            log_event("debug", "head moved while appending %s; re-validating (attempt %d)",
                      event.type, attempt + 1)
            continue
        log_event("info", "appended rev %d (%s) %s: %s", rev + 1, sha.decode()[:12], event.type,
                  message)
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
            session.remember(sha, rev, topology)
        write_etc(home, files)


def _change(session: Session, command: Command, message: str) -> int:
    append(session, command, message)
    return 0


# reports ---------------------------------------------------------------------------------------

def _topology(session: Session, ns: Any) -> Topology:
    at = getattr(ns, "at", None)
    if at is None:
        return session.head()[2]
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


def _remote(name: str, session: Session, ns: Any, message: str) -> int:
    from . import remote_cmds

    session.trust_new_hosts = session.trust_new_hosts or bool(getattr(ns, "trust_new_hosts",
                                                                      False))
    return getattr(remote_cmds, name)(session, ns, message)


def _fetch(session: Session, ns: Any, message: str) -> int:
    # An unregistered `[user@]host[:port]` is checked like a registered host's fields before
    # anything connects: the socket layer fails on an unencodable name or a port over 65535.
    if session.head()[2].host(ns.hostname) is None:
        from .rules import check_fetch_target

        check_fetch_target(ns.hostname)
    return _remote("fetch", session, ns, message)


def _history_handler(name: str):
    def run(session: Session, ns: Any, message: str) -> int:
        from . import history_cmds

        return getattr(history_cmds, name)(session, ns, message)

    return run


_HANDLERS = {
    **{f"{verb} {obj}": _show for verb in ("show", "list") for obj in _REPORTS},
    **{name: _history_handler(name) for name in
       ("log", "diff", "undo", "revert", "verify", "replay")},
    "deploy": lambda *a: _remote("deploy", *a),
    "status deploy": lambda *a: _remote("status_deploy", *a),
    "fetch": lambda *a: _fetch(*a),
}


def fail(session: Session, error: PaxosError, interactive: bool) -> int:
    text = error.message
    session.err.write(f"ERROR: {text}\n" if interactive else f"{text}\n")
    session.err.flush()
    return error.exit_code
