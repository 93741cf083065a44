"""`paxos-node start|stop|status memcache` and `apply pair` (nodes.md §4, §4.1): one JSON
document, the exit codes of §4.1, hostile `~/etc` refused with exit 6."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.mcadmin.mcadmin_world import PROXY_ARGS, free_port, wait_serving


def agent(home, *args: str, **env: str) -> tuple[int, dict]:
    e = {**os.environ, "PAXOS_NODE_MEMCACHE_ARGS": PROXY_ARGS, **env}
    p = subprocess.run([sys.executable, "-m", "nodes.agent.main", "--home", str(home), *args],
                       env=e, capture_output=True, timeout=90)
    out = p.stdout.decode()
    assert out.count("\n") == 1, (out, p.stderr)
    assert "Traceback" not in p.stderr.decode()
    return p.returncode, json.loads(out)


def test_agent_memcache_lifecycle_documents(world):
    mc = world.memcached()
    port = free_port()
    world.register(0, (port, mc.port))
    home = world.admin
    code, doc = agent(home, "status", "memcache", "0", "--check")
    assert code == 3 and doc["ok"] is False and doc["error"]["code"] == "not_running"
    code, doc = agent(home, "start", "memcache", "0")
    assert code == 0, doc
    res = doc["result"]
    assert res["changed"] is True and isinstance(res["pid"], int) and res["failed"] == []
    assert res["css"] in ("connected", "waiting")
    assert res["added"] == [{"op": "add", "client": f"127.0.0.1:{port}",
                             "server": f"127.0.0.1:{mc.port}"}]
    wait_serving(port)
    code, doc = agent(home, "start", "memcache", "0")
    assert (code, doc["result"]["changed"]) == (0, False)
    code, doc = agent(home, "status", "memcache", "0", "--check")
    assert code == 0
    (entry,) = doc["result"]["memcaches"]
    assert entry["status"] == "running" and entry["css"] == "cell0"
    assert entry["name_space"] == "space0" and entry["pid"] == res["pid"]
    assert entry["options"]["worker"] == 5 and entry["options"]["checksum"] is True
    assert [(p["client"], p["server"]) for p in entry["pairs"]] == \
        [(f"127.0.0.1:{port}", f"127.0.0.1:{mc.port}")]
    code, doc = agent(home, "status", "memcache", "5", "0")  # only these, ascending
    assert code == 0 and [(e["id"], e["status"]) for e in doc["result"]["memcaches"]] == \
        [(0, "running"), (5, "stopped")]
    code, doc = agent(home, "apply", "pair", "0")
    assert code == 0 and doc["result"]["added"] == doc["result"]["removed"] == []
    code, doc = agent(home, "stop", "memcache", "0")
    assert code == 0 and doc["result"]["changed"] is True and doc["result"]["killed"] is False
    code, doc = agent(home, "stop", "memcache", "0")
    assert (code, doc["result"]["changed"]) == (0, False)
    code, doc = agent(home, "status", "memcache")  # every registered id
    assert code == 0 and doc["result"]["memcaches"] == [{"id": 0, "status": "stopped",
                                                         "pid": None}]
    with open(os.path.join(home, "log", "paxos-node.log")) as f:
        logged = f.read()
    assert "start memcache 0" in logged and "apply pair 0" in logged


def test_agent_memcache_refusals(world):
    world.register(0)
    home = world.admin
    for args in (["start", "memcache", "x"], ["stop", "memcache", "-1"],
                 ["apply", "pair"], ["status", "memcache", "9223372036854775807"]):
        code, doc = agent(home, *args)
        assert code == 2 and doc["error"]["code"] == "usage", args
    code, doc = agent(home, "status", "memcache", "9223372036854775806")  # the top id
    assert code == 0 and doc["result"]["memcaches"][0]["status"] == "stopped"
    code, doc = agent(home, "start", "memcache", "7")
    assert code == 6 and "no memcache with id 7" in doc["error"]["message"]
    code, doc = agent(home, "start", "memcache", "0", PAXOS_NODE_MEMCACHE_ARGS="--x ;rm")
    assert code == 2 and "PAXOS_NODE_MEMCACHE_ARGS" in doc["error"]["message"]
    # a symlinked configuration file is not followed
    conf = os.path.join(home, "etc", "paxos_memcache.conf")
    os.rename(conf, conf + ".real")
    os.symlink(conf + ".real", conf)
    try:
        code, doc = agent(home, "start", "memcache", "0")
        assert code == 6 and "not a regular" in doc["error"]["message"]
    finally:
        os.unlink(conf)
        os.rename(conf + ".real", conf)
    # a stale pid file (no lock held) is a stopped proxy, removed by the next start
    os.makedirs(os.path.join(home, "run"), mode=0o700, exist_ok=True)
    with open(os.path.join(home, "run", "paxos-memcache-0.pid"), "w") as f:
        f.write("4000000\n")
    code, doc = agent(home, "status", "memcache", "0")
    assert code == 0 and doc["result"]["memcaches"][0]["status"] == "stopped"
    code, doc = agent(home, "start", "memcache", "0")
    assert code == 0 and doc["result"]["changed"] is True
    assert world.pid(0) == doc["result"]["pid"]


def test_agent_starts_a_proxy_whose_name_space_looks_like_an_option(world):
    world.px.ok("register", "memcache", "--css", "cell0", "--id", "3", "--name-space=-dash")
    code, doc = agent(world.admin, "start", "memcache", "3")
    assert code == 0, doc
    code, doc = agent(world.admin, "status", "memcache", "3")
    assert doc["result"]["memcaches"][0]["name_space"] == "-dash"
