"""A PAXOS_HOME with a cell on three simulated hosts (plus two other hosts), driven through the
`paxos` console script with the agent environment; every daemon it starts is stopped after."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import yaml

from tests.agent.agent_env import daemon_pid, kill_daemons
from tests.agent_hosts import node_command
from tests.conftest import PAXOS, paxos_env
from tests.hosts_fixture import TestCluster, TestHost

CELL = "css0"
# the daemons' test timings (agent_env.ENV_ARGS), passed on the agent's command line because
# SSH does not forward the admin's environment
CSS_ARGS = "--drain-timeout 2 --recall-repeat 0.3"


def free_port(addrs: list[str]) -> int:
    """A port free for UDP and TCP on every address (one port per member, as in the guide)."""
    for _ in range(200):
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 20000
        ok = True
        for addr in addrs:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind((addr, port))
                except OSError:
                    ok = False
                finally:
                    s.close()
        if ok:
            return port
    raise RuntimeError("no free port")


def wipe_host(h: TestHost) -> None:
    kill_daemons(str(h.home))
    for sub in ("etc", "var", "data", "run", "log"):
        shutil.rmtree(h.home / sub, ignore_errors=True)


def agent_cmd() -> str:
    return f"env PAXOS_NODE_CSS_ARGS='{CSS_ARGS}' " + node_command()


class RtCell:
    """`paxos` against one home whose css0 runs on hosts[0:3]; hosts[3:5] are other hosts."""

    def __init__(self, cluster: TestCluster, home: Path, hosts: list[TestHost],
                 env: dict[str, str]) -> None:
        self.cluster = cluster
        self.hosts = hosts
        self.members = hosts[:3]
        for h in hosts:
            wipe_host(h)
        home.mkdir()
        self.home = home
        self.env = paxos_env(home, **{**env, "PAXOS_NODE_CMD": agent_cmd()})
        self.port = free_port([h.addr for h in self.members])

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 180) -> subprocess.CompletedProcess:
        p = subprocess.run([PAXOS, *args], capture_output=True, text=True,
                           env={**self.env, **(env or {})}, timeout=timeout)
        assert "Traceback" not in p.stderr, p.stderr
        return p

    def ok(self, *args: str) -> str:
        p = self(*args)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout

    def register(self) -> None:
        for h in self.hosts[3:]:
            self.ok("register", "host", "--user", "paxos", h.addr)
        eps = [f"{h.addr}:{self.port}" for h in self.members for _ in (0, 1)]
        self.ok("register", "css", "--name", CELL, *eps)

    def setup(self) -> None:
        self.register()
        self.ok("deploy")

    def status(self, *mode: str) -> tuple[int, object]:
        """`paxos --json status css MODE`: exit code and the parsed document."""
        p = self("--json", "status", "css", *mode)
        return p.returncode, json.loads(p.stdout) if p.stdout else None

    def long(self) -> list[dict]:
        code, docs = self.status("--long")
        assert isinstance(docs, list) and len(docs) == 1, docs
        return docs[0]["server"]

    def wait(self, pred, what: str, timeout: float = 40.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.long()
            if pred(last):
                return last
            time.sleep(0.3)
        raise AssertionError(f"{what}: {last}")

    def wait_one_leader(self, timeout: float = 40.0) -> list[dict]:
        def good(servers: list[dict]) -> bool:
            running = [s for s in servers if s["status"] == "running"]
            return sum(s["master"] for s in running) == 1 and \
                len({s["birth"] for s in running}) == 1
        return self.wait(good, "no single leader", timeout)

    def pid(self, no: int) -> int | None:
        return daemon_pid(str(self.members[no].home), CELL, no)

    def write(self, count: int, prefix: str = "k") -> None:
        """A client session writing `count` keys, then closed (no session left open)."""
        from nodes.css.client import CssClient

        addrs = [(h.addr, self.port) for h in self.members]

        async def run() -> None:
            c = CssClient(addrs, session_timeout_ms=10000)
            await c.open()
            try:
                for i in range(count):
                    await c.write(f"rt/{prefix}{i}", b"v")
            finally:
                await c.close()

        asyncio.run(asyncio.wait_for(run(), 60))

    def close(self) -> None:
        try:
            self("stop", "css", "--force", timeout=120)
        finally:
            for h in self.hosts:
                kill_daemons(str(h.home))


def yaml_docs(text: str) -> list:
    return list(yaml.safe_load_all(text))
