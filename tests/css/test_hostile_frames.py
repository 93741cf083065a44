"""Issue 11, hostile input: wrongly typed client fields are answered EPROTO, never crash a member."""

from __future__ import annotations

import asyncio

from css_fuzz import frames, send_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.css.client import CssClient
from nodes.css.probe import status


def _alive(cell) -> None:
    for no, p in cell.procs.items():
        assert p.poll() is None, f"member {no} died: {cell.log(no)[-2000:]}"


def test_wrongly_typed_fields_get_eproto(running_cell) -> None:
    """The frames of the report: each crashed a member; three took the cell down."""
    cell = running_cell
    bad = [{"v": 1, "t": "open", "id": 1, "tok": [], "timeout_ms": 5000},
           {"v": 1, "t": "keepalive", "id": 2, "sid": {}, "tok": "t"},
           {"v": 1, "t": "write", "id": 3, "sid": 1, "tok": {"a": 1}, "seq": 1, "name": "x",
            "data": b""},
           {"v": 1, "t": "lock", "id": 4, "sid": 1, "tok": "t", "seq": [1], "name": "x",
            "mode": "W"},
           {"v": 1, "t": "read", "id": 5, "name": 17},
           {"v": 1, "t": "open", "id": [1, 2], "tok": "ok"}]

    async def go() -> None:
        leader = await cell.wait_leader()
        for no in [leader, *[n for n in range(3) if n != leader]]:
            reps = await asyncio.to_thread(send_frames, cell.tcp(no), bad)
            for msg, rep in zip(bad, reps, strict=True):
                assert rep["ok"] is False and rep["err"] == "EPROTO", (msg, rep)
                assert rep["id"] == (msg["id"] if isinstance(msg["id"], int) else None)
            assert "tok" in reps[0]["msg"] and "sid" in reps[1]["msg"]
        _alive(cell)
        async with CssClient(cell.addrs()) as cl:
            await cl.write("still", b"alive")
            assert (await cl.read("still"))["data"] == b"alive"
        _alive(cell)
    asyncio.run(go())


def test_frame_fuzzer_cell_survives(running_cell) -> None:
    """Random ops with fields of random types: every frame gets a reply; no member dies."""
    cell = running_cell
    leader = asyncio.run(cell.wait_leader())
    seen: dict[str, int] = {}

    @settings(max_examples=60, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(frames(), min_size=1, max_size=8))
    def fuzz(msgs: list[dict]) -> None:
        for i, m in enumerate(msgs):
            m["id"] = i
        reps = send_frames(cell.tcp(leader), msgs)
        assert len(reps) == len(msgs)
        for rep in reps:
            assert rep.get("t") == "reply" and isinstance(rep.get("ok"), bool), rep
            if not rep["ok"]:
                seen[rep["err"]] = seen.get(rep["err"], 0) + 1

    fuzz()
    _alive(cell)
    assert seen.get("EPROTO", 0) > 20, seen  # the fuzzer did reach the type checks

    async def after() -> None:
        async with CssClient(cell.addrs()) as cl:
            await cl.write("after-fuzz", b"ok")
        sts = [await status(cell.tcp(n)) for n in range(3)]
        assert len({s["commit"] >= 1 for s in sts}) == 1
    asyncio.run(after())
    _alive(cell)
