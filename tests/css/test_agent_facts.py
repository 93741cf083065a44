"""What the `paxos-node` agent reads from a member (nodes.md 2.10, 4.1): `leader_since` in the
status reply, and `FAIL <code> <message>` on the readiness pipe when a start fails."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from css_cell import poll_until

from nodes.agent.daemons import spawn
from nodes.css.client import CssClient


def test_leader_since_is_the_same_election_time_on_every_member(running_cell) -> None:
    cell = running_cell
    t0 = int(time.time())

    async def go() -> None:
        async def agreed():
            sts = await cell.statuses()
            since = {st.get("leader_since") for st in sts.values()}
            return sts if len(sts) == 3 and len(since) == 1 and None not in since else None
        sts = await poll_until(agreed, what="every member reports the leader's election time")
        since = sts[0]["leader_since"]
        assert isinstance(since, int) and not isinstance(since, bool)
        started = min(st["started"] for st in sts.values())
        assert int(started) <= since <= int(time.time())
        # a new leader: a new time (whole seconds: let one pass), again the same everywhere
        while int(time.time()) <= since:
            await asyncio.sleep(0.05)
        old = await cell.wait_leader()
        cell.kill(old)
        new = await cell.wait_leader(exclude=old)
        async with CssClient(cell.addrs()) as cl:
            await cl.write("x", b"1")

        async def moved():
            sts = await cell.statuses()
            since2 = {st.get("leader_since") for st in sts.values()}
            return since2 if len(sts) == 2 and len(since2) == 1 and None not in since2 \
                and since2 != {since} else None
        (since2,) = await poll_until(moved, what="the new leader's election time")
        assert since2 > since and since2 >= t0
        assert (await cell.statuses())[new]["role"] == "leader"
    asyncio.run(go())


def _server(cell, *args: str) -> list[str]:
    return [sys.executable, "-m", "nodes.css.server", cell.name, *args, "--log", "stderr"]


def test_start_failure_prints_fail_line_on_the_readiness_pipe(cell) -> None:
    """Before: a failed start printed nothing on stdout; the agent had to scrape stderr."""
    r = subprocess.run(_server(cell, "0"), env=cell.env(), capture_output=True, timeout=20)
    assert r.returncode == 10
    line = r.stdout.decode().splitlines()[0]
    assert line.startswith("FAIL 10 ") and "use --init or --join" in line, line
    r = subprocess.run(_server(cell, "0", "--lease", "5"), env=cell.env(), capture_output=True,
                       timeout=20)
    assert r.returncode == 2 and r.stdout.decode().startswith("FAIL 2 timing: lease")
    r = subprocess.run(_server(cell, "0", "--bogus"), env=cell.env(), capture_output=True,
                       timeout=20)
    assert r.returncode == 2 and r.stdout.decode().startswith("FAIL 2 usage error")
    # exactly one readiness line, short enough for the agent's 256-byte read
    long = os.path.join(cell.home, "d" * 300)
    r = subprocess.run(_server(cell, "0", "--data", long), env=cell.env(), capture_output=True,
                       timeout=20)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 10 and len(lines) == 1 and len(lines[0]) <= 200


def test_agent_spawn_reports_the_fail_line(cell) -> None:
    env = cell.env()
    err = os.path.join(cell.home, "css-stderr.log")
    st = spawn(_server(cell, "0"), env, err, cell.home, timeout=20)
    assert not st.ok and st.exit_code == 10 and not st.timed_out
    assert "use --init or --join" in st.message and not st.message.startswith("FAIL")
    st = spawn(_server(cell, "0", "--init", "--cell-id", cell.cell_id), env, err, cell.home,
               timeout=20)
    try:
        assert st.ok and st.pid
    finally:
        if st.pid:
            os.kill(st.pid, 9)
