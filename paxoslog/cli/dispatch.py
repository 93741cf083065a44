"""The command table and the one path both front ends take: parse, check, execute, report.

`cli.main` (one-shot) and `cli.shell` (interactive) both call `run_words`; handlers live in
`cli.commands` and use the application layer (`app.session.append`), which imports nothing
from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paxoslog.app.session import Session, append
from paxoslog.errors import PaxosError, UsageError

if TYPE_CHECKING:
    from paxoslog.core.decide import Command

_INFRA_KEYS = {"verb", "object", "command", "output", "version", "verbose", "debug",
               "trust_new_hosts", "at"}


def run_words(parser, session, words: list[str], message: str, interactive: bool) -> int:
    """Parse and execute one command line; returns the exit code, never raises PaxosError."""
    from paxoslog.cli.grammar import ParseError, ParseExit
    from paxoslog.cli.userinput import check_words
    from paxoslog.errors import BadInput

    try:
        check_words(words)
    except BadInput as exc:
        session.err.write(f"{parser.prog}: error: {exc.message}\n")
        return exc.exit_code
    try:
        ns = parser.parse_args(words)
    except ParseError as exc:
        exc.parser.print_usage(session.err)
        session.err.write(f"{exc.parser.prog}: error: {exc.text}\n")
        return 2
    except ParseExit as exc:
        if exc.text:
            session.err.write(exc.text)
        return exc.status
    if getattr(ns, "version", False):
        from importlib.metadata import version

        session.write(f"paxos {version('paxoslog')}\n")
        return 0
    if getattr(ns, "verb", None) is None:
        parser.print_usage(session.err)
        session.err.write(f"{parser.prog}: error: a command is required\n")
        return 2
    try:
        return execute(session, ns, message)
    except UsageError as exc:  # found after parsing (e.g. fetch's host:port): said as argparse would
        session.err.write(f"{parser.prog} {ns.command}: error: {exc.message}\n")
        return exc.exit_code
    except PaxosError as exc:
        return fail(session, exc, interactive)
    except OSError as exc:  # a local file (home, log, history, ssh files): one line, no traceback
        return fail(session, PaxosError(local_error(exc, session.home.root)), interactive)


def local_error(exc: OSError, where: str) -> str:
    """The one-line message of a local OSError; the traceback only at -vv (DEBUG)."""
    import logging

    from paxoslog.errors import describe_os_error

    logging.getLogger("paxoslog").debug("local file error", exc_info=exc)
    return describe_os_error(exc, where)


def execute(session: Session, ns: Any, message: str) -> int:
    """Run one parsed command; raises PaxosError for refusals (exit 1)."""
    session.output = getattr(ns, "output", None) or "yaml"
    handler = _HANDLERS.get(ns.command)
    if handler is None:
        from paxoslog.core.decide import Command

        return _change(session, Command(ns.command, _opts(ns)), message)
    return handler(session, ns, message)


def _opts(ns: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(ns).items() if k not in _INFRA_KEYS}


def _change(session: Session, command: Command, message: str) -> int:
    append(session, command, message)
    return 0


def _show(session: Session, ns: Any, message: str) -> int:
    from paxoslog.cli.commands.show import show

    return show(session, ns, message)


def _remote(name: str, session: Session, ns: Any, message: str) -> int:
    from paxoslog.cli.commands import remote as remote_cmds

    session.trust_new_hosts = session.trust_new_hosts or bool(getattr(ns, "trust_new_hosts",
                                                                      False))
    return getattr(remote_cmds, name)(session, ns, message)


def _fetch(session: Session, ns: Any, message: str) -> int:
    # An unregistered `[user@]host[:port]` is checked like a registered host's fields before
    # anything connects: the socket layer fails on an unencodable name or a port over 65535.
    if session.head()[2].host(ns.hostname) is None:
        from paxoslog.core.rules import check_fetch_target

        check_fetch_target(ns.hostname)
    return _remote("fetch", session, ns, message)


def _history_handler(name: str):
    def run(session: Session, ns: Any, message: str) -> int:
        from paxoslog.cli.commands import history as history_cmds

        return getattr(history_cmds, name)(session, ns, message)

    return run


def _handler(module: str, name: str):
    """A handler in `cli.commands.<module>`, imported only when its command runs."""
    def run(session: Session, ns: Any, message: str) -> int:
        import importlib

        session.trust_new_hosts = session.trust_new_hosts or bool(
            getattr(ns, "trust_new_hosts", False))
        return getattr(importlib.import_module(f"paxoslog.cli.commands.{module}"), name)(
            session, ns, message)

    return run


_HANDLERS = {
    **{f"{verb} {obj}": _show for verb in ("show", "list") for obj in ("host", "css", "memcache")},
    **{name: _history_handler(name) for name in
       ("log", "diff", "undo", "revert", "verify", "replay")},
    "deploy": lambda *a: _remote("deploy", *a),
    "status deploy": lambda *a: _remote("status_deploy", *a),
    "fetch": lambda *a: _fetch(*a),
    # runtime (§3.6-§3.8): cells through the agents, memcache on this host
    "start css": _handler("runtime", "start_css"),
    "stop css": _handler("runtime", "stop_css"),
    "status css": _handler("runtime", "status_css"),
    "start memcache": _handler("memcache", "start_memcache"),
    "stop memcache": _handler("memcache", "stop_memcache"),
    "status memcache": _handler("memcache", "status_memcache"),
    "apply pair": _handler("memcache", "apply_pair"),
    "replace": _handler("replace", "replace"),
    "install": _handler("install", "install"),
}


def fail(session: Session, error: PaxosError, interactive: bool) -> int:
    # a multi-host failure is one line per host, each prefixed in the shell
    lines = error.message.splitlines() or [""]
    session.err.write("".join(f"ERROR: {t}\n" if interactive else f"{t}\n" for t in lines))
    session.err.flush()
    return error.exit_code
