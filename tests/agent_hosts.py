"""The simulated hosts with the node programs (`paxos-node`, `paxos-css`) installed for their
service user, for the admin's runtime commands.

`agent_cluster` installs them the way an operator does: the real `paxos install` onto every host
of the session's cluster, once per session (the hosts' homes survive kill and revive, so the
install does too). `agent_env` is the environment an admin process needs to reach those hosts:
only their keys; the agent is found as `paxos-node` on the service user's login PATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hosts_fixture import TestCluster

ROOT = Path(__file__).resolve().parent.parent
PAXOS = str(Path(sys.executable).with_name("paxos"))
INSTALL_TIMEOUT = 900  # every host of a 20-host cluster on a loaded 2-core machine


def node_command() -> str:
    """The agent's command on the hosts: the installed `paxos-node`, found on the service user's
    login PATH (callers may wrap it, e.g. `env VAR=... ` + node_command())."""
    return "paxos-node"


def cluster_env(cluster: TestCluster, home: Path) -> dict[str, str]:
    """A `paxos` process's environment for this cluster with its own PAXOS_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAXOS_")}
    env.update(LANG="C", LC_ALL="C", HOME=str(home), PAXOS_HOME=str(home),
               PAXOS_AUTHOR="Installer <installer@example.invalid>",
               PAXOS_KNOWN_HOSTS=str(cluster.state / "known_hosts"),
               PAXOS_SSH_IDENTITY=str(cluster.state / "client" / "id_ed25519"))
    return env


def install_on(cluster: TestCluster, home: Path, addrs: list[str]) -> subprocess.CompletedProcess:
    """Register `addrs` (user paxos) in a fresh PAXOS_HOME `home` and run `paxos install`."""
    home.mkdir(parents=True, exist_ok=True)
    env = cluster_env(cluster, home)
    script = "".join(f"register host --user {cluster.user} {a}\n" for a in addrs)
    reg = subprocess.run([PAXOS], input=script, capture_output=True, text=True, env=env,
                         timeout=120)
    if reg.returncode != 0:
        return reg
    return subprocess.run([PAXOS, "install"], capture_output=True, text=True, env=env,
                          timeout=INSTALL_TIMEOUT)


@pytest.fixture(scope="session")
def agent_cluster(test_cluster: TestCluster,
                  tmp_path_factory: pytest.TempPathFactory) -> TestCluster:
    """The session's hosts, each with this build's node programs installed by `paxos install`."""
    home = tmp_path_factory.mktemp("installer") / "home"
    proc = install_on(test_cluster, home, test_cluster.addrs)
    if proc.returncode != 0:
        pytest.fail(f"paxos install on the test hosts failed: {proc.stderr.strip()[-2000:]}")
    return test_cluster


@pytest.fixture
def agent_env(agent_cluster: TestCluster) -> dict[str, str]:
    return {
        "PAXOS_KNOWN_HOSTS": str(agent_cluster.state / "known_hosts"),
        "PAXOS_SSH_IDENTITY": str(agent_cluster.state / "client" / "id_ed25519"),
    }
