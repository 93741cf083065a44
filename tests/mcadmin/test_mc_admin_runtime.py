"""`start|stop|status memcache` end to end (admin.md §3.7, §4.6, §6.4): the admin's own agent,
a real CSS cell on 127.0.0.1-3, real memcached, real proxies and a plain memcached client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

from tests.mcadmin.mcadmin_world import docs, free_port, talk, wait_serving


def test_start_status_stop_in_every_output_mode(world):
    mc = world.memcached()
    c0, c1 = free_port(), free_port()
    world.register(0, (c0, mc.port))
    world.register(1, (c1, mc.port))
    world.px.ok("modify", "memcache", "--id", "1", "--worker", "3")
    world.register(2)  # never started
    for mid in ("0", "1"):
        r = world.px("start", "memcache", "--id", mid)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")

    r = world.px("status", "memcache")
    assert r.returncode == 1, r.stderr  # 2 is stopped
    assert r.stdout == f"""\
---
status: running
id: 0
css: cell0
name space: space0
pair:
    - ["127.0.0.1", {c0}, "127.0.0.1", {mc.port}]
---
status: running
id: 1
css: cell0
worker: 3
name space: space0
pair:
    - ["127.0.0.1", {c1}, "127.0.0.1", {mc.port}]
---
status: stopped
id: 2
"""
    j = world.px("--json", "status", "memcache")
    assert j.returncode == 1
    assert json.loads(j.stdout) == docs(r.stdout)
    assert world.px("status", "memcache", "--json").stdout == j.stdout  # after the object too

    s = world.px("status", "memcache", "--short")
    assert (s.returncode, s.stdout) == (1, "0: running\n1: running\n2: stopped\n")
    assert docs(s.stdout) == [{0: "running", 1: "running", 2: "stopped"}]
    s = world.px("-o", "json", "status", "memcache", "-s")
    assert json.loads(s.stdout) == {"0": "running", "1": "running", "2": "stopped"}
    assert (world.px("status", "memcache", "-s", "-i", "0").returncode) == 0
    q = world.px("status", "memcache", "--quiet")
    assert (q.returncode, q.stdout, q.stderr) == (1, "", "")
    q = world.px("status", "memcache", "-q", "--id", "1")
    assert (q.returncode, q.stdout, q.stderr) == (0, "", "")
    # filters: -c and -N select (the original ignored -N)
    assert world.px("status", "memcache", "-s", "-N", "space0", "-i", "1").stdout == "1: running\n"
    assert world.px("status", "memcache", "-s", "-N", "other").stdout == ""
    assert world.px("status", "memcache", "-s", "-c", "nocell").returncode == 1

    # a plain memcached client through the proxy
    wait_serving(c0)
    assert talk(c0, b"set k 0 0 1\r\nv\r\nget k\r\n", b"END\r\n") == \
        b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
    # starting a running instance again changes nothing and adds no pair twice
    r = world.px("start", "memcache")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr  # 0 and 1 run; 2 starts (no pairs)

    # the registry sees the proxies the agent started (same pid files, same PAXOS_HOME)
    r = world.px("unregister", "memcache", "--id", "0")
    assert (r.returncode, r.stderr) == (1, "this memcache is running.\n")

    r = world.px("stop", "memcache")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    s = world.px("status", "memcache", "-s")
    assert (s.returncode, s.stdout) == (1, "0: stopped\n1: stopped\n2: stopped\n")
    assert world.px("status", "memcache").stdout == \
        "---\nstatus: stopped\nid: 0\n---\nstatus: stopped\nid: 1\n---\nstatus: stopped\nid: 2\n"
    r = world.px("stop", "memcache", "-i", "0")  # stopping a stopped instance: silent, 0
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert world.pid(0) is None


def test_unknown_id(world):
    world.register(0)
    r = world.px("status", "memcache", "--id", "9")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")
    for verb, obj in (("start", "memcache"), ("stop", "memcache"), ("apply", "pair")):
        r = world.px(verb, obj, "-i", "9")
        assert (r.returncode, r.stdout, r.stderr) == (1, "", "not found: 9\n"), (verb, r)
    assert world.pid(0) is None  # nothing was started for the others


def test_status_with_nothing_registered(world):
    r = world.px("status", "memcache", "-s")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")
    r = world.px("status", "memcache", "--json")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")


def test_pair_port_in_use_warns_and_exits_1(world):
    mc = world.memcached()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    world.register(0, (port, mc.port))
    try:
        r = world.px("start", "memcache")
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == "WARNING: not be able to add a pair (id=0)\n"
        # the proxy runs, without the pair it could not bind
        assert world.px("status", "memcache").stdout == \
            "---\nstatus: running\nid: 0\ncss: cell0\nname space: space0\npair:\n"
    finally:
        busy.close()
    r = world.px("apply", "pair")  # the port is free now: the pair is added
    assert (r.returncode, r.stderr) == (0, "")
    wait_serving(port)


def test_proxy_that_cannot_start_is_tried_three_times_and_no_pair_is_added(world):
    mc = world.memcached()
    world.register(0, (free_port(), mc.port))
    world.px.env["PAXOS_NODE_MEMCACHE_ARGS"] = "--workers 0"  # the proxy refuses to start
    r = world.px("start", "memcache")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "WARNING: failed to start PAXOS memcache\n" * 3
    assert world.px("status", "memcache", "-s").stdout == "0: stopped\n"


def test_stop_of_a_hung_proxy_needs_force(world):
    mc = world.memcached()
    world.register(0, (free_port(), mc.port))
    assert world.px("start", "memcache").returncode == 0
    pid = world.pid(0)
    assert pid
    os.kill(pid, signal.SIGSTOP)  # alive, holding its pid file, but answering nothing
    r = world.px("stop", "memcache")
    assert (r.returncode, r.stdout) == (1, "")
    lines = r.stderr.splitlines()
    assert lines[0].startswith("ERROR: timeout: ") and len(lines) == 2, r.stderr
    assert lines[1] == "WARNING: failed to stop PAXOS memcache"
    assert world.pid(0) == pid  # still there
    r = world.px("stop", "memcache", "--force")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert world.pid(0) is None
    assert world.px("status", "memcache", "-s").stdout == "0: stopped\n"


def test_status_of_a_proxy_with_garbled_pairs_warns(world):
    world.register(0)
    hostile = subprocess.Popen(
        [sys.executable, "-m", "tests.mcadmin.mc_hostile_proxy", str(world.admin / "run"), "0"],
        stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert hostile.stdout.readline().startswith(b"READY")
        r = world.px("status", "memcache")
        assert (r.returncode, r.stdout) == (0, "---\nstatus: running\nid: 0\n")
        assert r.stderr == "WARNING: state of 'pair' can not be obtained (id=0)\n"
        j = world.px("--json", "status", "memcache")
        assert json.loads(j.stdout) == [{"status": "running", "id": 0}]
    finally:
        hostile.kill()
        hostile.wait(10)
        hostile.stdout.close()
