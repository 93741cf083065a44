"""Real memcached and paxos-memcache processes on 127.0.0.1 for tests; always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


def talk(port: int, data: bytes, until: bytes | None = None, timeout: float = 5.0) -> bytes:
    """Send `data`, read until the reply ends with `until` (or EOF, or a quiet 0.3 s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        s.settimeout(0.3 if until is None else 0.1)
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except TimeoutError:
                if until is None:
                    break
                continue
            if not d:
                out += b"<EOF>"
                break
            out += d
            if until is not None and out.endswith(until):
                break
        return out
    finally:
        s.close()


class Memcached:
    def __init__(self, port: int | None = None, extra: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None

    def start(self) -> Memcached:
        args = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-t", "1",
                "-m", "64", *self.extra]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


class ProxyProc:
    """A paxos-memcache process with one pair in front of `backend_port`."""

    def __init__(self, home: str, pid: int, cell: str, backend_port: int,
                 ns: str = "space0", extra: list[str] | None = None) -> None:
        self.home, self.id, self.cell = home, pid, cell
        self.port = free_port()
        self.backend_port = backend_port
        self.ns = ns
        self.extra = extra if extra is not None else [
            "--session-timeout", "3", "--css-wait", "3", "--backend-timeout", "1"]
        self.proc: subprocess.Popen | None = None

    def args(self) -> list[str]:
        return [sys.executable, "-m", "nodes.memcache.main", str(self.id), self.cell, self.ns,
                "--pair", f"127.0.0.1:{self.port}=127.0.0.1:{self.backend_port}", *self.extra]

    def start(self, wait_serving: bool = True) -> ProxyProc:
        env = {**os.environ, "HOME": self.home, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.args(), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline().decode()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            err = self.proc.stderr.read().decode()  # type: ignore[union-attr]
            raise RuntimeError(f"proxy {self.id} did not start: {line!r} {err}")
        if wait_serving:
            self.wait_serving()
        return self

    def wait_serving(self, timeout: float = 20.0) -> None:
        """Until a get answers END (CSS session open, NS held, backend up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if talk(self.port, b"get paxos-ready-probe\r\n", b"\r\n", 3) == b"END\r\n":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"proxy {self.id} does not serve")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self._close()

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._close()
        return rc

    def _close(self) -> None:
        if self.proc is not None:
            for s in (self.proc.stdout, self.proc.stderr):
                if s:
                    s.close()
        self.proc = None

    def log(self) -> str:
        try:
            with open(os.path.join(self.home, "log", f"paxos-memcache-{self.id}.log")) as f:
                return f.read()
        except OSError:
            return ""
