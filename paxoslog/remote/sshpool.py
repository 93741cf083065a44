"""One command's SSH session: connections reused, many hosts at once (§6.1, §6.7 step 1)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TextIO, TypeVar

import paramiko

from paxoslog.errors import RemoteError, describe_os_error
from paxoslog.remote.hostkeys import KnownHosts
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
                self._conns[spec] = conn
            return conn

    def run_many(self, specs: Iterable[HostSpec], fn: Callable[[Connection], T], *,
                 progress: bool | None = None, stream: TextIO | None = None) -> ManyResult[T]:
        """Connect to every host and call `fn(connection)`, at most `options.max_parallel` at
        once. A host's failure is recorded as its reason and never stops the others."""
        specs = list(dict.fromkeys(specs))
        outcome: ManyResult[T] = ManyResult()
        if not specs:
            return outcome
        bar = _Progress(len(specs), stream or sys.stderr, progress)
        found: dict[str, tuple[bool, object]] = {}

        def one(spec: HostSpec) -> None:
            try:
                found[spec.hostname] = (True, fn(self.connect(spec)))
            except HOST_ERRORS as e:
                found[spec.hostname] = (False, reason_of(e))
            finally:
                bar.step()

        workers = max(1, min(self.options.max_parallel, len(specs)))
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssh") as pool:
                for future in [pool.submit(one, s) for s in specs]:
                    future.result()  # re-raises bugs (non-host errors)
        finally:
            bar.close()
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
        for conn in conns:
            conn.close()

    def __enter__(self) -> SSHSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
