#!/usr/bin/env python3
"""Benchmark (issue 10): paxos-memcache vs twemproxy (nutcracker) vs memcached direct.

Same machine, same run, same load generator (an asyncio one written here, pipelining nothing):
`--conns` connections (default 50), 90% get / 10% set on `--keys` keys (default 10k, each
stored once first), each target for `--seconds`, `--repeat` rounds interleaved. Prints the
median ops/s and p50/p99 latency per target, the median ratio proxy / twemproxy (target >= 0.8),
then two proxies on one memcached where a growing share of the keys is read and written through
both (the coherent case twemproxy cannot offer); error replies are counted and shown.

    .venv/bin/python scripts/bench/bench_memcache.py [--seconds 10] [--conns 50] [--repeat 3]

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
                 rnd: random.Random, errors: list[bytes]) -> int:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.monotonic() < until:
            k = rnd.choice(keys)
            if rnd.random() < 0.1:
                req, end = b"set %s 0 0 8\r\n%08d\r\n" % (k, n % 100000000), b"\r\n"
            else:
                req, end = b"get %s\r\n" % k, b"END\r\n"
            t0 = time.monotonic()
            w.write(req)
            line = await r.readuntil(b"\r\n")
            if line.startswith(b"VALUE"):
                await r.readuntil(end)
            elif line not in (b"END\r\n", b"STORED\r\n"):
                errors.append(line)
            lat.append(time.monotonic() - t0)
            n += 1
    finally:
        w.close()
    return n


async def load(ports: list[int], conns: int, seconds: float,
               keys_of: list[list[bytes]]) -> tuple[float, float, float, int]:
    """Connection i talks to ports[i % len] on keys_of[i % len]: (ops/s, p50 ms, p99 ms,
    error replies)."""
    lat: list[float] = []
    errors: list[bytes] = []
    until = time.monotonic() + seconds
    counts = await asyncio.gather(*(client(ports[i % len(ports)], keys_of[i % len(keys_of)],
                                           until, lat, random.Random(i), errors)
                                    for i in range(conns)))
    lat.sort()
    return (sum(counts) / seconds, statistics.median(lat) * 1000,
            lat[int(len(lat) * 0.99)] * 1000, len(errors))


async def prefill(port: int, keys: list[bytes], conns: int = 20) -> None:
    """Every key stored once through `port` (the steady state: gets are hits); in parallel,
    since through a proxy each new key costs a few CSS round trips."""
    async def one(part: list[bytes]) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in range(0, len(part), 50):
                batch = part[i:i + 50]
                w.write(b"".join(b"set %s 0 0 8\r\n%08d\r\n" % (k, 0) for k in batch))
                for _ in batch:
                    line = await r.readuntil(b"\r\n")
                    if line != b"STORED\r\n":
                        raise RuntimeError(f"prefill through {port}: {line!r}")
        finally:
            w.close()

    await asyncio.gather(*(one(keys[i::conns]) for i in range(conns)))


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process we started (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, ports: list[int], conns: int, seconds: float,
             keys_of: list[list[bytes]]) -> tuple[float, float, float, int, float]:
    """load() plus the target process's CPU microseconds per operation: on a machine shared
    with other work, throughput moves with the neighbours but CPU per operation hardly does."""
    c0 = cpu_seconds(pid)
    r = asyncio.run(load(ports, conns, seconds, keys_of))
    return (*r, (cpu_seconds(pid) - c0) * 1e6 / max(1.0, r[0] * seconds))


def row(name: str, r: tuple) -> str:
    err = f"  errors {r[3]}" if r[3] else ""
    cpu = f" {r[4]:.0f} |" if len(r) > 4 else ""
    return f"| {name} | {r[0]:.0f} | {r[1]:.2f} | {r[2]:.2f} |{cpu}{err}"


def med(runs: list[tuple]) -> tuple:
    return (*(statistics.median(x[i] for x in runs) for i in range(3)),
            sum(x[3] for x in runs), statistics.median(x[4] for x in runs))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds over the single-proxy targets; medians are reported")
    ap.add_argument("--shares", default="0,0.01,0.1,1",
                    help="shares of the keys used through both proxies")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-mc-")
    os.environ["HOME"] = home
    keys = [b"bk%05d" % i for i in range(a.keys)]
    cell, mc, procs, nc = Cell(home), Memcached().start(), [], None
    try:
        cell.start_all(init=True)
        asyncio.run(cell.wait_leader())
        # -I above the key count: every key stays delegated, as in steady state
        opts = ["--workers", "64", "-I", str(2 * a.keys)]
        p1 = ProxyProc(home, 1, cell.name, mc.port, extra=opts).start()
        procs.append(p1)
        assert mc.proc is not None and p1.proc is not None
        rows = [("memcached direct", mc.port, mc.proc.pid)]
        nc = nutcracker(mc.port)
        if nc:
            rows.append(("twemproxy (nutcracker)", nc[1], nc[0].pid))
        rows.append(("paxos-memcache", p1.port, p1.proc.pid))
        print(f"{a.conns} connections, 90% get / 10% set, {a.keys} keys, {a.seconds:g} s per "
              f"run, median of {a.repeat} runs")
        for _, port, _ in rows:  # values present and (through the proxy) delegations held
            asyncio.run(prefill(port, keys))
        res: dict[str, list] = {name: [] for name, _, _ in rows}
        ratios = []
        for _ in range(a.repeat):  # interleaved, so a noisy neighbour hits every target alike
            for name, port, pid in rows:
                res[name].append(measured(pid, [port], a.conns, a.seconds, [keys]))
            if nc:
                ratios.append(res["paxos-memcache"][-1][0] /
                              res["twemproxy (nutcracker)"][-1][0])
        print("| target | ops/s | p50 ms | p99 ms | CPU µs/op |\n|---|---|---|---|---|")
        for name, _, _ in rows:
            print(row(name, med(res[name])))
        if nc:
            print(f"paxos-memcache / twemproxy: median {statistics.median(ratios):.2f}x "
                  f"(runs: {', '.join(f'{x:.2f}' for x in ratios)})")
        p2 = ProxyProc(home, 2, cell.name, mc.port, extra=opts).start()
        procs.append(p2)
        print("\ntwo proxies, one memcached: each proxy's connections use its own half of the "
              "keys plus the shared ones")
        print("| keys used through both | ops/s | p50 ms | p99 ms |\n|---|---|---|---|")
        for share in (float(x) for x in a.shares.split(",")):
            n = int(len(keys) * share)
            shared, rest = keys[:n], keys[n:]
            half = len(rest) // 2
            mine = [shared + rest[:half], shared + rest[half:]]
            for p, ks in zip((p1, p2), mine, strict=True):  # each proxy takes its delegations
                asyncio.run(prefill(p.port, ks))
            r = asyncio.run(load([p1.port, p2.port], a.conns, a.seconds, mine))
            print(row(f"{share:.0%}", r))
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
