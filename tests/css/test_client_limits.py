"""Issue 11, hostile input on the client port: slow clients and half-sent large frames.

The report: 1,200 slow clients exhausted the descriptors (status and new clients timed out,
21,666 EMFILE log lines); 300 half-sent large frames took the leader to 418 MB. Bounded
versions of both, on loopback: the member caps what they hold, keeps serving and keeps
answering status, and logs a bounded number of lines.
"""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import time

from nodes.css.client import CssClient
from nodes.css.probe import control, status

LIMITS = ["--max-conns-per-addr", "64", "--frame-timeout", "2",
          "--max-pending-bytes", str(32 << 20)]


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _open(addr: tuple[str, int], src: str) -> tuple | None:
    try:
        return await asyncio.wait_for(asyncio.open_connection(*addr, local_addr=(src, 0)), 5)
    except (OSError, TimeoutError):
        return None


async def _closed_by_server(r: asyncio.StreamReader, timeout: float) -> bool:
    try:
        await asyncio.wait_for(r.read(), timeout)
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


async def _serves(cell, leader: int) -> None:
    t0 = time.monotonic()
    st = await status(cell.tcp(leader), timeout=3)
    assert st["running"]
    rep = await control(cell.name, leader, {"t": "status"}, timeout=3)
    assert rep["ok"]
    async with CssClient(cell.addrs(), request_timeout=10) as cl:
        await cl.write("limits/ok", b"1")
    assert time.monotonic() - t0 < 8


def test_slow_clients_are_capped(cell) -> None:
    cell.extra = LIMITS
    cell.start_all(init=True)

    async def go() -> None:
        leader = await cell.wait_leader()
        addr = cell.tcp(leader)
        # The burst arrives while the member's loop is busy for a moment (here: stopped for
        # 0.3 s), as on a loaded machine: the kernel must queue every handshake, or the
        # connections beyond its backlog reach the member only after TCP's 1 s retries.
        pid = cell.procs[leader].pid
        t0 = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        resume = asyncio.get_running_loop().call_later(0.3, os.kill, pid, signal.SIGCONT)
        try:
            idle = [c for c in await asyncio.gather(*(_open(addr, "127.0.0.9")
                                                      for _ in range(300))) if c]
            await asyncio.sleep(max(0.0, 0.3 - (time.monotonic() - t0)))
        finally:
            resume.cancel()
            os.kill(pid, signal.SIGCONT)
        assert len(idle) == 300
        partial = [c for c in await asyncio.gather(*(_open(addr, "127.0.0.10")
                                                     for _ in range(100))) if c]
        for _r, w in partial:
            w.write(b"\x00\x00")  # two bytes of a frame header, then nothing
        closed = await asyncio.gather(*(_closed_by_server(r, 1.0) for r, _w in idle))
        held = closed.count(False)
        assert held <= 64, f"{held} idle connections held from one address"
        await _serves(cell, leader)
        # the partial frames time out (frame_timeout 2 s); the idle ones are left alone
        closed_p = await asyncio.gather(*(_closed_by_server(r, 6.0) for r, _w in partial))
        assert all(closed_p)
        st = await status(addr)
        assert st["refused"]["per_addr"] >= 300 - 64 + 100 - 64
        assert st["refused"]["frame_timeout"] >= 1
        for _r, w in idle + partial:
            w.close()
        await _serves(cell, leader)
        return leader
    leader = asyncio.run(go())
    lines = cell.log(leader).count("connection refused")
    assert 1 <= lines <= 25, f"{lines} log lines for refused connections"


def test_half_sent_large_frames_are_bounded(cell) -> None:
    cell.extra = LIMITS
    cell.start_all(init=True)

    async def go() -> None:
        leader = await cell.wait_leader()
        addr = cell.tcp(leader)
        pid = cell.procs[leader].pid
        base = _rss_kb(pid)
        peak = base
        conns = []
        for i in range(300):
            c = await _open(addr, f"127.0.0.{20 + i // 60}")
            if c is None:
                continue
            r, w = c
            try:
                w.write(struct.pack(">I", (1 << 20) - 8) + b"x" * (768 << 10))
            except OSError:
                pass
            conns.append((r, w))
            if i % 30 == 0:
                peak = max(peak, _rss_kb(pid))
        for _ in range(20):
            peak = max(peak, _rss_kb(pid))
            await asyncio.sleep(0.05)
        await _serves(cell, leader)
        peak = max(peak, _rss_kb(pid))
        st = await status(addr)
        assert st["refused"]["pending_bytes"] >= 1
        # 300 x 768 KiB were sent; the member holds at most max_pending_bytes (32 MiB) of them
        assert peak - base < 120 * 1024, f"leader grew by {(peak - base) // 1024} MiB"
        closed = await asyncio.gather(*(_closed_by_server(r, 6.0) for r, _w in conns))
        assert all(closed)
        for _r, w in conns:
            w.close()
        await _serves(cell, leader)
    asyncio.run(go())
