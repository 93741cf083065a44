"""Coherence: two proxies, one memcached, concurrent writers and readers on overlapping keys."""

from __future__ import annotations

import math
import threading
import time

from coherence_check import Event, check
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

KEYS = ["ck0", "ck1", "ck2"]


def run_workload(ports: list[int], seconds: float, per_proxy: int = 2) -> list[Event]:
    history: list[Event] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(cid: int, port: int) -> None:
        c = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
        n = 0
        try:
            while time.monotonic() < stop:
                key = KEYS[(cid + n) % len(KEYS)]
                n += 1
                if n % 2:
                    val = f"c{cid}-{n}".encode()
                    t0 = time.monotonic()
                    try:
                        ok = c.set(key, val, noreply=False)
                        ev = Event(cid, "set", key, val, t0, time.monotonic() if ok else math.inf)
                    except (MemcacheError, OSError):
                        ev = Event(cid, "set", key, val, t0)  # outcome unknown
                        c.close()
                else:
                    t0 = time.monotonic()
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
    for t in threads:
        t.join()
    return history


def test_checker_accepts_and_rejects_synthetic_histories():
    ok = [Event(1, "set", "k", b"a", 0, 1), Event(2, "get", "k", b"a", 2, 3),
          Event(1, "set", "k", b"b", 4, 5), Event(2, "get", "k", b"b", 6, 7),
          Event(2, "get", "k", None, 8, 9), Event(3, "set", "k", b"c", 8.5),
          Event(2, "get", "k", b"b", 10, 11)]  # c's outcome is unknown: b is still fine
    assert check(ok) == []
    stale = ok + [Event(3, "get", "k", b"a", 6, 7)]
    assert len(check(stale)) == 1 and "stale" in check(stale)[0]
    phantom = ok + [Event(3, "get", "k", b"zz", 6, 7)]
    assert "phantom" in check(phantom)[0]
    overlap = [Event(1, "set", "k", b"a", 0, 1), Event(1, "set", "k", b"b", 2, 5),
               Event(2, "get", "k", b"a", 3, 4)]  # b still in flight: a is legal
    assert check(overlap) == []


def test_two_proxies_zero_stale_reads(env):
    second = env.add_proxy()
    try:
        history = run_workload([env.proxy.port, second.port], seconds=6)
        stats = Client(("127.0.0.1", second.port), timeout=10).stats("paxos")
    finally:
        second.kill()
    assert stats[b"recalls"] > 10 and stats[b"grants"] > 10, stats  # coherence was exercised
    reads = [e for e in history if e.op == "get" and e.value is not None]
    writes = [e for e in history if e.op == "set" and e.ret != math.inf]
    assert len(reads) > 50 and len(writes) > 50, (len(reads), len(writes))
    print(len(reads), len(writes), stats)
    assert check(history) == []


def test_checker_catches_an_incoherent_setup(env):
    # two proxies on one memcached but in different name spaces: neither recalls the other's
    # delegations, so each serves its own cached copy after the other has overwritten it
    a = env.add_proxy(ns="islandA")
    b = env.add_proxy(ns="islandB")
    try:
        history = run_workload([a.port, b.port], seconds=4)
    finally:
        a.kill()
        b.kill()
    problems = check(history)
    assert any("stale" in p for p in problems), problems[:3]
