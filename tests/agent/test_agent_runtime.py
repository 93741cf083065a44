"""Daemon handling of the agent with real `paxos-css` processes: readiness failures reported
synchronously, two agents racing for one member, stop timeouts and --force, the quorum rule."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

from agent_env import daemon_pid, spawn_agent


def test_agent_port_in_use_fails_synchronously(acell):
    c = acell
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", c.base + 100))
    s.listen()
    try:
        code, doc = c.start(0, init=True)
        assert code == 1, doc
        msg = doc["error"]["message"]
        assert "did not start" in msg and "cannot bind" in msg, msg
        assert daemon_pid(c.homes[0], "cell0", 0) is None
        # the half-made data directory was moved aside, so a retry is possible
        assert not os.path.exists(os.path.join(c.homes[0], "data", "cell0", "0"))
        assert "failed-init" in msg
    finally:
        s.close()
    code, doc = c.start(0, init=True)
    assert code == 0 and doc["result"]["changed"] is True, doc
    # a member waiting for its genesis peers still stops cleanly
    code, doc = c.agent(0, "stop", "css", "cell0", "0", "--timeout", "20")
    assert code == 0 and doc["result"]["changed"] is True, doc


def test_agent_two_agents_start_the_same_member(acell):
    c = acell
    args = ("start", "css", "cell0", "0", "--init", "--cell-id", c.cell_id)
    procs = [spawn_agent(c.homes[0], *args) for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert b"Traceback" not in err
        outs.append((p.returncode, json.loads(out)))
    changed = [d for code, d in outs if code == 0 and d["result"]["changed"]]
    assert len(changed) == 1, outs
    other = [(code, d) for code, d in outs if d is not changed[0]][0]
    # the loser either found the lock held (exit 7) or came after: then nothing changed
    assert other[0] == 7 or (other[0] == 0 and other[1]["result"]["changed"] is False), outs
    if other[0] == 7:
        assert other[1]["error"]["code"] == "locked"
    assert daemon_pid(c.homes[0], "cell0", 0) == changed[0]["result"]["pid"]


def test_agent_stop_timeout_then_force_kills(acell):
    c = acell
    code, doc = c.start(0, init=True)
    assert code == 0, doc
    pid = doc["result"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # a hung daemon: holds its lock, answers nothing
    code, doc = c.agent(0, "stop", "css", "cell0", "0", "--timeout", "1")
    assert code == 5, doc  # no answer on the control socket within the timeout
    assert "does not answer" in doc["error"]["message"] and "--force" in doc["error"]["message"]
    assert daemon_pid(c.homes[0], "cell0", 0) == pid
    code, doc = c.agent(0, "stop", "css", "cell0", "0", "--force", "--timeout", "1")
    assert code == 0, doc
    assert doc["result"]["killed"] is True and doc["result"]["forced"] is True
    assert daemon_pid(c.homes[0], "cell0", 0) is None
    # killed: no SHUTDOWN marker, so the next sequence is unknown (crashed)
    assert doc["result"]["next_sequence"] is None


SESSION = textwrap.dedent("""
    import asyncio, sys
    from nodes.css.client import CssClient
    async def main():
        c = CssClient([tuple(a) for a in eval(sys.argv[1])], session_timeout_ms=10000)
        await c.open()
        print("OPEN", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await c.close()
    asyncio.run(main())
""")


def test_agent_stop_refused_below_quorum_with_sessions(acell):
    c = acell
    for i in range(3):
        code, doc = c.start(i, init=True)
        assert code == 0, doc
    leader = c.wait_one_leader()
    addrs = [(f"127.0.0.{i + 1}", c.base + 100) for i in range(3)]
    p = subprocess.Popen([sys.executable, "-c", SESSION, repr(addrs)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == b"OPEN"
        follower = (leader + 1) % 3
        code, doc = c.agent(follower, "stop", "css", "cell0", str(follower))
        assert code == 0 and doc["result"]["changed"] is True, doc
        deadline = time.monotonic() + 20
        while True:  # the leader counts the stopped member as connected for a while
            code, doc = c.status(leader)
            e = doc["result"]["members"][0]
            if follower not in e["connected"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert follower not in e["connected"] and len(e["client_list"]) == 1, e
        # two of three left and a session open: stopping either is refused ...
        code, doc = c.agent(leader, "stop", "css", "cell0", str(leader))
        assert code == 4 and "below quorum" in doc["error"]["message"], doc
        assert daemon_pid(c.homes[leader], "cell0", leader) is not None
        # ... unless forced
        code, doc = c.agent(leader, "stop", "css", "cell0", str(leader), "--force")
        assert code == 0 and doc["result"]["changed"] is True, doc
    finally:
        p.stdin.close()
        p.kill()
        p.wait(10)
