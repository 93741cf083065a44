#!/usr/bin/env python3
"""Benchmark: a hot `paxos replace` under a 32-client write load, on simulated sshd hosts.

A 3-member cell runs on three simulated hosts (members started through the agent over SSH);
`--clients` closed-loop writers (default 32) write small values. First `--seconds` without a
replace (the baseline), then the same load while `paxos replace` moves member 0 to a sixth
host. Prints the replace's wall time and the writers' p50/p99 latency in both windows, and any
failed writes (there should be none).

    sudo .venv/bin/python scripts/bench/bench_replace.py [--clients 32] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import statistics
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchhosts import simulated_hosts  # noqa: E402

from nodes.css.client import CssClient  # noqa: E402
from nodes.css.errors import CssError  # noqa: E402
from nodes.css.shell.auth import generate_key  # noqa: E402

PAXOS = Path(sys.executable).with_name("paxos")
CELL, UPORT, TPORT = "bench", 24411, 24412


class Load:
    """`n` closed-loop writers; latencies are kept per window."""

    def __init__(self, addrs: list[tuple[str, int]], n: int) -> None:
        self.addrs, self.n = addrs, n
        self.window: list[float] = []
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _client(self, c: int) -> None:
        async with CssClient(self.addrs, request_timeout=20.0) as cl:
            i = 0
            while not self.stop.is_set():
                i += 1
                t0 = time.perf_counter()
                try:
                    await cl.write(f"w{c}/{i % 64}", b"x" * 64)
                    self.window.append(time.perf_counter() - t0)
                except (CssError, OSError) as e:
                    self.failed.append(f"{type(e).__name__}: {e}")

    async def _run(self) -> None:
        tasks = [asyncio.create_task(self._client(c)) for c in range(self.n)]
        self.ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    def take(self) -> list[float]:
        got, self.window = self.window, []
        return got


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    site = sysconfig.get_paths()["purelib"]
    with simulated_hosts(6, "bench-replace-") as (tmp, info):
        hosts = info["hosts"]
        members, new = hosts[:3], hosts[5]
        home = tmp / "admin"
        home.mkdir()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PAXOS_")},
               "PAXOS_HOME": str(home), "HOME": str(home),
               "PAXOS_KNOWN_HOSTS": info["known_hosts"],
               "PAXOS_SSH_IDENTITY": info["client_key"],
               "PAXOS_NODE_CMD": f"env PYTHONPATH={ROOT}:{site} /usr/bin/python3 "
                                 "-m nodes.agent.main"}

        def paxos(*args: str) -> subprocess.CompletedProcess:
            r = subprocess.run([str(PAXOS), *args], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"paxos {' '.join(args)}: {r.stderr.strip()}")
            return r

        for h in hosts[3:]:
            paxos("register", "host", h["addr"])
        paxos("register", "css", "--name", CELL,
              *[e for h in members for e in (f"{h['addr']}:{UPORT}", f"{h['addr']}:{TPORT}")])
        paxos("deploy")
        key = home / "etc" / "cell" / f"{CELL}.key"
        generate_key(str(key))
        pw = pwd.getpwnam(info["user"])
        for h in members:
            dest = Path(h["home"]) / "paxos" / "etc" / "cell" / f"{CELL}.key"
            dest.write_bytes(key.read_bytes())
            os.chmod(dest, 0o600)
            os.chown(dest, pw.pw_uid, pw.pw_gid)
        os.environ.update({k: v for k, v in env.items() if k.startswith("PAXOS_")})
        from paxoslog.app.deploy import spec_of
        from paxoslog.core.model import Host
        from paxoslog.remote.agentcall import Agents
        from paxoslog.remote.ssh import SSHOptions
        from paxoslog.remote.sshpool import SSHSession

        ssh = SSHSession(SSHOptions(known_hosts=Path(info["known_hosts"]),
                                    identity_files=(info["client_key"],), use_agent=False,
                                    ask_password=None))
        agents = Agents(str(home), ssh, spec_of)
        cell_id = uuid.uuid4().hex[:12]
        for no, h in enumerate(members):
            r = agents.call(Host(h["addr"], "paxos", None, (), False),
                            ["start", "css", CELL, str(no), "--init", "--cell-id", cell_id],
                            timeout=60)
            if not r.ok:
                raise SystemExit(f"start {no}: {r.reason}")
        addrs = [(h["addr"], TPORT) for h in (*members, new)]
        load = Load(addrs, a.clients)
        load.thread.start()
        load.ready.wait()
        time.sleep(2.0)  # warm-up: sessions open, leader settled (a pause, not a sync)
        load.take()
        time.sleep(a.seconds)
        base = load.take()
        t0 = time.perf_counter()
        r = subprocess.run([str(PAXOS), "replace", "-n", CELL, "-N", "0", "-a",
                            f"{new['addr']}:{UPORT}", f"{new['addr']}:{TPORT}"],
                           env=env, capture_output=True, text=True)
        took = time.perf_counter() - t0
        during = load.take()
        load.stop.set()
        load.thread.join(60)
        ssh.close()
        if r.returncode != 0:
            raise SystemExit(f"replace failed: {r.stderr.strip()}")
        print(f"clients: {a.clients}")
        print(f"hot replace under load: {took:.2f} s")
        print(f"without replace ({a.seconds:g} s): {len(base)} writes, "
              f"p50 {pct(base, 0.5):.1f} ms, p99 {pct(base, 0.99):.1f} ms, "
              f"mean {statistics.fmean(base) * 1000:.1f} ms")
        print(f"during replace ({took:.1f} s): {len(during)} writes, "
              f"p50 {pct(during, 0.5):.1f} ms, p99 {pct(during, 0.99):.1f} ms, "
              f"max {max(during, default=0) * 1000:.1f} ms")
        print(f"failed writes: {len(load.failed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
