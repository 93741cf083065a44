"""An admin home whose registry names a real CSS cell on 127.0.0.1-3 and a real memcached, for
the admin's memcache runtime commands; every proxy the agent started is killed at the end
(found by its locked pid file, never by `ps`)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import socket
import time
from pathlib import Path

import yaml

from tests.conftest import Paxos
from tests.css.css_cell import Cell
from tests.memcache.mc_procs import Memcached, free_port, talk

# short CSS timings for the proxies the agent starts (the proxy's own flags, nodes.md §3.1)
PROXY_ARGS = "--session-timeout 3 --css-wait 3 --backend-timeout 1 --drain-timeout 2"


class World:
    def __init__(self, root: Path,
                 hosts: tuple[str, ...] = ("127.0.0.1", "127.0.0.2", "127.0.0.3")) -> None:
        self.root = root
        self.cell = Cell(str(root / "cellhosts"), hosts=hosts)
        self.admin = root / "admin"
        self.admin.mkdir()
        self.px = Paxos(self.admin)
        self.px.env["PAXOS_NODE_MEMCACHE_ARGS"] = PROXY_ARGS
        self.mcs: list[Memcached] = []

    def start(self) -> World:
        self.cell.start_all(init=True)
        asyncio.run(self.cell.wait_leader())
        ends = []
        for no in range(3):
            host = self.cell.hosts[no]
            ends += [f"{host}:{self.cell.base}", f"{host}:{self.cell.base + 100}"]
        self.px.ok("register", "css", "--name", self.cell.name, *ends)
        return self

    def memcached(self) -> Memcached:
        m = Memcached().start()
        self.mcs.append(m)
        return m

    def register(self, mid: int, *pairs: tuple[int, int], ns: str = "space0") -> None:
        """`register memcache` (id `mid`) with pairs (client port, memcached port)."""
        self.px.ok("register", "memcache", "--css", self.cell.name, "--id", str(mid), "-N", ns)
        for cport, sport in pairs:
            self.add_pair(mid, cport, sport)

    def add_pair(self, mid: int, cport: int, sport: int) -> None:
        self.px.ok("register", "pair", "--id", str(mid), "--server-address", "127.0.0.1",
                   "--server-port", str(sport), "--client-port", str(cport))

    def del_pair(self, mid: int, cport: int, sport: int) -> None:
        self.px.ok("unregister", "pair", "--id", str(mid), "--server-address", "127.0.0.1",
                   "--server-port", str(sport), "--client-port", str(cport))

    def pid(self, mid: int) -> int | None:
        return locked_pid(str(self.admin / "run" / f"paxos-memcache-{mid}.pid"))

    def close(self) -> None:
        kill_proxies(str(self.admin))
        for m in self.mcs:
            m.kill()
        self.cell.close()


def locked_pid(path: str) -> int | None:
    """The pid of a live daemon: it holds the lock of its pid file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode().strip()
            return int(text) if text.isdigit() else None
        return None
    finally:
        os.close(fd)


def kill_proxies(home: str) -> None:
    run = os.path.join(home, "run")
    if not os.path.isdir(run):
        return
    for name in os.listdir(run):
        if name.startswith("paxos-memcache-") and name.endswith(".pid"):
            pid = locked_pid(os.path.join(run, name))
            if not pid or pid <= 1:
                continue
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            try:
                signal.pidfd_send_signal(fd, signal.SIGCONT)
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.close(fd)


def wait_serving(port: int, timeout: float = 20.0) -> None:
    """Until a get through the proxy answers END (CSS session open, backend up)."""
    deadline = time.monotonic() + timeout
    last = b""
    while time.monotonic() < deadline:
        try:
            last = talk(port, b"get mcadmin-ready-probe\r\n", b"\r\n", 3)
            if last == b"END\r\n":
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"proxy on {port} does not serve: {last!r}")


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except ConnectionRefusedError:
        return True
    return False


def docs(text: str) -> list:
    return list(yaml.safe_load_all(text))


__all__ = ["World", "free_port", "talk", "wait_serving", "refused", "docs", "locked_pid"]
