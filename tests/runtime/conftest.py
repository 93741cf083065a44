"""The runtime tests' cell: css0 on the session's last five hosts (three members, two others),
with the agent the session installed there; every daemon stopped afterwards."""

from __future__ import annotations

import pytest

from tests.runtime.rt_hosts import RtCell


@pytest.fixture
def rt(cluster, agent_env, tmp_path):
    if len(cluster.hosts) < 5:
        pytest.fail("the runtime tests need 5 hosts (PAXOS_TEST_HOSTS >= 5)")
    c = RtCell(cluster, tmp_path / "home", cluster.hosts[-5:], agent_env)
    try:
        yield c
    finally:
        c.close()
