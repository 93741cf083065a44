"""Faults (spec 5.3): a proxy killed holding W, memcached killed, CSS without quorum."""

from __future__ import annotations

import asyncio
import time

from mc_procs import talk

CSS_DOWN = b"SERVER_ERROR css unavailable\r\n"
BACKEND_DOWN = b"SERVER_ERROR backend unavailable\r\n"


def get(port: int, key: bytes) -> bytes:
    return talk(port, b"get " + key + b"\r\n", b"\r\n", timeout=15)


def poll(fn, ok, timeout: float):
    """Call fn() until ok(result); returns every result seen (the last one satisfies ok)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = fn()
        seen.append(r)
        if ok(r):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"condition not reached; last results {seen[-3:]!r}")


def test_killed_proxy_holding_writes_leaves_misses(fenv):
    a, b = fenv.proxy, fenv.add_proxy()
    assert talk(b.port, b"set fk0 0 0 3\r\nold\r\n", b"\r\n") == b"STORED\r\n"
    assert get(a.port, b"fk0") == b"VALUE fk0 0 3\r\nold\r\nEND\r\n"  # B wrote metadata
    for k in (b"fk0", b"fk1", b"fk2"):  # A now holds W on each, metadata only local
        assert talk(a.port, b"set %s 0 0 3\r\nnew\r\n" % k, b"\r\n") == b"STORED\r\n"
    a.kill()
    t0 = time.monotonic()
    for k in (b"fk0", b"fk1", b"fk2"):
        seen = poll(lambda k=k: get(b.port, k), lambda r: r.endswith(b"END\r\n"), 20)
        assert b"old" not in b"".join(seen)
        assert seen[-1] in (b"END\r\n", b"VALUE %s 0 3\r\nnew\r\nEND\r\n" % k)
    assert time.monotonic() - t0 < 15
    # CSS's abort rule deleted the metadata of every key A held in W: misses, never "old"
    assert get(b.port, b"fk0") == b"END\r\n"


def test_backend_killed_then_restarted_empty(fenv):
    p = fenv.proxy
    assert talk(p.port, b"set bk 0 0 2\r\nv1\r\nget bk\r\n", b"END\r\n").endswith(
        b"VALUE bk 0 2\r\nv1\r\nEND\r\n")  # cached in the proxy now
    port = fenv.mc.port
    fenv.mc.kill()
    seen = poll(lambda: get(p.port, b"bk"), lambda r: r == BACKEND_DOWN, 5)
    assert all(r in (BACKEND_DOWN, b"VALUE bk 0 2\r\nv1\r\nEND\r\n") for r in seen)
    assert talk(p.port, b"set bk2 0 0 1\r\nx\r\n", b"\r\n") == BACKEND_DOWN
    assert talk(p.port, b"stats\r\n", b"\r\n") == BACKEND_DOWN
    fenv.mc = type(fenv.mc)(port=port).start()
    seen = poll(lambda: get(p.port, b"bk"), lambda r: r == b"END\r\n", 10)
    assert all(r in (BACKEND_DOWN, b"END\r\n") for r in seen), seen  # never the old value
    assert talk(p.port, b"set bk 0 0 2\r\nv2\r\nget bk\r\n", b"END\r\n") == \
        b"STORED\r\nVALUE bk 0 2\r\nv2\r\nEND\r\n"


def test_css_without_quorum_fails_closed_then_resumes(fenv):
    p, cell = fenv.proxy, fenv.cell
    assert talk(p.port, b"set ck 0 0 2\r\nv1\r\nget ck\r\n", b"END\r\n").endswith(b"v1\r\nEND\r\n")
    leader = asyncio.run(cell.wait_leader())
    others = [n for n in range(3) if n != leader]
    cell.kill(leader)
    cell.kill(others[0])
    t0 = time.monotonic()
    seen = poll(lambda: get(p.port, b"ck"), lambda r: r == CSS_DOWN, 10)
    assert time.monotonic() - t0 < 3 + 3 + 1  # session validity + css_wait
    # from the first error on, nothing but errors: never a value while CSS is gone
    for _ in range(5):
        assert get(p.port, b"ck") == CSS_DOWN
        assert talk(p.port, b"get other\r\n", b"\r\n", timeout=15) == CSS_DOWN
    assert talk(p.port, b"set ck 0 0 2\r\nv2\r\n", b"\r\n", timeout=15) == CSS_DOWN
    assert all(r in (CSS_DOWN, b"VALUE ck 0 2\r\nv1\r\nEND\r\n") for r in seen)
    cell.start(leader)
    cell.start(others[0])
    seen = poll(lambda: get(p.port, b"ck"), lambda r: r.endswith(b"END\r\n"), 30)
    assert seen[-1] in (b"VALUE ck 0 2\r\nv1\r\nEND\r\n", b"END\r\n")
    assert talk(p.port, b"set ck 0 0 2\r\nv3\r\nget ck\r\n", b"END\r\n") == \
        b"STORED\r\nVALUE ck 0 2\r\nv3\r\nEND\r\n"
