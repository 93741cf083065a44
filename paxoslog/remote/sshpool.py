"""One command's SSH session: connections reused, many hosts at once (§6.1, §6.7 step 1)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TextIO, TypeVar

from paxoslog.errors import RemoteError, describe_os_error
from paxoslog.remote.hostkeys import KnownHosts
from paxoslog.remote.hostreport import FAILED, UNREACHABLE, HostReporter
from paxoslog.remote.paramikoload import paramiko
from paxoslog.remote.ssh import Connection, HostSpec, SSHError, SSHOptions, connect

T = TypeVar("T")


@dataclass
class ManyResult(Generic[T]):
    """Per-host outcome of `SSHSession.run_many`, both maps in the order the hosts were given."""

    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_message(self) -> str:
        """§3.9: the per-host errors `<host>: <reason>` joined by `, `."""
        return ", ".join(f"{host}: {reason}" for host, reason in self.errors.items())


# Failures that belong to one host; anything else is a bug and propagates.
HOST_ERRORS = (RemoteError, OSError, paramiko.SSHException, EOFError)


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, SSHError):
        return exc.reason
    if isinstance(exc, RemoteError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return describe_os_error(exc)
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


class _Progress:
    """`\\r[####    ] 3/20 hosts` on stderr; drawn only on a terminal and for several hosts."""

    def __init__(self, total: int, stream: TextIO, enabled: bool | None) -> None:
        if enabled is None:
            enabled = total > 1 and stream.isatty()
        self.total, self.stream, self.enabled = total, stream, enabled
        self.done = 0
        self._lock = threading.Lock()
        self._draw()

    def _draw(self) -> None:
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            self.stream.write(f"\r[{'#' * filled}{' ' * (width - filled)}] "
                              f"{self.done}/{self.total} hosts")
            self.stream.flush()

    def step(self) -> None:
        with self._lock:
            self.done += 1
            self._draw()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


class SSHSession:
    """Connections for one command. `connect` returns the same Connection for the same host
    until `close`; `run_many` calls a function on many hosts with bounded parallelism."""

    def __init__(self, options: SSHOptions | None = None) -> None:
        self.options = options or SSHOptions()
        self.known_hosts = KnownHosts(self.options.known_hosts)
        self._conns: dict[HostSpec, Connection] = {}
        self._host_locks: dict[HostSpec, threading.Lock] = {}
        self._lock = threading.Lock()
        self._closed = False

    def connect(self, spec: HostSpec) -> Connection:
        with self._lock:
            host_lock = self._host_locks.setdefault(spec, threading.Lock())
        # Per-host lock: two threads asking for one host share one connection (and one prompt).
        with host_lock:
            conn = self._conns.get(spec)
            if conn is not None and conn.is_active():
                return conn
            conn = connect(spec, self.options, self.known_hosts)
            with self._lock:
                if self._closed:  # a worker left behind by Ctrl-C: the session is gone
                    conn.close()
                    raise SSHError(spec.hostname, "interrupted")
                self._conns[spec] = conn
            return conn

    def run_many(self, specs: Iterable[HostSpec], fn: Callable[[Connection], T], *,
                 progress: bool | None = None, stream: TextIO | None = None,
                 reporter: HostReporter | None = None,
                 label: Callable[[T], str] | None = None) -> ManyResult[T]:
        """Connect to every host and call `fn(connection)`, at most `options.max_parallel` at
        once. A host's failure is recorded as its reason and never stops the others.

        With a `reporter`, each host is reported as it finishes: `label(value)` (default `ok`),
        `unreachable` when connecting failed, `failed` when `fn` did. Ctrl-C returns at once:
        the workers are daemon threads, so no connection's timeout is waited for; the reporter
        says which hosts finished, and KeyboardInterrupt propagates."""
        specs = list(dict.fromkeys(specs))
        outcome: ManyResult[T] = ManyResult()
        if not specs:
            return outcome
        bar = None if reporter is not None else _Progress(len(specs), stream or sys.stderr,
                                                          progress)
        found: dict[str, tuple[bool, object]] = {}
        todo = list(specs)
        lock = threading.Lock()
        all_done = threading.Event()
        bugs: list[BaseException] = []

        def one(spec: HostSpec) -> None:
            stage = UNREACHABLE
            try:
                conn = self.connect(spec)
                stage = FAILED
                value = fn(conn)
                found[spec.hostname] = (True, value)
                if reporter is not None:
                    reporter.done(spec.hostname, label(value) if label else "ok")
            except HOST_ERRORS as e:
                found[spec.hostname] = (False, reason_of(e))
                if reporter is not None:
                    reporter.done(spec.hostname, stage, reason_of(e))

        def worker() -> None:
            while True:
                with lock:
                    if not todo or bugs:
                        break
                    spec = todo.pop(0)
                try:
                    one(spec)
                except BaseException as e:  # a bug: re-raised in the caller's thread
                    with lock:
                        bugs.append(e)
                finally:
                    if bar is not None:
                        bar.step()
                    with lock:
                        if len(found) == len(specs) or bugs:
                            all_done.set()

        workers = max(1, min(self.options.max_parallel, len(specs)))
        threads = [threading.Thread(target=worker, name=f"ssh-{i}", daemon=True)
                   for i in range(workers)]
        try:
            for t in threads:
                t.start()
            # Event.wait is interrupted by Ctrl-C in the main thread; join() of a hung
            # connection would not return before its timeout
            all_done.wait()
        except KeyboardInterrupt:
            with lock:
                todo.clear()
            if reporter is not None:
                reporter.interrupted([s.hostname for s in specs if s.hostname not in found])
            raise
        finally:
            if bar is not None:
                bar.close()
        if bugs:
            raise bugs[0]
        for spec in specs:
            good, value = found[spec.hostname]
            if good:
                outcome.results[spec.hostname] = value  # type: ignore[assignment]
            else:
                outcome.errors[spec.hostname] = value  # type: ignore[assignment]
        return outcome

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
            self._closed = True
        for conn in conns:
            conn.close()

    def __enter__(self) -> SSHSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
