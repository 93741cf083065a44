#!/usr/bin/env python3
"""Runtime benchmark (issue 9): `paxos status css` and failover as seen through the admin.

  status     `paxos status css` on a 3-member remote cell      vs `parallel-ssh` running `true`
             on the same three hosts, same run                  target ratio <= 1.5
  failover   kill -9 the leader; seconds until `paxos status css` reports another leader, and
             until a client write is acknowledged              (beside bench_css.py's figure)

Usage: scripts/bench/bench_runtime.py [--runs 9] [--kills 3]
Three simulated hosts (scripts/testhosts) are started for the run and torn down after; the node
programs get onto them the way an operator puts them there: `paxos install` (a venv in the
service user's home, `~/bin/paxos-node` on its login PATH; the admin runs the agent as
`bash -lc 'paxos-node ...'`, admin.md §6.1). Both commands are timed interleaved, run by run,
so a change in the machine's load hits both alike; times are medians of --runs runs after one
warm-up each; the load average before and after is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchhosts import simulated_hosts  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PAXOS = str(Path(sys.executable).with_name("paxos"))
CELL = "css0"


def free_port(addrs: list[str]) -> int:
    for _ in range(200):
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 20000
        try:
            for addr in addrs:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind((addr, port))
        except OSError:
            continue
        return port
    raise SystemExit("no free port")


def run(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([PAXOS, *args], env=env, capture_output=True, text=True, timeout=180)
    if check and p.returncode != 0:
        raise SystemExit(f"paxos {' '.join(args)} failed: {p.stderr}")
    return p


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {p.stdout}{p.stderr}")
    return took


def interleaved(cmds: list[list[str]], env: dict, runs: int) -> tuple[list[float], list[list[float]]]:
    """Each command once per round (one warm-up round first): (median per command, all times)."""
    times: list[list[float]] = [[] for _ in cmds]
    for i in range(runs + 1):
        for k, cmd in enumerate(cmds):
            took = wall(cmd, env)
            if i:
                times[k].append(took)
    return [statistics.median(t) for t in times], times


def long_status(env: dict) -> list[dict]:
    p = run(env, "--json", "status", "css", "--long", check=False)
    return json.loads(p.stdout)[0]["server"]


def wait(env: dict, pred, what: str, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ss = long_status(env)
        if pred(ss):
            return ss
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def one_leader(ss: list[dict]) -> bool:
    return all(s["status"] == "running" for s in ss) and sum(s["master"] for s in ss) == 1


async def write_once(addrs: list[tuple[str, int]], key: str, deadline: float) -> None:
    """Retry one write with fresh sessions until it is acknowledged."""
    from nodes.css.client import CssClient

    while True:
        c = CssClient(addrs, session_timeout_ms=10000)
        try:
            await asyncio.wait_for(c.open(), 5)
            await asyncio.wait_for(c.write(key, b"v"), 5)
            await c.close()
            await c.aclose()
            return
        except Exception:  # any failure during failover: retry until the deadline
            await c.aclose()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--kills", type=int, default=3)
    a = p.parse_args()
    before = os.getloadavg()
    with simulated_hosts(3, "bench-runtime-") as (tmp, info):
        addrs = [h["addr"] for h in info["hosts"]]
        home = tmp / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAXOS_")}
        env.update(PAXOS_HOME=str(home), HOME=str(home), LANG="C",
                   PAXOS_AUTHOR="bench <bench@example.invalid>",
                   PAXOS_KNOWN_HOSTS=info["known_hosts"], PAXOS_SSH_IDENTITY=info["client_key"])
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        port = free_port(addrs)
        for x in addrs:
            run(env, "register", "host", "--user", "paxos", x)
        run(env, "install")
        run(env, "register", "css", "--name", CELL,
            *[f"{x}:{port}" for x in addrs for _ in (0, 1)])
        run(env, "deploy")
        try:
            run(env, "start", "css")
            wait(env, one_leader, "a leader")
            hostfile = tmp / "pssh_hosts"
            hostfile.write_text("".join(f"paxos@{x}\n" for x in addrs))
            pssh_cmd = ["parallel-ssh", "-h", str(hostfile), "-p", "32", "-t", "60",
                        "-O", f"IdentityFile={info['client_key']}",
                        "-O", f"UserKnownHostsFile={info['known_hosts']}",
                        "-O", "StrictHostKeyChecking=yes", "-O", "BatchMode=yes",
                        "-O", "IdentitiesOnly=yes", "true"]
            (ours, pssh), times = interleaved([[PAXOS, "status", "css"], pssh_cmd], env, a.runs)
            ratios = sorted(o / p for o, p in zip(*times, strict=True))
            seen, acked = [], []
            members = [(x, port) for x in addrs]
            for k in range(a.kills):
                ss = wait(env, one_leader, "a leader")
                leader = next(s for s in ss if s["master"])
                t0 = time.monotonic()
                os.kill(leader["pid"], signal.SIGKILL)
                wait(env, lambda ss, n=leader["No."]: any(
                    s.get("master") and s["No."] != n for s in ss), "a new leader")
                seen.append(time.monotonic() - t0)
                asyncio.run(write_once(members, f"bench/k{k}", t0 + 60))
                acked.append(time.monotonic() - t0)
                run(env, "start", "css")
        finally:
            run(env, "stop", "css", "--force", check=False)
    after = os.getloadavg()
    print(f"{'measure':<44} {'seconds':>9}")
    print(f"{'paxos status css (3 remote members)':<44} {ours:9.3f}")
    print(f"{'parallel-ssh true (same 3 hosts)':<44} {pssh:9.3f}")
    print(f"{'ratio of medians (target <= 1.5)':<44} {ours / pssh:9.2f}")
    print(f"{'median of per-round ratios':<44} {statistics.median(ratios):9.2f}")
    if seen:
        print(f"{'failover: new leader in status css':<44} {statistics.median(seen):9.3f}")
        print(f"{'failover: first acknowledged write':<44} {statistics.median(acked):9.3f}")
        print(f"kills: {a.kills}; new leader {', '.join(f'{x:.2f}' for x in seen)}; "
              f"write {', '.join(f'{x:.2f}' for x in acked)}")
    print("load average before: " + " ".join(f"{x:.2f}" for x in before) +
          "; after: " + " ".join(f"{x:.2f}" for x in after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
