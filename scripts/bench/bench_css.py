#!/usr/bin/env python3
"""Benchmark: a 3-member CSS cell against a 3-member etcd on loopback, same run, same load.

Each system gets `--clients` concurrent clients (default 32) doing small writes for
`--seconds`, with fsync on; then the leader is killed with SIGKILL under load and the time until
writes succeed again is measured. Prints one table. etcd is used through its HTTP/JSON gateway
(Debian package etcd-server; `apt-get install etcd-server`), skipped if `etcd` is not installed.

    .venv/bin/python scripts/bench/bench_css.py [--clients 32] [--seconds 10] [--profile default]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "css"))

from css_cell import Cell  # noqa: E402

from nodes.css.client import CssClient  # noqa: E402

PROFILES = {
    "default": [],  # spec 2.11 timings: election 0.6-1 s, lease 0.5 s, heartbeat 50 ms
    "fast": ["--heartbeat", "0.05", "--lease", "0.5", "--election-min", "0.6",
             "--election-max", "1.0", "--retransmit", "0.08"],
}


class Load:
    """Closed-loop writers; records latencies and the longest gap without a successful write."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.stop = asyncio.Event()
        self.last_ok = time.monotonic()
        self.gaps: list[float] = []
        self.errors = 0
        self.killed_at: float | None = None
        self.first_after: float | None = None

    async def run(self, n: int, writer) -> None:
        await asyncio.gather(*(self._one(i, writer) for i in range(n)))

    async def _one(self, i: int, writer) -> None:
        w = await writer(i)
        j = 0
        while not self.stop.is_set():
            j += 1
            t0 = time.monotonic()
            try:
                await w(f"bench/{i}", f"{i}-{j}-".encode() + b"x" * 64)
            except Exception:
                self.errors += 1
                await asyncio.sleep(0.01)
                continue
            t1 = time.monotonic()
            if self.killed_at is not None and t0 >= self.killed_at and self.first_after is None:
                self.first_after = t1
            self.lat.append(t1 - t0)
            self.gaps.append(t1 - self.last_ok)
            self.last_ok = max(self.last_ok, t1)


def summary(lat: list[float], seconds: float) -> tuple[float, float, float]:
    if not lat:
        return 0.0, float("nan"), float("nan")
    q = statistics.quantiles(lat, n=100)
    return len(lat) / seconds, q[49] * 1000, q[98] * 1000


async def measure(n: int, seconds: float, writer, kill=None) -> dict:
    load = Load()
    task = asyncio.create_task(load.run(n, writer))
    await asyncio.sleep(1.0)  # warm-up
    load.lat.clear()
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    res = dict(zip(("ops", "p50", "p99"), summary(list(load.lat), elapsed), strict=True))
    if kill is not None:
        await kill(load)
        while load.first_after is None and time.monotonic() - load.killed_at < 30:
            await asyncio.sleep(0.01)
        # time from the kill until a write that was started after the kill succeeded
        res["failover"] = (load.first_after - load.killed_at) if load.first_after else float("nan")
    load.stop.set()
    await task
    return res


# ---- CSS ---------------------------------------------------------------------------------
async def bench_css(clients: int, seconds: float, profile: str, home: str) -> dict:
    cell = Cell(home, extra=PROFILES[profile])
    cell.extra = PROFILES[profile]
    import css_cell
    css_cell.FAST = []  # the bench uses the spec timings (or --profile), not the test ones
    try:
        cell.start_all(init=True)
        await cell.wait_leader(timeout=30)
        sessions: list[CssClient] = []

        async def writer(i: int):
            cl = CssClient(cell.addrs(), request_timeout=30, attempt_timeout=1.0)
            await cl.open()
            sessions.append(cl)

            async def w(k: str, v: bytes) -> None:
                await cl.write(k, v)
            return w

        async def kill(load: Load) -> None:
            leader = await cell.wait_leader()
            load.killed_at = time.monotonic()
            cell.kill(leader)

        res = await measure(clients, seconds, writer, kill)
        for cl in sessions:
            await cl.aclose()
        return res
    finally:
        cell.close()


# ---- etcd --------------------------------------------------------------------------------
class Http:
    """Minimal keep-alive HTTP/1.1 JSON client over asyncio streams (one per writer)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.r = self.w = None

    async def post(self, path: str, body: dict) -> dict:
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        self.w.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        try:
            head = await self.r.readuntil(b"\r\n\r\n")
            n = int([h.split(b":")[1] for h in head.split(b"\r\n")
                     if h.lower().startswith(b"content-length")][0])
            resp = await self.r.readexactly(n)
        except Exception:
            self.w.close()
            self.w = None
            raise
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40])
        return json.loads(resp)


async def bench_etcd(clients: int, seconds: float, home: str) -> dict | None:
    etcd = shutil.which("etcd")
    if etcd is None:
        return None
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    cport, pport = 23790, 23800
    cluster = ",".join(f"e{i}=http://{h}:{pport}" for i, h in enumerate(hosts))
    procs = {}
    for i, h in enumerate(hosts):
        procs[i] = subprocess.Popen(
            [etcd, "--name", f"e{i}", "--data-dir", os.path.join(home, f"etcd{i}"),
             "--listen-client-urls", f"http://{h}:{cport}",
             "--advertise-client-urls", f"http://{h}:{cport}",
             "--listen-peer-urls", f"http://{h}:{pport}",
             "--initial-advertise-peer-urls", f"http://{h}:{pport}",
             "--initial-cluster", cluster, "--initial-cluster-state", "new",
             "--initial-cluster-token", "bench", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        async def leader() -> int:
            for _ in range(300):
                for i, h in enumerate(hosts):
                    if i not in procs:
                        continue
                    try:
                        st = await asyncio.wait_for(Http(h, cport).post(
                            "/v3/maintenance/status", {}), 1)
                        if st.get("leader") == st["header"].get("member_id"):
                            return i
                    except Exception:
                        pass
                await asyncio.sleep(0.1)
            raise RuntimeError("etcd has no leader")
        await leader()

        async def writer(i: int):
            # every client talks to its own member; etcd forwards writes to the leader
            state = {"m": i % 3}
            conn = {"c": Http(hosts[state["m"]], cport)}

            async def w(k: str, v: bytes) -> None:
                try:
                    await asyncio.wait_for(conn["c"].post("/v3/kv/put", {
                        "key": base64.b64encode(k.encode()).decode(),
                        "value": base64.b64encode(v).decode()}), 5)
                except Exception:
                    state["m"] = (state["m"] + 1) % 3
                    conn["c"] = Http(hosts[state["m"]], cport)
                    raise
            return w

        async def kill(load: Load) -> None:
            lead = await leader()
            load.killed_at = time.monotonic()
            procs[lead].send_signal(signal.SIGKILL)
            procs[lead].wait()
            del procs[lead]

        return await measure(clients, seconds, writer, kill)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="default")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-css-")
    os.environ["HOME"] = home
    try:
        css = asyncio.run(bench_css(a.clients, a.seconds, a.profile, os.path.join(home, "css")))
        etcd = asyncio.run(bench_etcd(a.clients, a.seconds, os.path.join(home, "etcd")))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n{a.clients} clients, small writes, fsync on, {a.seconds:.0f} s, "
          f"CSS timing profile: {a.profile}")
    print(f"{'system':<8} {'writes/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'failover s':>11}")
    for name, r in (("css", css), ("etcd", etcd)):
        if r is None:
            print(f"{name:<8} {'(etcd not installed)':>40}")
            continue
        print(f"{name:<8} {r['ops']:>10.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
              f"{r.get('failover', float('nan')):>11.2f}")
    if etcd:
        print(f"throughput ratio css/etcd: {css['ops'] / etcd['ops']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
