"""The replace steps of spec nodes.md §4.2 through the agent, on real members: a member moved
to a fourth host (127.0.0.4), and a join aborted before promote."""

from __future__ import annotations

import os

from agent_env import daemon_pid


def _init(c) -> int:
    for i in range(3):
        code, doc = c.start(i, init=True)
        assert code == 0, doc
    return c.wait_one_leader()


def _step(c, home: int, no: int, step: str, *extra: str):
    return c.agent(home, "replace", "css", "cell0", str(no), "--step", step, *extra)


def test_agent_replace_member_to_a_new_host(acell):
    c = acell
    leader = _init(c)
    old = (leader + 1) % 3
    survivor = (leader + 2) % 3
    code, doc = _step(c, survivor, old, "check")
    assert code == 0, doc
    version = doc["result"]["config_version"]
    assert doc["result"]["leader"] == leader and sorted(doc["result"]["survivors"]) == \
        sorted([leader, survivor])
    old_id = doc["result"]["replaced_member_id"]
    # the steps refuse out of order: nothing to promote yet, the old member still votes
    code, doc = _step(c, 3, old, "promote")
    assert code == 4, doc
    code, doc = _step(c, old, old, "retire")
    assert code == 4 and "still a voter" in doc["error"]["message"], doc
    c.write_join_conf(3, old, "127.0.0.4")
    code, doc = _step(c, 3, old, "join", "--timeout", "60")
    assert code == 0 and doc["result"]["changed"] is True and doc["result"]["caught_up"], doc
    new_id = doc["result"]["member_id"]
    assert new_id and new_id != old_id
    assert doc["result"]["config_version"] == version + 1  # the learner's admission
    version = doc["result"]["config_version"]
    code, doc = _step(c, 3, old, "join", "--timeout", "60")  # repeated: progress only
    assert code == 0 and doc["result"]["changed"] is False, doc
    code, doc = _step(c, survivor, old, "check")
    assert code == 4 and "pending" in doc["error"]["message"], doc
    code, doc = _step(c, 3, old, "promote", "--expect-cfg", str(version), "--timeout", "60")
    assert code == 0, doc
    assert doc["result"]["config_version"] > version
    code, doc = _step(c, old, old, "retire", "--timeout", "20")
    assert code == 0 and doc["result"]["member_id"] == old_id, doc
    assert doc["result"]["moved_to"].endswith(f"/data/cell0/{old}.retired-{old_id}")
    assert daemon_pid(c.homes[old], "cell0", old) is None
    code, doc = _step(c, old, old, "retire")
    assert code == 0 and doc["result"]["changed"] is False
    where = {leader: leader, survivor: survivor, old: 3}
    c.wait_one_leader(where=where)
    code, doc = c.agent(3, "status", "css", "cell0", str(old))
    e = doc["result"]["members"][0]
    assert e["status"] == "running" and e["member_id"] == new_id
    assert e["role"] in ("leader", "follower")
    code, doc = _step(c, leader, old, "check")
    assert code == 0 and doc["result"]["replaced_member_id"] == new_id, doc


def test_agent_replace_abort_before_promote(acell):
    c = acell
    leader = _init(c)
    old = (leader + 1) % 3
    code, doc = _step(c, leader, old, "check")
    assert code == 0, doc
    c.write_join_conf(3, old, "127.0.0.4")
    code, doc = _step(c, 3, old, "join", "--timeout", "60")
    assert code == 0, doc
    new_id = doc["result"]["member_id"]
    code, doc = _step(c, 3, old, "abort")
    assert code == 0, doc
    r = doc["result"]
    assert r["removed"] is True and r["stopped"] in (True, False) and r["member_id"] == new_id
    assert r["moved_to"].endswith(f"/data/cell0/{old}.retired-{new_id}")
    assert daemon_pid(c.homes[3], "cell0", old) is None
    assert not os.path.exists(os.path.join(c.homes[3], "data", "cell0", str(old)))
    code, doc = _step(c, 3, old, "abort")
    assert code == 0 and doc["result"]["changed"] is False
    # the cell is as before: same voters, no learner, the old member still leads or follows
    code, doc = _step(c, leader, old, "check")
    assert code == 0 and doc["result"]["replaced_connected"] is True, doc
    c.wait_one_leader()
