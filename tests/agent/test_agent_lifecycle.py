"""A 3-member cell started, watched, stopped and wiped through three agent homes (real
`paxos-css` processes on 127.0.0.1-3)."""

from __future__ import annotations

import os

from agent_env import daemon_pid


def test_agent_init_cell_one_leader_stop_follower_then_leader(acell):
    c = acell
    for i in range(3):
        code, doc = c.start(i, init=True)
        assert code == 0, doc
        assert doc["ok"] and doc["result"]["changed"] is True and doc["result"]["pid"] > 1
        assert doc["command"].endswith(f"start css cell0 {i} --init --cell-id {c.cell_id}")
        assert daemon_pid(c.homes[i], "cell0", i) == doc["result"]["pid"]
    leader = c.wait_one_leader()
    # starting a running member again changes nothing
    code, doc = c.start(leader)
    assert code == 0 and doc["result"]["changed"] is False
    code, doc = c.status(leader, "--check", "--long")
    assert code == 0, doc
    e = doc["result"]["members"][0]
    assert e["status"] == "running" and e["master"] is True and e["role"] == "leader"
    assert e["No."] == leader and e["address"] == f"127.0.0.{leader + 1}"
    assert e["port"] == c.base + 100
    assert sorted(e["connected"]) == [n for n in range(3) if n != leader]
    assert isinstance(e["next_sequence"], int) and e["config_version"] is not None
    assert "detail" in e and e["detail"]["start_mode"] == "init"
    # without a member number: every member with a data dir or pid file on this host
    code, doc = c.agent(leader, "status", "css", "cell0")
    assert code == 0 and [m["No."] for m in doc["result"]["members"]] == [leader]

    follower = (leader + 1) % 3
    code, doc = c.agent(follower, "stop", "css", "cell0", str(follower), "--comment", "test")
    assert code == 0, doc
    assert doc["result"]["changed"] is True and doc["result"]["killed"] is False
    nxt = doc["result"]["next_sequence"]
    assert isinstance(nxt, int) and nxt >= 1
    assert daemon_pid(c.homes[follower], "cell0", follower) is None
    # stopping it again is an idempotent no-op
    code, doc = c.agent(follower, "stop", "css", "cell0", str(follower))
    assert code == 0 and doc["result"]["changed"] is False
    assert doc["result"]["next_sequence"] == nxt
    code, doc = c.status(follower)
    e = doc["result"]["members"][0]
    assert code == 0 and e["status"] == "stopped" and e["next_sequence"] == nxt
    assert e["member_id"]
    code, doc = c.status(follower, "--check")
    assert code == 3 and doc["error"]["code"] == "not_running"
    # --init on a member with data is refused by the safety rule
    code, doc = c.start(follower, init=True)
    assert code == 4 and "data directory present" in doc["error"]["message"]

    code, doc = c.agent(leader, "stop", "css", "cell0", str(leader))
    assert code == 0 and doc["result"]["changed"] is True, doc
    # restart both from their data and stop the whole cell
    for i in (follower, leader):
        code, doc = c.start(i)
        assert code == 0 and doc["result"]["changed"] is True, doc
    c.wait_one_leader()
    for i in range(3):
        code, doc = c.agent(i, "stop", "css", "cell0", str(i), "--force")
        assert code == 0, doc

    # wipe: refused without --yes, moves the data aside, a second wipe changes nothing
    code, doc = c.agent(0, "wipe", "css", "cell0", "0")
    assert code == 2
    code, doc = c.agent(0, "wipe", "css", "cell0", "0", "--yes")
    assert code == 0 and doc["result"]["changed"] is True
    moved = doc["result"]["moved_to"]
    assert os.path.isfile(os.path.join(moved, "MEMBER"))
    assert not os.path.exists(os.path.join(c.homes[0], "data", "cell0", "0"))
    code, doc = c.agent(0, "wipe", "css", "cell0", "0", "--yes")
    assert code == 0 and doc["result"]["changed"] is False
    # no data directory: a plain start is refused, never recreated
    code, doc = c.start(0)
    assert code == 4 and "no data directory" in doc["error"]["message"]
    code, doc = c.status(0)
    assert doc["result"]["members"][0]["next_sequence"] == 0

    with open(os.path.join(c.homes[0], "log", "paxos-node.log")) as f:
        lines = f.read().splitlines()
    assert any(" start css cell0 0 --init" in ln and "exit=0" in ln for ln in lines)
    assert any("wipe css cell0 0 --yes" in ln and "changed=True" in ln for ln in lines)
    assert not any(" status css" in ln for ln in lines)  # only mutating commands are logged


def test_agent_wipe_refused_while_running(acell):
    c = acell
    code, doc = c.start(0, init=True)
    assert code == 0, doc
    code, doc = c.agent(0, "wipe", "css", "cell0", "0", "--yes")
    assert code == 4 and "running" in doc["error"]["message"]
    assert os.path.isdir(os.path.join(c.homes[0], "data", "cell0", "0"))
