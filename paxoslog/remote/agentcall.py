"""Calling the `paxos-node` agent on a host (admin.md §6.2, nodes.md §4).

Remote hosts: `bash -lc '<PAXOS_NODE_CMD> --format json <args>'` over the command's SSH session,
so the service user's login PATH (where `paxos install` puts `~/bin`) applies. A host local by
rule (L) runs this admin's own `paxos-node` (beside its Python) with the same `$PAXOS_HOME`.

The agent's document is hostile like anything else from a host: its size is bounded, it must be
one JSON object of the documented shape, and its error message is cut to one printable line.
A call never raises for a host's failure: SSH errors, timeouts, a missing agent and a garbled
reply all become an `AgentReply` with `code` < 0 or 127 and a `reason`, so the runtime commands
can report per host and go on with the others.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paxoslog.core.model import Host
from paxoslog.remote.locality import is_local
from paxoslog.remote.sshconfig import HostSpec
from paxoslog.remote.sshpool import HOST_ERRORS, SSHSession, reason_of

if TYPE_CHECKING:
    from paxoslog.remote.hostreport import HostReporter

# A status document of three members with long client lists stays far below this.
MAX_REPLY = 4 << 20
# §6.1: 20 s per remote command unless the caller needs longer (start waits for readiness).
DEFAULT_TIMEOUT = 20.0

NOT_INSTALLED = 127
NO_REPLY = -1  # connection, authentication or timeout: the agent never answered
BAD_REPLY = -2  # the agent (or something in its place) answered with garbage


@dataclass(frozen=True)
class AgentReply:
    """One agent call's outcome. `code` is the agent's exit code (0-7, nodes.md §4.1), 127 when
    the agent is not installed, or NO_REPLY / BAD_REPLY."""

    host: str
    code: int
    result: dict[str, Any] | None = None
    reason: str | None = None
    deployed: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.result is not None


def node_command() -> list[str]:
    """The agent's command line on remote hosts: `PAXOS_NODE_CMD` (shell words), default
    `paxos-node` found on the login PATH."""
    words = shlex.split(os.environ.get("PAXOS_NODE_CMD") or "paxos-node")
    return words or ["paxos-node"]


def local_node_command() -> list[str]:
    """This admin's own agent: the `paxos-node` script installed beside its interpreter."""
    beside = os.path.join(os.path.dirname(sys.executable), "paxos-node")
    if os.access(beside, os.X_OK):
        return [beside]
    return [sys.executable, "-m", "nodes.agent.main"]


def _one_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line[:limit]


def parse_reply(host: str, code: int, stdout: bytes, stderr: bytes) -> AgentReply:
    """Validate what an agent printed; anything off the documented shape is BAD_REPLY."""
    if code == NOT_INSTALLED:
        return AgentReply(host, NOT_INSTALLED, reason=f"paxos-node not found on {host}")
    if len(stdout) > MAX_REPLY:
        return AgentReply(host, BAD_REPLY, reason="agent reply too large")
    try:
        doc = json.loads(stdout.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        first = _one_line(stderr.decode("utf-8", "replace")) or "no reply"
        return AgentReply(host, BAD_REPLY, reason=f"agent failed (exit {code}): {first}")
    if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
        return AgentReply(host, BAD_REPLY, reason="agent reply is not a paxos-node document")
    deployed = doc.get("deployed")
    deployed = deployed if isinstance(deployed, str) and len(deployed) <= 64 else None
    if not 0 <= code <= 7:
        return AgentReply(host, BAD_REPLY, reason=f"agent exited with {code}", deployed=deployed)
    if doc["ok"] and code == 0:
        result = doc.get("result")
        if not isinstance(result, dict):
            return AgentReply(host, BAD_REPLY, reason="agent reply has no result")
        return AgentReply(host, 0, result=result, deployed=deployed)
    error = doc.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    reason = _one_line(message) if isinstance(message, str) else f"agent exited with {code}"
    result = doc.get("result") if isinstance(doc.get("result"), dict) else None
    return AgentReply(host, code if code else 1, result=result, reason=reason or "agent failed",
                      deployed=deployed)


def call_local(home_root: str, args: Sequence[str], *,
               timeout: float = DEFAULT_TIMEOUT) -> AgentReply:
    import subprocess  # only hosts local by rule (L) need it: remote calls stay light

    argv = [*local_node_command(), "--home", home_root, "--format", "json", *args]
    host = "localhost"
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           env={**os.environ, "PAXOS_HOME": home_root})
    except subprocess.TimeoutExpired:
        return AgentReply(host, NO_REPLY, reason=f"timeout: {shlex.join(args)}", timed_out=True)
    except OSError as e:
        return AgentReply(host, NOT_INSTALLED, reason=f"paxos-node cannot run here: {e.strerror}")
    return parse_reply(host, p.returncode, p.stdout[: MAX_REPLY + 1], p.stderr[:65536])


def call_remote(session: SSHSession, spec: HostSpec, args: Sequence[str], *,
                timeout: float = DEFAULT_TIMEOUT) -> AgentReply:
    from paxoslog.remote.ssherrors import SSHTimeout

    host = spec.hostname
    try:
        conn = session.connect(spec)
        r = conn.run([*node_command(), "--format", "json", *args], timeout=timeout)
    except SSHTimeout as e:
        return AgentReply(host, NO_REPLY, reason=e.reason, timed_out=True)
    except HOST_ERRORS as e:
        return AgentReply(host, NO_REPLY, reason=reason_of(e))
    return parse_reply(host, r.code, r.stdout, r.stderr)


class Agents:
    """The agents of one admin command: `call(host, args)` picks rule (L) or SSH per host;
    `call_many` runs several calls at once and keeps their order.

    With a `reporter` (the command's HostReporter), every call of `call_many` and `call_each`
    is reported as it finishes, and Ctrl-C returns at once like deploy's: the calls run in
    daemon threads, so no hung host's timeout is waited for; the reporter says which hosts
    finished, and KeyboardInterrupt propagates (exit 130)."""

    def __init__(self, home_root: str, session: SSHSession,
                 spec_of: Callable[[Host], HostSpec],
                 reporter: HostReporter | None = None) -> None:
        self.home_root = home_root
        self.session = session
        self.spec_of = spec_of
        self.reporter = reporter
        self._lock = threading.Lock()

    def call(self, host: Host, args: Sequence[str], *,
             timeout: float = DEFAULT_TIMEOUT) -> AgentReply:
        if is_local(host):
            reply = call_local(self.home_root, args, timeout=timeout)
            return AgentReply(host.hostname, reply.code, reply.result, reply.reason,
                              reply.deployed, reply.timed_out)
        return call_remote(self.session, self.spec_of(host), args, timeout=timeout)

    def call_many(self, calls: Sequence[tuple[Host, Sequence[str]]], *,
                  timeout: float = DEFAULT_TIMEOUT) -> list[AgentReply]:
        if not calls:
            return []
        results: list[AgentReply | None] = [None] * len(calls)
        todo = list(range(len(calls)))
        lock = threading.Lock()
        all_done = threading.Event()
        bugs: list[BaseException] = []
        finished = [0]

        def worker() -> None:
            while True:
                with lock:
                    if not todo or bugs:
                        return
                    i = todo.pop(0)
                host, args = calls[i]
                try:
                    results[i] = reply = self.call(host, args, timeout=timeout)
                    if self.reporter is not None:
                        self.reporter.done(*_report(reply))
                except BaseException as e:  # a bug: re-raised in the caller's thread
                    with lock:
                        bugs.append(e)
                with lock:
                    finished[0] += 1
                    if finished[0] == len(calls) or bugs:
                        all_done.set()

        workers = max(1, min(self.session.options.max_parallel, len(calls)))
        # daemon threads (not a ThreadPoolExecutor, whose threads are joined at exit): after
        # Ctrl-C nothing waits for a hung host
        for n in range(workers):
            threading.Thread(target=worker, name=f"agent-{n}", daemon=True).start()
        try:
            all_done.wait()  # interrupted by Ctrl-C in the main thread, unlike join()
        except KeyboardInterrupt:
            with lock:
                todo.clear()
            if self.reporter is not None:
                self.reporter.interrupted(list(dict.fromkeys(
                    h.hostname for (h, _), r in zip(calls, results, strict=True) if r is None)))
            raise
        if bugs:
            raise bugs[0]
        return results  # type: ignore[return-value]

    def call_each(self, host: Host, args: Sequence[str], *,
                  timeout: float = DEFAULT_TIMEOUT) -> AgentReply:
        """One call that is reported and can be interrupted like those of `call_many`
        (a command's sequential steps: start and stop go member by member)."""
        return self.call_many([(host, args)], timeout=timeout)[0]


def _report(reply: AgentReply) -> tuple[str, str, str | None]:
    """A finished call as the reporter's (host, status, reason)."""
    from paxoslog.remote.hostreport import FAILED, UNREACHABLE

    if reply.ok:
        return reply.host, "ok", None
    status = UNREACHABLE if reply.code == NO_REPLY and not reply.timed_out else FAILED
    return reply.host, status, reply.reason
