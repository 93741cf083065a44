#!/usr/bin/env python3
"""Deploy to 1 host and to N simulated hosts, and `parallel-scp` of the same files, in one run.

    sudo .venv/bin/python scripts/bench/bench_deploy.py [--hosts 20] [--rounds 3]

Each deploy is a real `paxos deploy` command (interpreter start, imports, one SSH session).
`parallel-scp` copies the same rendered files and the event log folder recursively. Prints median wall times and the ratios of the
issue's speed targets (N hosts / 1 host <= 2.5; ours / parallel-scp <= 1.0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from benchhosts import pscp_command, simulated_hosts, timed

ROOT = Path(__file__).resolve().parents[2]
PAXOS = Path(sys.executable).with_name("paxos")

def wipe(hosts: list[dict]) -> None:
    for h in hosts:
        for sub in ("etc", "var"):
            shutil.rmtree(Path(h["home"], "paxos", sub), ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    with simulated_hosts(a.hosts, "bench-deploy-") as (tmp, info):
        hosts = info["hosts"]
        addrs = [h["addr"] for h in hosts]
        home = tmp / "home"
        home.mkdir()
        env = dict(os.environ, PAXOS_HOME=str(home), HOME=str(home),
                   PAXOS_AUTHOR="bench <bench@example.invalid>")
        for addr in addrs:
            subprocess.run([str(PAXOS), "register", "host", addr], env=env, check=True)
        cell = [f"{addr}:24111" for addr in addrs[:3] for _ in (0, 1)]
        subprocess.run([str(PAXOS), "register", "css", "--name", "css0", *cell], env=env,
                       check=True)
        env.update(PAXOS_KNOWN_HOSTS=info["known_hosts"], PAXOS_SSH_IDENTITY=info["client_key"])
        ours = [str(PAXOS), "deploy"]
        hostfile = tmp / "pssh_hosts"
        rows = []
        for n in (1, a.hosts):
            targets = addrs[:n]
            pscp = pscp_command(hostfile, targets, info, home / "etc", home / "var")
            t = {"fresh": [], "again": [], "pscp": []}
            for _ in range(a.rounds):
                wipe(hosts)
                t["fresh"].append(timed(ours + targets, env))
                t["again"].append(timed(ours + targets, env))
                wipe(hosts)
                t["pscp"].append(timed(pscp, env))
            rows.append((n, *(statistics.median(t[k]) for k in ("fresh", "again", "pscp"))))
        print(f"{'hosts':>5} {'first (s)':>10} {'again (s)':>10} {'pscp (s)':>9}")
        for n, fresh, again, pscp_t in rows:
            print(f"{n:5d} {fresh:10.3f} {again:10.3f} {pscp_t:9.3f}")
        (_, f1, a1, p1), (_, fn, an, pn) = rows
        print(f"{a.hosts} hosts / 1 host: first deploy {fn / f1:.2f}, again {an / a1:.2f}, "
              f"parallel-scp {pn / p1:.2f} (target <= 2.5)")
        print(f"ours / parallel-scp at {a.hosts} hosts: first deploy {fn / pn:.2f} "
              "(target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
