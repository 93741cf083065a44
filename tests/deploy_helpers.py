"""Shared by the deploy and fetch tests: a PAXOS_HOME registering simulated hosts."""

from __future__ import annotations

import shutil
from pathlib import Path

from paxoslog.app import deploy as dep
from paxoslog.remote.ssh import SSHOptions
from paxoslog.remote.sshpool import SSHSession
from paxoslog.store.home import Home, head_state
from tests.conftest import Paxos
from tests.hosts_fixture import TestCluster, TestHost

AUTHOR = "Deployer <deployer@example.invalid>"


def options(cluster: TestCluster, tmp_path: Path) -> SSHOptions:
    return SSHOptions(known_hosts=cluster.known_hosts_copy(tmp_path / "known_hosts"),
                      identity_files=(str(cluster.client_key),), use_agent=False,
                      ask_password=None, connect_timeout=5, command_timeout=10)


def wipe(host: TestHost) -> None:
    for sub in ("etc", "var"):
        shutil.rmtree(host.home / sub, ignore_errors=True)


def make_home(path: Path, hosts: list[TestHost]) -> Paxos:
    path.mkdir()
    px = Paxos(path)
    for h in hosts:
        px.ok("register", "host", "--user", "paxos", h.addr)
    cell = [f"{h.addr}:24111" for h in hosts[:3] for _ in (0, 1)]
    px.ok("register", "css", "--name", "css0", *cell)
    return px


class Env:
    def __init__(self, cluster: TestCluster, tmp_path: Path, hosts: list[TestHost]) -> None:
        for h in hosts:
            wipe(h)
        self.hosts = hosts
        self.px = make_home(tmp_path / "home", hosts)
        self.home = Home(str(self.px.home))
        self.opts = options(cluster, tmp_path)

    def targets(self, *names: str):
        return dep.select_targets(head_state(self.home)[2], names)

    def deploy(self, *names: str, clean: bool = False) -> dep.Outcome:
        with SSHSession(self.opts) as session:
            return dep.deploy(self.home, self.targets(*names), session, clean=clean, author=AUTHOR)

    def dry_run(self, *names: str, clean: bool = False) -> dep.Outcome:
        with SSHSession(self.opts) as session:
            return dep.dry_run(self.home, self.targets(*names), session, clean=clean)

    @staticmethod
    def status_of(px: Paxos, known_hosts: Path, cluster: TestCluster) -> list[dict]:
        home = Home(str(px.home))
        opts = SSHOptions(known_hosts=known_hosts, identity_files=(str(cluster.client_key),),
                          use_agent=False, ask_password=None)
        with SSHSession(opts) as session:
            return dep.status(home, dep.select_targets(head_state(home)[2]), session)

    def status(self, *names: str) -> list[dict]:
        with SSHSession(self.opts) as session:
            return dep.status(self.home, self.targets(*names), session)


