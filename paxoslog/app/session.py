"""One administrator's session and the unit of work that changes the topology: `append`.

`append` runs head -> facts -> decide/apply/render (core) -> `EventLog.append` (objects durable,
then the ref's compare-and-swap) -> `LocalLog.publish` (etc/ equals HEAD, under the lock). That
order is the durability rule: nothing is published that is not committed, and a kill -9 between
two steps leaves the log valid and etc/ repaired by the next writer.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from paxoslog.errors import ConcurrencyError
from paxoslog.store.home import Home, LocalLog, check_etc, discard_etc, prepare_etc

if TYPE_CHECKING:  # the pure core is imported only by commands that change something
    from paxoslog.core.decide import Command
    from paxoslog.core.model import Topology

MAX_ATTEMPTS = 10


def log_event(level: str, msg: str, *args: Any) -> None:
    """Log through `logging` only when -v/--debug configured it: importing logging on every
    one-shot command would cost start-up time for lines nobody reads."""
    logging = sys.modules.get("logging")
    if logging is not None:
        getattr(logging.getLogger("paxoslog"), level)(msg, *args, stacklevel=2)


@dataclass
class Session:
    """One administrator's context: where state lives and where output goes."""

    home: Home
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    output: str = "yaml"
    interactive: bool = False
    trust_new_hosts: bool = False
    local: LocalLog = field(init=False)
    _author: str | None = None

    def __post_init__(self) -> None:
        self.local = LocalLog(self.home)

    @property
    def log(self):  # the EventLog
        return self.local.log

    def head(self) -> tuple[bytes | None, int, Topology]:
        """(HEAD, its rev, its topology), from the store's one memo of HEAD."""
        return self.local.head()

    @property
    def author(self) -> str:
        if self._author is None:
            self._author = author()
        return self._author

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
    from paxoslog.remote.locality import login_user

    user = login_user()
    import socket

    return f"{user} <{user}@{socket.gethostname()}>"


def append(session: Session, command: Command, message: str,
           facts_topology: Topology | None = None) -> tuple[bytes, int] | None:
    """Decide and append with compare-and-swap; None when the command changes nothing.

    Runtime facts are gathered once: a retry re-validates against the new head with the same
    facts (§5.1), so a concurrent writer can only turn success into a validation error.
    """
    from paxoslog.app.facts import gather
    from paxoslog.core.decide import decide
    from paxoslog.core.events import apply
    from paxoslog.core.render import render

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
                facts = gather(session.home, facts_topology or topology, command,
                               warn=session.warn)
            events = decide(topology, command, facts)
            if not events:
                return None
            (event,) = events
            after = apply(topology, event)
            files = render(after)
            # etc/'s new files are written before the commit, so the log's one sync makes
            # them durable too; publishing them is then a rename (see `prepare_etc`).
            prepared = prepare_etc(session.home, files)
            try:
                sha = log.append(parent, event, rev + 1, files, message, who,
                                 lock_held=pessimistic)
            except BaseException:
                discard_etc(session.home, prepared)
                raise
        if sha is None:
            discard_etc(session.home, prepared)
            log_event("debug", "head moved while appending %s; re-validating (attempt %d)",
                      event.type, attempt + 1)
            continue
        log_event("info", "appended rev %d (%s) %s: %s", rev + 1, sha.decode()[:12], event.type,
                  message)
        session.local.publish((sha, rev + 1, after, files), prepared)
        return sha, rev + 1
    raise ConcurrencyError()
