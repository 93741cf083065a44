#!/usr/bin/env python3
"""Benchmark (issue 10): paxos-memcache vs twemproxy (nutcracker) vs memcached direct.

Same machine, same run, same load generator (an asyncio one written here, pipelining nothing):
`--conns` connections (default 50), 90% get / 10% set on `--keys` keys (default 10k), each
target for `--seconds`. Prints ops/s with p50/p99 latency per target, the ratio proxy /
twemproxy (target >= 0.8), then two proxies on the same keys with a growing share of the keys
written through both (the coherent case twemproxy cannot offer).

    .venv/bin/python scripts/bench/bench_memcache.py [--seconds 10] [--conns 50]

Needs memcached, nutcracker (Debian `nutcracker`; skipped if missing) and a CSS cell, which it
starts on loopback in a temporary home (tests/css/css_cell.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "tests", "memcache"), os.path.join(ROOT, "tests", "css")]

from css_cell import Cell  # noqa: E402
from mc_procs import Memcached, ProxyProc, free_port, wait_port  # noqa: E402


async def client(port: int, keys: list[bytes], until: float, lat: list[float],
                 write_keys: list[bytes] | None, rnd: random.Random) -> int:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.monotonic() < until:
            if rnd.random() < 0.1:
                k = rnd.choice(write_keys or keys)
                req, end = b"set %s 0 0 8\r\n%08d\r\n" % (k, n), b"\r\n"
            else:
                req, end = b"get %s\r\n" % rnd.choice(keys), b"END\r\n"
            t0 = time.monotonic()
            w.write(req)
            line = await r.readuntil(b"\r\n")
            if line.startswith(b"VALUE"):
                await r.readuntil(end)
            lat.append(time.monotonic() - t0)
            n += 1
    finally:
        w.close()
    return n


async def load(ports: list[int], conns: int, seconds: float, keys: list[bytes],
               write_keys: list[bytes] | None = None) -> tuple[float, float, float]:
    lat: list[float] = []
    until = time.monotonic() + seconds
    counts = await asyncio.gather(*(client(ports[i % len(ports)], keys, until, lat, write_keys,
                                           random.Random(i)) for i in range(conns)))
    lat.sort()
    return (sum(counts) / seconds, statistics.median(lat) * 1000,
            lat[int(len(lat) * 0.99)] * 1000)


def nutcracker(backend: int) -> tuple[subprocess.Popen, int] | None:
    exe = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
    if not os.path.exists(exe):
        return None
    port = free_port()
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "nc.yml")
    with open(conf, "w") as f:
        f.write(f"bench:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: "
                f"ketama\n  timeout: 3000\n  servers:\n   - 127.0.0.1:{backend}:1\n")
    p = subprocess.Popen([exe, "-c", conf, "-s", str(free_port())],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--keys", type=int, default=10000)
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-mc-")
    os.environ["HOME"] = home
    keys = [b"bk%05d" % i for i in range(a.keys)]
    cell, mc, procs, nc = Cell(home), Memcached().start(), [], None
    try:
        cell.start_all(init=True)
        asyncio.run(cell.wait_leader())
        # -I above the key count: after the warm-up every key is delegated, as in steady state
        opts = ["--workers", "64", "-I", str(2 * a.keys)]
        p1 = ProxyProc(home, 1, cell.name, mc.port, extra=opts).start()
        procs.append(p1)
        rows = [("memcached direct", [mc.port])]
        nc = nutcracker(mc.port)
        if nc:
            rows.append(("twemproxy (nutcracker)", [nc[1]]))
        rows.append(("paxos-memcache", [p1.port]))
        res = {}
        print(f"{a.conns} connections, 90% get / 10% set, {a.keys} keys, {a.seconds:g} s each")
        for name, ports in rows:
            asyncio.run(load(ports, a.conns, a.seconds, keys))  # warm-up
            res[name] = asyncio.run(load(ports, a.conns, a.seconds, keys))
            print(f"{name:28s} {res[name][0]:10.0f} ops/s  p50 {res[name][1]:6.2f} ms  "
                  f"p99 {res[name][2]:7.2f} ms")
        if nc:
            print(f"paxos-memcache / twemproxy: "
                  f"{res['paxos-memcache'][0] / res['twemproxy (nutcracker)'][0]:.2f}x")
        p2 = ProxyProc(home, 2, cell.name, mc.port, extra=opts).start()
        procs.append(p2)
        for share in (0.0, 0.01, 0.1, 1.0):
            shared = keys[: max(1, int(len(keys) * share))] if share else None
            r = asyncio.run(load([p1.port, p2.port], a.conns, a.seconds, keys, shared))
            print(f"two proxies, writes on {share:5.0%} of keys {r[0]:10.0f} ops/s  "
                  f"p50 {r[1]:6.2f} ms  p99 {r[2]:7.2f} ms")
    finally:
        for p in procs:
            p.kill()
        if nc:
            nc[0].kill()
        mc.kill()
        cell.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
