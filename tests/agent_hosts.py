"""The simulated hosts with the node programs (`paxos-node`, `paxos-css`) runnable by their
service user, for the admin's runtime commands.

`agent_env` is the environment an admin process needs so that its agent calls reach them.
INTERIM: until `paxos install` exists (issue #9 item 4) the hosts run this checkout's code with
the system Python (the service user cannot run the venv's Python under /root), through
`PAXOS_NODE_CMD`; `paxos install` replaces this and the environment then only names the
hosts' keys.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from tests.hosts_fixture import TestCluster

ROOT = Path(__file__).resolve().parent.parent


def node_command() -> str:
    site = sysconfig.get_paths()["purelib"]  # the venv's site-packages: msgpack, yaml
    return f"env PYTHONPATH={ROOT}:{site} /usr/bin/python3 -m nodes.agent.main"


@pytest.fixture(scope="session")
def agent_cluster(test_cluster: TestCluster) -> TestCluster:
    """The session's hosts, each able to run the agent."""
    return test_cluster


@pytest.fixture
def agent_env(agent_cluster: TestCluster) -> dict[str, str]:
    return {
        "PAXOS_NODE_CMD": node_command(),
        "PAXOS_KNOWN_HOSTS": str(agent_cluster.state / "known_hosts"),
        "PAXOS_SSH_IDENTITY": str(agent_cluster.state / "client" / "id_ed25519"),
    }
