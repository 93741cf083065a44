"""The replace tests' site: css0 running on three of the session's hosts (started through the
agent), three more hosts registered for the new member; stopped and revived afterwards."""

from __future__ import annotations

import pytest

from tests.replace.replace_site import ReplaceSite


@pytest.fixture
def site(agent_cluster, agent_env, tmp_path, monkeypatch):
    for k, v in agent_env.items():  # the in-process agent calls of the site and driver
        monkeypatch.setenv(k, v)
    s = ReplaceSite(agent_cluster, tmp_path, agent_env)
    try:
        s.start_members()
        s.wait(lambda: s.leader({i: h.addr for i, h in enumerate(s.members)}) is not None,
               what="a leader")
        yield s
    finally:
        s.close()
        agent_cluster.revive_killed()
