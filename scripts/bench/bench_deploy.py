#!/usr/bin/env python3
"""Deploy to 1 host and to N simulated hosts, and `parallel-scp` of the same files, in one run.

    sudo .venv/bin/python scripts/bench/bench_deploy.py [--hosts 20] [--rounds 3]

Each deploy runs in a fresh Python process (interpreter start, imports, one SSH session), as a
`paxos deploy` command does, until the CLI verb exists. `parallel-scp` copies the same rendered
files and the event log folder recursively. Prints median wall times and the ratios of the
issue's speed targets (N hosts / 1 host <= 2.5; ours / parallel-scp <= 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTHOSTS = ROOT / "scripts" / "testhosts"
PAXOS = Path(sys.executable).with_name("paxos")

DEPLOY = """
import sys
from pathlib import Path
from paxoslog import deploy as dep
from paxoslog.home import Home, head_state
from paxoslog.ssh import SSHOptions
from paxoslog.sshpool import SSHSession
home = Home.from_env()
names = sys.argv[3:]
opts = SSHOptions(known_hosts=Path(sys.argv[1]), identity_files=(sys.argv[2],), use_agent=False,
                  ask_password=None)
with SSHSession(opts) as session:
    out = dep.deploy(home, dep.select_targets(head_state(home)[2], names), session)
sys.exit(out.error_message() or 0)
"""


def wipe(hosts: list[dict]) -> None:
    for h in hosts:
        for sub in ("etc", "var"):
            shutil.rmtree(Path(h["home"], "paxos", sub), ignore_errors=True)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {proc.stdout}{proc.stderr}")
    return took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    state = tmp / "hosts"
    up = subprocess.run([sys.executable, str(TESTHOSTS), "--state", str(state), "up",
                         str(a.hosts), "--base", "auto", "--json"], capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit(up.stderr)
    try:
        info = json.loads(up.stdout)
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
        ours = [sys.executable, "-c", DEPLOY, info["known_hosts"], info["client_key"]]
        hostfile = tmp / "pssh_hosts"
        rows = []
        for n in (1, a.hosts):
            targets = addrs[:n]
            hostfile.write_text("".join(f"paxos@{x}\n" for x in targets))
            pscp = ["parallel-scp", "-h", str(hostfile), "-p", "32", "-t", "60", "-r",
                    "-O", f"IdentityFile={info['client_key']}",
                    "-O", f"UserKnownHostsFile={info['known_hosts']}",
                    "-O", "StrictHostKeyChecking=yes", "-O", "BatchMode=yes",
                    str(home / "etc"), str(home / "var"), "/home/paxos/"]
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
    finally:
        subprocess.run([sys.executable, str(TESTHOSTS), "--state", str(state), "down"])
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
