"""A running 3-member cell on simulated sshd hosts for the `paxos replace` tests: an admin home
(`paxos` as a subprocess with the agent environment), three member hosts, two other hosts and
a spare (the new host). Members are started through the agent over SSH (`start css` is another
module's), and every daemon started is stopped at teardown."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
import uuid
from pathlib import Path

from nodes.css.shell.auth import generate_key
from paxoslog.app.deploy import spec_of
from paxoslog.remote.agentcall import Agents
from paxoslog.remote.sshpool import SSHSession
from tests.conftest import PAXOS, paxos_env
from tests.deploy_helpers import options, wipe
from tests.hosts_fixture import TestCluster, TestHost

CELL = "rc0"
UPORT, TPORT = 24311, 24312


def chown_paxos(path: Path) -> None:
    pw = pwd.getpwnam("paxos")
    os.chown(path, pw.pw_uid, pw.pw_gid)


class ReplaceSite:
    def __init__(self, cluster: TestCluster, tmp_path: Path, env: dict[str, str]) -> None:
        assert len(cluster.hosts) >= 6, "PAXOS_TEST_HOSTS must be 6 or more"
        self.cluster = cluster
        self.hosts: list[TestHost] = cluster.hosts[:6]
        self.members, self.new = self.hosts[:3], self.hosts[5]
        for h in self.hosts:
            wipe(h)
            for sub in ("data", "run", "log"):
                subprocess.run(["rm", "-rf", str(h.home / sub)], check=True)
        self.home = tmp_path / "admin"
        self.home.mkdir()
        self.env = paxos_env(self.home, **env)
        self.cell_id = uuid.uuid4().hex[:12]
        for h in self.hosts[3:]:
            self.ok("register", "host", "--user", "paxos", h.addr)
        self.ok("register", "css", "--name", CELL,
                *[e for h in self.members for e in (f"{h.addr}:{UPORT}", f"{h.addr}:{TPORT}")])
        self.ok("deploy")
        # the cell secret: on the members' hosts and in the admin's etc/cell, from where the
        # replace ships it to the new host (deploy does not ship keys yet)
        key = self.home / "etc" / "cell" / f"{CELL}.key"
        if not key.exists():  # deploy makes and ships it since the cell keys landed
            generate_key(str(key))
        for h in self.members:
            dest = h.home / "etc" / "cell" / f"{CELL}.key"
            dest.write_bytes(key.read_bytes())
            os.chmod(dest, 0o600)
            chown_paxos(dest)
        self.ssh = SSHSession(options(cluster, tmp_path))
        self.agents = Agents(str(self.home), self.ssh, spec_of)

    # ------------------------------------------------------------------ admin

    def paxos(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([PAXOS, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout)

    def ok(self, *args: str) -> str:
        p = self.paxos(*args)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout

    def log_count(self) -> int:
        import json

        return len(json.loads(self.ok("--json", "log")))

    # ------------------------------------------------------------------ agents

    def host_of(self, addr: str):
        from paxoslog.core.model import Host

        return Host(addr, "paxos", None, (), False)

    def agent(self, addr: str, *args: str, timeout: float = 60):
        return self.agents.call(self.host_of(addr), list(args), timeout=timeout)

    def start_members(self) -> None:
        for no, h in enumerate(self.members):
            r = self.agent(h.addr, "start", "css", CELL, str(no), "--init", "--cell-id",
                           self.cell_id)
            assert r.ok, r

    def status(self, addr: str, no: int) -> dict | None:
        r = self.agent(addr, "status", "css", CELL, str(no))
        if not r.ok or not r.result.get("members"):
            return None
        return r.result["members"][0]

    def wait(self, pred, timeout: float = 30.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}: {last}")

    def leader(self, where: dict[int, str]) -> int | None:
        entries = {no: self.status(addr, no) for no, addr in where.items()}
        masters = [no for no, e in entries.items() if e and e["status"] == "running"
                   and e["master"]]
        return masters[0] if len(masters) == 1 else None

    def close(self) -> None:
        for h in self.hosts:
            run = h.home / "run"
            if not run.is_dir():
                continue
            for pid_file in run.glob(f"paxos-css-{CELL}-*.pid"):
                no = pid_file.name.rsplit("-", 1)[1].removesuffix(".pid")
                self.agent(h.addr, "stop", "css", CELL, no, "--force", "--timeout", "5")
        self.ssh.close()
