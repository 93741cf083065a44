"""Real 3-process CSS cells on 127.0.0.x for tests: start, stop, kill -9, restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

from nodes.css.probe import status
from nodes.css.shell.auth import generate_key

# the timing defaults of spec 2.11 (tick 10 ms, heartbeat 50 ms, lease 500 ms, election
# 600-1000 ms); only the clean-stop drain and the recall repeat are shortened for tests
FAST = ["--drain-timeout", "2", "--recall-repeat", "0.3"]


async def poll_until(pred, timeout: float = 10.0, what: str = "condition"):
    """Await `pred()` until it returns something true (returned), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        v = await pred()
        if v:
            return v
        assert time.monotonic() < deadline, f"{what} not reached in {timeout}s"
        await asyncio.sleep(0.05)


def free_port_pair(addresses: int = 3) -> int:
    """A base port such that base and base+100 are free on 127.0.0.1..N (TCP and UDP)."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "big") % 20000
        ok = True
        for i in range(1, addresses + 1):
            for port, kind in ((base, socket.SOCK_DGRAM), (base + 100, socket.SOCK_STREAM)):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind((f"127.0.0.{i}", port))
                except OSError:
                    ok = False
                finally:
                    s.close()
        if ok:
            return base
    raise RuntimeError("no free ports")


class Cell:
    def __init__(self, home: str, name: str = "cell0", extra: list[str] | None = None,
                 hosts: tuple[str, ...] = ("127.0.0.1", "127.0.0.2", "127.0.0.3")) -> None:
        self.home = home
        self.name = name
        self.cell_id = uuid.uuid4().hex[:12]
        self.base = free_port_pair()
        self.hosts = list(hosts)
        self.extra = extra or []
        self.procs: dict[int, subprocess.Popen] = {}
        os.makedirs(os.path.join(home, "etc", "cell"), exist_ok=True)
        self.write_config()
        generate_key(self.key_path)  # the cell secret (spec 2.3), as the admin's deploy ships it

    def write_config(self) -> None:
        lines = [f"{i} {h} {self.base} {h} {self.base + 100}" for i, h in enumerate(self.hosts)]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def config_path(self) -> str:
        return os.path.join(self.home, "etc", "cell", f"{self.name}.conf")

    @property
    def key_path(self) -> str:
        return os.path.join(self.home, "etc", "cell", f"{self.name}.key")

    def copy_key(self, etc_cell_dir: str) -> None:
        """Give another (simulated) host of this cell the secret, mode 0600."""
        shutil.copy(self.key_path, os.path.join(etc_cell_dir, f"{self.name}.key"))

    def tcp(self, no: int) -> tuple[str, int]:
        return (self.hosts[no], self.base + 100)

    def addrs(self) -> list[tuple[str, int]]:
        return [self.tcp(i) for i in range(3)]

    def env(self) -> dict:
        return {**os.environ, "HOME": self.home, "PYTHONUNBUFFERED": "1"}

    def start(self, no: int, init: bool = False, wait: bool = True,
              extra: list[str] | None = None) -> subprocess.Popen:
        args = [sys.executable, "-m", "nodes.css.server", self.name, str(no), "--log", "file",
                "--test-hooks", *FAST, *self.extra, *(extra or [])]
        if init:
            args += ["--init", "--cell-id", self.cell_id]
        p = subprocess.Popen(args, env=self.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        self.procs[no] = p
        if wait:
            line = p.stdout.readline().decode()
            if not line.startswith("READY"):
                err = p.stderr.read().decode()
                raise RuntimeError(f"member {no} did not start: {line!r} {err}")
        return p

    def start_all(self, init: bool = False) -> None:
        for i in range(3):
            self.start(i, init=init, wait=False)
        for i in range(3):
            line = self.procs[i].stdout.readline().decode()
            if not line.startswith("READY"):
                raise RuntimeError(f"member {i}: {line!r} {self.procs[i].stderr.read()!r}")

    def kill(self, no: int) -> None:
        p = self.procs.pop(no, None)
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(5)

    def stop(self, no: int, timeout: float = 10) -> int:
        p = self.procs.pop(no)
        p.send_signal(signal.SIGTERM)
        return p.wait(timeout)

    def close(self) -> None:
        for no in list(self.procs):
            p = self.procs.pop(no)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
            for s in (p.stdout, p.stderr):
                if s:
                    s.close()

    async def statuses(self) -> dict[int, dict]:
        out = {}
        for i in range(3):
            if i in self.procs:
                try:
                    out[i] = await status(self.tcp(i), timeout=1.0)
                except Exception:
                    pass
        return out

    async def wait_leader(self, timeout: float = 10.0, exclude: int | None = None) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for no, st in (await self.statuses()).items():
                if st["role"] == "leader" and no != exclude and st["lease_ms"] > 0:
                    return no
            await asyncio.sleep(0.05)
        raise TimeoutError("no leader")

    def log(self, no: int) -> str:
        try:
            with open(os.path.join(self.home, "log", f"paxos-css-{self.name}-{no}.log")) as f:
                return f.read()
        except OSError:
            return ""


class Firewall:
    """iptables rules in a private chain, always removed by close()."""

    def __init__(self) -> None:
        self.chain = f"CSSTEST{os.getpid() % 100000}"
        self._ipt("-N", self.chain)
        self._ipt("-I", "INPUT", "-j", self.chain)

    @staticmethod
    def _ipt(*args: str, check: bool = True) -> None:
        subprocess.run(["iptables", "-w", *args], check=check, capture_output=True)

    def isolate(self, host: str, others: list[str]) -> None:
        for o in others:
            self._ipt("-A", self.chain, "-s", host, "-d", o, "-j", "DROP")
            self._ipt("-A", self.chain, "-s", o, "-d", host, "-j", "DROP")

    def heal(self) -> None:
        self._ipt("-F", self.chain)

    def close(self) -> None:
        self._ipt("-D", "INPUT", "-j", self.chain, check=False)
        self._ipt("-F", self.chain, check=False)
        self._ipt("-X", self.chain, check=False)
