"""`start css`, `stop css`, `status css` end to end: the `paxos` console script, real sshd hosts,
the agent run by the service user over SSH, real `paxos-css` processes (admin.md §6.3, §7 A5)."""

from __future__ import annotations

import json
import os
import signal
import stat

import yaml

from tests.runtime.rt_hosts import CELL, yaml_docs


def test_walkthrough_start_status_stop(rt):
    rt.setup()
    # the secret: made by the first deploy, 0600, on the three member hosts only, not in the log
    local_key = (rt.home / "etc/cell/css0.key").read_bytes()
    assert len(local_key) == 32
    for h in rt.members:
        path = h.home / "etc/cell/css0.key"
        assert path.read_bytes() == local_key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for h in rt.hosts[3:]:
        assert not (h.home / "etc/cell/css0.key").exists()
    deployed = json.loads(rt.ok("--json", "status", "deploy"))
    assert [(d["status"], "stale" in d) for d in deployed] == [("current", False)] * 5

    assert rt("status", "css", "-s").stdout == "css0: stopped\n"
    p = rt("start", "css", "--name", CELL)  # A5: initializes the new cell
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    servers = rt.wait_one_leader()

    # every mode, exit 0 with every member running
    normal = rt("status", "css")
    assert normal.returncode == 0
    (doc,) = yaml_docs(normal.stdout)
    assert doc == {"name": CELL, "server": [
        {"No.": i, "address": h.addr, "status": "running", "port": rt.port}
        for i, h in enumerate(rt.members)]}
    assert rt("status", "css", "-s").stdout == "css0: running\n"
    q = rt("status", "css", "-q")
    assert (q.returncode, q.stdout) == (0, "")
    assert json.loads(rt.ok("-o", "json", "status", "css", "-s")) == {CELL: "running"}
    long_yaml = rt("status", "css", "--long")
    assert long_yaml.returncode == 0
    (ldoc,) = yaml_docs(long_yaml.stdout)
    assert json.loads(rt.ok("status", "css", "--long", "--json")) == [ldoc]
    servers = ldoc["server"]
    assert sum(s["master"] is True for s in servers) == 1
    for i, s in enumerate(servers):
        assert list(s) == ["No.", "address", "status", "port", "master", "birth",
                           "next_sequence", "connected", "pid", "client_list"]
        assert s["No."] == i and s["status"] == "running"
        for key in ("port", "birth", "next_sequence", "pid"):
            assert type(s[key]) is int, (key, s)
        assert s["pid"] == rt.pid(i)
        assert i not in s["connected"] and s["connected"] == sorted(s["connected"])
        assert s["client_list"] == []
    assert "client_list: []" in long_yaml.stdout

    # starting a running cell is a no-op
    p = rt("start", "css")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")

    # one member stopped (through its agent, as the service user): its next sequence is shown
    rt.write(5)
    follower = next(s["No."] for s in servers if not s["master"])
    from paxoslog.app.deploy import spec_of
    from paxoslog.core.model import Host
    from paxoslog.remote.agentcall import Agents
    from paxoslog.remote.sshpool import SSHSession

    old = {k: os.environ.get(k) for k in ("PAXOS_NODE_CMD", "PAXOS_KNOWN_HOSTS",
                                          "PAXOS_SSH_IDENTITY")}
    os.environ.update({k: rt.env[k] for k in old})
    try:
        with SSHSession() as ssh:
            reply = Agents(str(rt.home), ssh, spec_of).call(
                Host(rt.members[follower].addr, "paxos"),
                ["stop", "css", CELL, str(follower)], timeout=60)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert reply.ok, reply
    st = rt("status", "css", "--long")
    assert st.returncode == 1
    stopped = yaml_docs(st.stdout)[0]["server"][follower]
    assert list(stopped) == ["No.", "address", "status", "port", "next_sequence"]
    assert stopped["status"] == "stopped" and type(stopped["next_sequence"]) is int
    assert stopped["next_sequence"] > 5
    first = "stopped" if follower == 0 else "running"
    second = "running" if follower == 0 else "stopped"
    assert rt("status", "css", "-s").stdout == f"css0: [{first}, {second}]\n"

    # start css starts only the stopped one; stopping a stopped member later is silent
    p = rt("start", "css")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    rt.wait_one_leader()
    p = rt("stop", "css")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    assert rt("status", "css", "-s").stdout == "css0: stopped\n"
    assert all(rt.pid(i) is None for i in range(3))
    p = rt("stop", "css", "-n", CELL)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    # a restart of the whole cell resumes from its own state
    assert rt("start", "css").returncode == 0
    rt.wait_one_leader()
    rt.write(1, prefix="again")


def test_kill_leader_then_start_catches_up(rt):
    rt.setup()
    assert rt("start", "css").returncode == 0
    servers = rt.wait_one_leader()
    rt.write(3)
    leader = next(s for s in servers if s["master"])
    os.kill(leader["pid"], signal.SIGKILL)

    def down_and_new_leader(ss: list[dict]) -> bool:
        me = ss[leader["No."]]
        others = [s for s in ss if s["No."] != leader["No."]]
        return me["status"] == "stopped" and me["next_sequence"] is None and \
            sum(s["status"] == "running" and s["master"] for s in others) == 1
    ss = rt.wait(down_and_new_leader, "killed leader not reported down with a new leader")
    assert list(ss[leader["No."]]) == ["No.", "address", "status", "port", "next_sequence"]
    rt.write(20, prefix="during")  # the cell goes on without it
    assert rt("status", "css", "-q").returncode == 1

    p = rt("start", "css")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr

    def caught_up(ss: list[dict]) -> bool:
        return all(s["status"] == "running" for s in ss) and \
            len({s["next_sequence"] for s in ss}) == 1
    ss = rt.wait(caught_up, "restarted member did not catch up")
    assert sum(s["master"] for s in ss) == 1


def test_stop_refused_while_a_session_is_open(rt):
    rt.setup()
    assert rt("start", "css").returncode == 0
    rt.wait_one_leader()
    import asyncio
    import threading

    from nodes.css.client import CssClient

    opened, done = threading.Event(), threading.Event()

    async def hold() -> None:
        c = CssClient([(h.addr, rt.port) for h in rt.members], session_timeout_ms=10000)
        await c.open()
        opened.set()
        while not done.is_set():
            await asyncio.sleep(0.1)
        await c.close()

    t = threading.Thread(target=lambda: asyncio.run(hold()), daemon=True)
    t.start()
    try:
        assert opened.wait(30)
        rt.wait(lambda ss: any(s.get("client_list") for s in ss), "session not listed")
        p = rt("stop", "css")
        assert (p.returncode, p.stdout, p.stderr) == (1, "", "this css is in use.\n")
        assert all(rt.pid(i) is not None for i in range(3))
        # and unregister css / undo refuse while it runs, wherever it runs
        p = rt("unregister", "css", "--name", CELL)
        assert (p.returncode, p.stderr) == (1, "this css is running.\n")
    finally:
        done.set()
        t.join(30)
    p = rt("stop", "css")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    assert rt("status", "css", "-s").stdout == "css0: stopped\n"
    assert rt("unregister", "css", "--name", CELL).returncode == 0


def test_undo_of_register_css_refused_while_running(rt):
    rt.setup()
    assert rt("start", "css").returncode == 0
    p = rt("revert", "0")
    assert (p.returncode, p.stderr) == (1, "this css is running.\n")
    # --initialize refuses while any member runs; once stopped it starts afresh, the old
    # data moved aside (never deleted)
    rt.wait_one_leader()
    rt.write(10)
    p = rt("start", "css", "--initialize")
    assert (p.returncode, p.stdout, p.stderr) == (1, "", "exist server running\n")
    assert rt("stop", "css").returncode == 0
    before = rt.long()
    p = rt("start", "css", "--initialize")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    after = rt.wait_one_leader()
    for i, h in enumerate(rt.members):
        assert [d.name.split("-")[0] for d in (h.home / "data" / CELL).iterdir()
                if d.name != str(i)] == [f"{i}.wiped"]
        assert after[i]["next_sequence"] < before[i]["next_sequence"]
    assert rt("stop", "css").returncode == 0
    p = rt("revert", "0")
    assert p.returncode == 0, p.stderr
    # the secret of a cell HEAD no longer renders is kept (an operator may register it again)
    assert len((rt.home / "etc/cell/css0.key").read_bytes()) == 32
    assert not (rt.home / "etc/cell/css0.conf").exists()


def test_bad_input_and_host_failures(rt):
    rt.setup()
    for verb in ("start", "stop", "status"):
        p = rt(verb, "css", "--name", "nosuch")
        assert (p.returncode, p.stdout, p.stderr) == (1, "", "not found: nosuch\n")

    # an agent that is not installed: every member is `error`, named in the reason
    missing = {"PAXOS_NODE_CMD": "/nonexistent/bin/paxos-node"}
    p = rt("status", "css", "--long", env=missing)
    assert p.returncode == 1
    for h, s in zip(rt.members, yaml_docs(p.stdout)[0]["server"], strict=True):
        assert (s["status"], s["reason"]) == ("error", f"paxos-node not found on {h.addr}")
    assert yaml.safe_load(rt("status", "css", "-s", env=missing).stdout) == {CELL: "error"}
    p = rt("start", "css", env=missing)
    assert p.returncode == 1
    for h in rt.members:
        assert f"ERROR: {h.addr}: start operation to this host was not accepted " \
               f"(paxos-node not found on {h.addr})\n" in p.stderr
    assert all(rt.pid(i) is None for i in range(3))

    # a corrupt cell file on one host: the spec's "not deployed" line, the others start
    assert rt("start", "css").returncode == 0
    rt.wait_one_leader()
    assert rt("stop", "css").returncode == 0
    bad = rt.members[2]
    (bad.home / "etc/cell/css0.conf").write_text("0 garbage\n")
    p = rt("status", "css", "--long")
    s2 = yaml_docs(p.stdout)[0]["server"][2]
    assert s2["status"] == "error" and "css0.conf" in s2["reason"], s2
    p = rt("start", "css")
    assert p.returncode == 1
    assert f"ERROR: configuration file to {bad.addr} has not been deployed (" in p.stderr
    assert "css0.conf:1" in p.stderr
    rt.wait(lambda ss: sum(s.get("master") is True for s in ss) == 1, "no leader of two")
    out = rt.ok("deploy")  # repaired by a deploy (its per-host lines: only that host changed)
    assert f"{bad.addr}: changed\n" in out and out.count(": changed\n") == 1, out
    p = rt("start", "css")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    rt.wait_one_leader()

    # a host that dies mid-command: its member is `error`, the others are still reported
    rt.cluster.kill(bad.addr)
    p = rt("status", "css", "--long")
    assert p.returncode == 1
    ss = yaml_docs(p.stdout)[0]["server"]
    assert [s["status"] for s in ss[:2]] == ["running", "running"]
    assert ss[2]["status"] == "error" and ss[2]["reason"], ss
    p = rt("stop", "css")
    assert p.returncode == 1
    assert f"WARNING: {bad.addr}: stop operation to this host was not accepted. (" in p.stderr
    assert rt.pid(0) is None and rt.pid(1) is None
