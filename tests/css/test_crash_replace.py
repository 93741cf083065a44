"""Issue 11 item 2: crash points during a configuration change, one per phase of replace.

The leader is armed to die while writing (or right after applying) the add_learner, replace
or finalize entry; it is restarted, the replace is retried (it is idempotent) and completes,
and the workload's history stays linearizable with no acknowledged write lost."""

from __future__ import annotations

import asyncio
import time

import pytest
from css_joiner import Joiner
from css_workload import Workload, verify

from nodes.css.errors import RequestError
from nodes.css.probe import control, replace

PHASES = [("replace_before_accept", "add_learner"), ("replace_before_accept", "replace"),
          ("replace_after_apply", "replace"), ("replace_before_accept", "finalize")]


async def _replace_retrying(cell, extra_addr, no: int, mid: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await replace(cell.addrs() + [extra_addr], no, mid, timeout=10)
        except (RequestError, TimeoutError, OSError) as e:
            code = getattr(e, "code", type(e).__name__)
            assert code in ("ENOT_CAUGHT_UP", "EBUSY", "TimeoutError", "EQUORUM_AT_RISK",
                            "ConnectionError"), e
            assert time.monotonic() < deadline, f"replace never completed: {e}"
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("point,kind", PHASES)
def test_leader_crash_in_each_phase_of_replace(running_cell, tmp_path, point: str,
                                               kind: str) -> None:
    cell = running_cell
    leader = asyncio.run(cell.wait_leader())
    k = (leader + 1) % 3  # the member replaced; the leader is the one that crashes
    j = Joiner(cell, tmp_path, "127.0.0.4", no=k)
    w = Workload(cell.addrs() + [j.addr], seed=len(point) * 7 + len(kind))

    async def died() -> None:
        p = cell.procs[leader]
        deadline = time.monotonic() + 60
        while p.poll() is None:
            # the log (whole: a tuple's repr would be cut short) says whether it still led
            assert time.monotonic() < deadline, ("the leader never reached its crash point\n"
                                                 + cell.log(leader)[-3000:])
            await asyncio.sleep(0.05)
        assert p.returncode == 99, cell.log(leader)[-2000:]
        cell.procs.pop(leader)
        await asyncio.sleep(0.3)
        cell.start(leader)

    async def faults() -> None:
        await asyncio.sleep(0.8)
        assert (await control(cell.name, leader, {"t": "crash_at", "point": point,
                                                  "kind": kind}))["ok"]
        j.start()
        await asyncio.to_thread(j.ready)
        if kind == "add_learner":
            await died()
        mid = await j.admitted(timeout=60)
        crash = None if kind == "add_learner" else asyncio.create_task(died())
        res = await _replace_retrying(cell, j.addr, k, mid)
        if crash is not None:
            await crash
        assert res["cfg"] >= 3
        old = cell.procs.get(k)
        deadline = time.monotonic() + 30
        while old is not None and old.poll() is None:  # the replaced member learns REMOVED
            assert time.monotonic() < deadline, "the replaced member did not stop"
            await asyncio.sleep(0.1)
        cell.procs.pop(k, None)
        await asyncio.sleep(1.0)

    try:
        asyncio.run(w.run(faults))
        verify(w)
    finally:
        j.close()
