"""`start css`, `stop css`, `status css` (admin.md §3.6, §4.5, §6.3): the CLI side.

The procedures live in `app.cssrun`; this module opens the command's SSH session, prints the
report or the per-host lines, and turns the outcome into the exit code of §3.6.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from paxoslog.app.session import Session


def _skip_invoke(session: Session, name: str | None) -> None:
    """paramiko's config module imports `invoke` (a task runner: 0.2-0.4 s of a status call)
    only to run `Match exec` of an ssh config, and an ssh config is read only for hosts with
    use_ssh_config. Without such a host, a one-shot command never needs it. (The shell keeps
    it: a later command of the same process may read an ssh config.)"""
    import sys

    if session.interactive or "paramiko" in sys.modules:
        return
    topology = session.head()[2]
    hosts = [topology.host(s.taddr) for c in topology.cells if name in (None, c.name)
             for s in c.servers]
    if not any(h is not None and h.use_ssh_config for h in hosts):
        sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]


@contextmanager
def _agents(session: Session) -> Iterator[Any]:
    from paxoslog.app.cssrun import spec_of
    from paxoslog.cli.commands.remote import _ssh_session
    from paxoslog.remote.agentcall import Agents
    from paxoslog.remote.hostreport import HostReporter

    # per-host lines while it runs on a terminal only (stdout is the report; the spec's
    # messages are the failure lines); Ctrl-C says which hosts finished, as deploy does
    reporter = HostReporter(session.err, session.err, lines=_tty(session.err),
                            progress=False)
    with _ssh_session(session) as ssh:
        try:
            yield Agents(session.home.root, ssh, spec_of, reporter=reporter)
        finally:
            reporter.close()


def _tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _mode(ns: Any) -> str:
    for mode in ("short", "quiet", "long"):
        if getattr(ns, mode, False):
            return mode
    return "normal"


def status_css(session: Session, ns: Any, message: str) -> int:
    _skip_invoke(session, ns.name)  # before anything imports paramiko
    from paxoslog.app import cssrun
    from paxoslog.cli import cssreport

    topology = session.head()[2]
    cells = cssrun.select_cells(topology, ns.name)
    if not cells:
        return 0
    with _agents(session) as agents:
        states = cssrun.status(agents, topology, cells, versions=_mode(ns) == "long")
    session.write(cssreport.render(states, _mode(ns), session.as_json))
    return 0 if cssreport.all_running(states) else 1


def _report(session: Session, outcome: Any, level: str) -> None:
    for line in outcome.errors:
        session.err.write(f"{level}: {line}\n")
    if outcome.refused:
        session.err.write(f"ERROR: {outcome.refused}\n" if session.interactive
                          else f"{outcome.refused}\n")
    session.err.flush()


def _each_cell(session: Session, ns: Any, act: Any, level: str) -> int:
    """§6.3: per selected cell, the members' long state, then `act(agents, topology,
    members)`; exit 1 if any cell's outcome failed."""
    _skip_invoke(session, ns.name)  # before anything imports paramiko
    from paxoslog.app import cssrun

    topology = session.head()[2]
    cells = cssrun.select_cells(topology, ns.name)
    failed = False
    with _agents(session) as agents:
        for cell in cells:
            (members,) = cssrun.status(agents, topology, [cell])
            outcome = act(agents, topology, members)
            _report(session, outcome, level)
            failed = failed or outcome.failed
    return 1 if failed else 0


def start_css(session: Session, ns: Any, message: str) -> int:
    def act(agents: Any, topology: Any, members: Any) -> Any:
        from paxoslog.app import cssrun
        from paxoslog.app.replace import joiner

        return cssrun.start_cell(agents, members, ns.initialize,
                                 join=joiner(agents, topology))
    return _each_cell(session, ns, act, "ERROR")


def stop_css(session: Session, ns: Any, message: str) -> int:
    def act(agents: Any, topology: Any, members: Any) -> Any:
        from paxoslog.app import cssrun

        return cssrun.stop_cell(agents, members, ns.force)
    return _each_cell(session, ns, act, "WARNING")
