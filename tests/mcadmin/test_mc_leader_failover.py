"""Fault test of issue 10 (nodes.md §5.3): the CSS leader is killed under proxy load → service
resumes after failover with no stale read. Two proxies started by the admin (`start memcache`)
share one memcached and one name space; concurrent writers and readers on overlapping keys go
through both, and the project's checker (tests/memcache/coherence_check.py) judges the history."""

from __future__ import annotations

import asyncio
import math
import threading
import time

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

from tests.mcadmin.mcadmin_world import free_port, wait_serving
from tests.memcache.coherence_check import Event, check

KEYS = ["fk0", "fk1", "fk2"]


def workload(ports: list[int], stop: threading.Event, history: list[Event],
             lock: threading.Lock, per_proxy: int = 2) -> list[threading.Thread]:
    def worker(cid: int, port: int) -> None:
        c = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
        n = 0
        try:
            while not stop.is_set():
                key = KEYS[(cid + n) % len(KEYS)]
                n += 1
                t0 = time.monotonic()
                if n % 2:
                    val = f"c{cid}-{n}".encode()  # unique: the checker needs it
                    try:
                        ok = c.set(key, val, noreply=False)
                        ev = Event(cid, "set", key, val, t0, time.monotonic() if ok else math.inf)
                    except (MemcacheError, OSError):
                        ev = Event(cid, "set", key, val, t0)  # outcome unknown
                        c.close()
                else:
                    try:
                        v = c.get(key)
                    except (MemcacheError, OSError):
                        c.close()
                        continue
                    ev = Event(cid, "get", key, v, t0, time.monotonic())
                with lock:
                    history.append(ev)
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i, ports[i % len(ports)]))
               for i in range(per_proxy * len(ports))]
    for t in threads:
        t.start()
    return threads


def _done_after(history: list[Event], lock: threading.Lock, t: float) -> tuple[int, int]:
    with lock:
        sets = sum(1 for e in history if e.op == "set" and e.ret != math.inf and e.invoke > t)
        gets = sum(1 for e in history if e.op == "get" and e.value is not None and e.invoke > t)
    return sets, gets


def test_css_leader_killed_under_load_resumes_without_stale_reads(world):
    mc = world.memcached()
    p0, p1 = free_port(), free_port()
    world.register(0, (p0, mc.port))
    world.register(1, (p1, mc.port))
    r = world.px("start", "memcache")
    assert (r.returncode, r.stderr) == (0, "")
    wait_serving(p0)
    wait_serving(p1)
    history: list[Event] = []
    lock = threading.Lock()
    stop = threading.Event()
    threads = workload([p0, p1], stop, history, lock)
    try:
        deadline = time.monotonic() + 20
        while _done_after(history, lock, 0)[0] < 30:
            assert time.monotonic() < deadline, "no load before the kill"
            time.sleep(0.05)
        leader = asyncio.run(world.cell.wait_leader())
        world.cell.kill(leader)
        killed_at = time.monotonic()
        new = asyncio.run(world.cell.wait_leader(timeout=15, exclude=leader))
        assert new != leader
        # service resumes: acknowledged writes and hits through the proxies after the new leader
        resumed = time.monotonic()
        deadline = resumed + 30
        while min(_done_after(history, lock, resumed)) < 30:
            assert time.monotonic() < deadline, ("no service after failover",
                                                 _done_after(history, lock, resumed))
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert killed_at < resumed
    assert check(history) == []
    # both proxies still run and the admin sees them so
    assert world.px("status", "memcache", "-s").stdout == "0: running\n1: running\n"
