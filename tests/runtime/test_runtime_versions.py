"""`status css --long` names an agent whose version or build differs from the admin's (issue 9
item 4): key `agent: "differs (VERSION BUILD)"`, only then, only in the long report."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from tests.runtime.rt_hosts import yaml_docs

FAKE_VERSION = {"ok": True, "command": "version", "host": "h", "deployed": None,
                "result": {"agent": "0.0.1", "build": "0123456789ab", "css": 1,
                           "protocol": 1, "python": "3.11.2"}}


@pytest.fixture
def old_agent(rt):
    """PAXOS_NODE_CMD for an agent of another build: `version` answers 0.0.1, every other verb
    is the real agent's (the wrapper gets the real command's words first)."""
    d = tempfile.mkdtemp(prefix="paxos-old-agent-")
    os.chmod(d, 0o755)  # run by the service user on the hosts
    path = os.path.join(d, "old-agent")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nfor a; do last=$a; done\n"
                f"if [ \"$last\" = version ]; then echo '{json.dumps(FAKE_VERSION)}'; exit 0; fi\n"
                'exec "$@"\n')
    os.chmod(path, 0o755)
    yield f"{path} {rt.env['PAXOS_NODE_CMD']}"
    os.unlink(path)
    os.rmdir(d)


def test_status_long_reports_an_agent_of_another_build(rt, old_agent):
    rt.setup()
    # this build's agent: no key
    servers = rt.long()
    assert all("agent" not in s for s in servers), servers
    env = {"PAXOS_NODE_CMD": old_agent}
    p = rt("--json", "status", "css", "--long", env=env)
    (doc,) = json.loads(p.stdout)
    assert [s["status"] for s in doc["server"]] == ["stopped"] * 3, p.stderr
    assert [s["agent"] for s in doc["server"]] == ["differs (0.0.1 0123456789ab)"] * 3
    p = rt("status", "css", "--long", env=env)
    (ydoc,) = yaml_docs(p.stdout)
    assert ydoc == doc
    # the normal report stays the four keys of §4.5
    p = rt("--json", "status", "css", env=env)
    (doc,) = json.loads(p.stdout)
    assert all("agent" not in s for s in doc["server"])
