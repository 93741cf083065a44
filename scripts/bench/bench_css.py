#!/usr/bin/env python3
"""Benchmark: a 3-member CSS cell against a 3-member etcd on loopback, same run, same load.

Throughput: `--clients` concurrent closed-loop clients (default 1, 32 and 256) doing small
writes for `--seconds` each, fsync on. etcd is measured through its HTTP/JSON gateway and
through its native gRPC API (the asyncio client `aetcd`), and CSS is compared with the faster of
the two. Failover: under 32 writers the leader is killed with SIGKILL `--kills` times (default
10, the killed member restarted and caught up between kills); each time, the time from the kill
until a write started after the kill is acknowledged; median and worst are printed.

etcd: Debian package etcd-server (`apt-get install etcd-server`); aetcd from PyPI
(`.venv/bin/pip install aetcd`); each is skipped when missing.

    .venv/bin/python scripts/bench/bench_css.py [--clients 1,32,256] [--seconds 10]
                                [--repeat 3] [--kills 10] [--profile default]

Both clusters run at once and every repetition measures each system at each client count back
to back, so one repetition's ratio compares runs under the same load of a shared machine; the
table gives medians over repetitions and the ratio of each repetition.
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

import css_cell  # noqa: E402
from css_cell import Cell  # noqa: E402

from nodes.css.client import CssClient  # noqa: E402

PROFILES = {
    "default": [],  # spec 2.11 timings: heartbeat 50 ms, lease 0.5 s, election 0.6-1 s
    "slow": ["--heartbeat", "0.1", "--lease", "1.0", "--election-min", "1.5",
             "--election-max", "3.0", "--retransmit", "0.15"],  # the timings before issue 11
    # not a fair race (etcd still fsyncs): what CSS's two fsyncs in a row cost a write
    "nofsync": ["--unsafe-no-fsync"],
}
FAILOVER_CLIENTS = 32
# one attempt's timeout before a client tries another member: the CSS library's
# attempt_timeout; the etcd writers get the same, or a request stuck on the killed leader
# would hold each closed-loop writer for the whole request timeout
ATTEMPT = 1.0


class Load:
    """Closed-loop writers; records latencies, errors and the first write after each kill."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.stop = asyncio.Event()
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


def summary(lat: list[float], seconds: float) -> dict:
    if len(lat) < 2:
        return {"ops": 0.0, "p50": float("nan"), "p99": float("nan")}
    q = statistics.quantiles(lat, n=100)
    return {"ops": len(lat) / seconds, "p50": q[49] * 1000, "p99": q[98] * 1000}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads), from /proc."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


async def throughput(n: int, seconds: float, writer, pids: list[int]) -> dict:
    """Closed-loop writes for `seconds`; also the CPU each write cost the three servers and
    the load generator (the machine is shared: CPU per write is what load costs)."""
    load = Load()
    task = asyncio.create_task(load.run(n, writer))
    await asyncio.sleep(1.0)  # warm-up (and connection set-up)
    load.lat.clear()
    errors0 = load.errors
    t0, c0, s0 = time.monotonic(), time.process_time(), cpu_seconds(pids)
    await asyncio.sleep(seconds)
    res = summary(list(load.lat), time.monotonic() - t0)
    done = max(1, len(load.lat))
    res["server_us"] = (cpu_seconds(pids) - s0) / done * 1e6
    res["client_us"] = (time.process_time() - c0) / done * 1e6
    res["errors"] = load.errors - errors0
    load.stop.set()
    await task
    return res


async def failover(kills: int, writer, kill_leader, restart) -> list[float]:
    """Kill the leader `kills` times under load; seconds until the next acknowledged write."""
    load = Load()
    task = asyncio.create_task(load.run(FAILOVER_CLIENTS, writer))
    out: list[float] = []
    try:
        await asyncio.sleep(2.0)
        for _ in range(kills):
            load.killed_at = load.first_after = None  # the kill sets killed_at
            victim = await kill_leader(load)
            while load.first_after is None and time.monotonic() - load.killed_at < 30:
                await asyncio.sleep(0.005)
            out.append(load.first_after - load.killed_at if load.first_after else float("nan"))
            await restart(victim)
            await asyncio.sleep(2.0)  # it rejoins and catches up before the next kill
    finally:
        load.stop.set()
        await task
    return out


# ---- CSS ---------------------------------------------------------------------------------
class CssBench:
    """A 3-member CSS cell with the spec timings (or --profile); writers open sessions."""

    def __init__(self, home: str, profile: str) -> None:
        css_cell.FAST = []  # the bench uses the spec timings (or --profile), not test ones
        self.cell = Cell(home, extra=PROFILES[profile])
        self.sessions: list[CssClient] = []

    async def start(self) -> None:
        self.cell.start_all(init=True)
        await self.cell.wait_leader(timeout=30)

    async def writer(self, i: int):
        cl = CssClient(self.cell.addrs(), request_timeout=30, attempt_timeout=ATTEMPT)
        await cl.open()
        self.sessions.append(cl)

        async def w(k: str, v: bytes) -> None:
            await cl.write(k, v)
        return w

    async def row(self, n: int, seconds: float) -> dict:
        try:
            return await throughput(n, seconds, self.writer,
                                    [p.pid for p in self.cell.procs.values()])
        finally:
            await asyncio.gather(*(c.close() for c in self.sessions), return_exceptions=True)
            self.sessions.clear()

    async def kill_leader(self, load: Load) -> int:
        leader = await self.cell.wait_leader()
        load.killed_at = time.monotonic()
        self.cell.kill(leader)
        return leader

    async def restart(self, no: int) -> None:
        self.cell.start(no)

    async def failover(self, kills: int) -> list[float]:
        try:
            return await failover(kills, self.writer, self.kill_leader, self.restart)
        finally:
            await asyncio.gather(*(c.close() for c in self.sessions), return_exceptions=True)
            self.sessions.clear()

    def close(self) -> None:
        self.cell.close()


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


class Etcd:
    """A 3-member etcd cluster on 127.0.0.1-3 (fsync on, its default timings)."""

    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    cport, pport = 23790, 23800

    def __init__(self, exe: str, home: str) -> None:
        self.exe, self.home = exe, home
        self.procs: dict[int, subprocess.Popen] = {}

    def start(self, i: int, state: str = "new") -> None:
        h = self.hosts[i]
        cluster = ",".join(f"e{k}=http://{x}:{self.pport}" for k, x in enumerate(self.hosts))
        self.procs[i] = subprocess.Popen(
            [self.exe, "--name", f"e{i}", "--data-dir", os.path.join(self.home, f"etcd{i}"),
             "--listen-client-urls", f"http://{h}:{self.cport}",
             "--advertise-client-urls", f"http://{h}:{self.cport}",
             "--listen-peer-urls", f"http://{h}:{self.pport}",
             "--initial-advertise-peer-urls", f"http://{h}:{self.pport}",
             "--initial-cluster", cluster, "--initial-cluster-state", state,
             "--initial-cluster-token", "bench", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    async def leader(self) -> int:
        for _ in range(300):
            for i, h in enumerate(self.hosts):
                if i not in self.procs:
                    continue
                try:
                    st = await asyncio.wait_for(Http(h, self.cport).post(
                        "/v3/maintenance/status", {}), 1)
                    if st.get("leader") == st["header"].get("member_id"):
                        return i
                except Exception:
                    pass
            await asyncio.sleep(0.1)
        raise RuntimeError("etcd has no leader")

    async def kill_leader(self, load: Load) -> int:
        lead = await self.leader()
        load.killed_at = time.monotonic()
        self.procs[lead].send_signal(signal.SIGKILL)
        self.procs.pop(lead).wait()
        return lead

    async def restart(self, i: int) -> None:
        self.start(i, "existing")

    def close(self) -> None:
        for p in self.procs.values():
            p.kill()
            p.wait()


def http_writer(e: Etcd):
    async def writer(i: int):
        # every client talks to its own member; etcd forwards writes to the leader
        state = {"m": i % 3}
        conn = {"c": Http(e.hosts[state["m"]], e.cport)}

        async def w(k: str, v: bytes) -> None:
            try:
                await asyncio.wait_for(conn["c"].post("/v3/kv/put", {
                    "key": base64.b64encode(k.encode()).decode(),
                    "value": base64.b64encode(v).decode()}), ATTEMPT)
            except Exception:
                state["m"] = (state["m"] + 1) % 3
                conn["c"] = Http(e.hosts[state["m"]], e.cport)
                raise
        return w
    return writer


def grpc_writer(e: Etcd, clients: list):
    import aetcd

    async def writer(i: int):
        state = {"m": i % 3}

        async def connect() -> object:
            c = aetcd.Client(e.hosts[state["m"]], e.cport, timeout=5)
            await c.connect()
            clients.append(c)
            return c
        conn = {"c": await connect()}

        async def w(k: str, v: bytes) -> None:
            try:
                await asyncio.wait_for(conn["c"].put(k.encode(), v), ATTEMPT)
            except Exception:
                state["m"] = (state["m"] + 1) % 3
                conn["c"] = await connect()
                raise
        return w
    return writer


def have_aetcd() -> bool:
    try:
        import aetcd  # noqa: F401
        return True
    except ImportError:
        return False


async def etcd_row(e: Etcd, kind: str, n: int, seconds: float) -> dict:
    clients: list = []
    try:
        w = grpc_writer(e, clients) if kind == "grpc" else http_writer(e)
        return await throughput(n, seconds, w, [p.pid for p in e.procs.values()])
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def etcd_failover(e: Etcd, kills: int) -> list[float]:
    clients: list = []
    try:
        w = grpc_writer(e, clients) if have_aetcd() else http_writer(e)
        return await failover(kills, w, e.kill_leader, e.restart)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def bench_all(clients: list[int], seconds: float, kills: int, profile: str, home: str,
                    repeat: int) -> dict:
    """Both clusters run side by side; each repetition measures every system at every client
    count back to back (in a rotating order), so that the ratio of one repetition compares
    runs under the same machine load. The machine is shared: medians over repetitions."""
    css = CssBench(os.path.join(home, "css"), profile)
    exe = shutil.which("etcd")
    e = Etcd(exe, os.path.join(home, "etcd")) if exe else None
    systems = ["css"] + ((["etcd-http"] + (["etcd-grpc"] if have_aetcd() else []))
                         if e else [])
    rows: dict = {n: {name: [] for name in systems} for n in clients}
    out: dict = {"rows": rows}
    try:
        await css.start()
        if e is not None:
            for i in range(3):
                e.start(i)
            await e.leader()
        for rep in range(repeat):
            for n in clients:
                order = systems[rep % len(systems):] + systems[:rep % len(systems)]
                for name in order:
                    if name == "css":
                        r = await css.row(n, seconds)
                    else:
                        r = await etcd_row(e, name.split("-")[1], n, seconds)
                    rows[n][name].append(r)
                    print(f"  rep {rep + 1} {n:>4} clients {name:<10} {r['ops']:>8.0f}/s "
                          f"p50 {r['p50']:.1f} ms, cpu/write: servers {r['server_us']:.0f} us, "
                          f"client {r['client_us']:.0f} us, load {os.getloadavg()[0]:.1f}",
                          file=sys.stderr, flush=True)
        if kills:
            out["css_failover"] = await css.failover(kills)
            if e is not None:
                out["etcd_failover"] = await etcd_failover(e, kills)
        return out
    finally:
        css.close()
        if e is not None:
            e.close()


def _med(rs: list[dict], k: str) -> float:
    return statistics.median(r[k] for r in rs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="1,32,256", help="comma-separated client counts")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (medians reported)")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="default")
    a = ap.parse_args()
    clients = [int(x) for x in a.clients.split(",")]
    home = tempfile.mkdtemp(prefix="bench-css-")
    os.environ["HOME"] = home
    load0 = os.getloadavg()[0]
    try:
        res = asyncio.run(bench_all(clients, a.seconds, a.kills, a.profile, home, a.repeat))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    rows = res["rows"]
    fsync = "fsync off for CSS only (not a fair race)" if a.profile == "nofsync" else "fsync on"
    print(f"\nsmall writes, {fsync}, {a.seconds:.0f} s per row, median of {a.repeat} "
          f"repetitions, CSS timing profile: {a.profile}; load average {load0:.1f} at the "
          f"start, {os.getloadavg()[0]:.1f} at the end; cpu = CPU per write (servers: all "
          "three members; cli: the load generator)")
    print(f"{'clients':>7} {'system':<10} {'writes/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'srv cpu us':>10} {'cli cpu us':>10}")
    for n in clients:
        for name, rs in rows[n].items():
            print(f"{n:>7} {name:<10} {_med(rs, 'ops'):>10.0f} {_med(rs, 'p50'):>8.1f} "
                  f"{_med(rs, 'p99'):>8.1f} {sum(r['errors'] for r in rs):>7} "
                  f"{_med(rs, 'server_us'):>10.0f} {_med(rs, 'client_us'):>10.0f}")
        etcd = [name for name in rows[n] if name != "css"]
        if etcd:
            # per repetition: CSS against the faster etcd client of that same repetition
            ratios = [rows[n]["css"][i]["ops"] / max(rows[n][x][i]["ops"] for x in etcd)
                      for i in range(a.repeat)]
            print(f"{'':>7} css / faster etcd: median {statistics.median(ratios):.2f}x "
                  f"(each repetition: {' '.join(f'{x:.2f}' for x in ratios)})")
    if a.kills:
        print(f"\nfailover after leader kill -9 until the next acknowledged write, "
              f"{FAILOVER_CLIENTS} writers, {a.kills} kills")
        for name, r in (("css", res.get("css_failover")), ("etcd", res.get("etcd_failover"))):
            ok = [x for x in r or [] if x == x]
            if ok:
                print(f"{name:<10} median {statistics.median(ok):.2f} s, worst {max(ok):.2f} s, "
                      f"all {' '.join(f'{x:.2f}' for x in r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
