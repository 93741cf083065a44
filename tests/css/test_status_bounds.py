"""Issue 11: sessions with long client names made status exceed the 1 MiB frame limit."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

from css_fuzz import send_frames

from nodes.css.client import CssClient
from nodes.css.probe import status


def test_status_stays_within_the_frame_limit(running_cell) -> None:
    cell = running_cell

    async def go() -> None:
        leader = await cell.wait_leader()
        rep = send_frames(cell.tcp(leader), [{"v": 1, "t": "open", "id": 1, "tok": "t" * 20,
                                              "client": {"name": "n" * 600_000}}])[0]
        assert rep["err"] == "EPROTO" and "name" in rep["msg"]
        clients = [CssClient(cell.addrs(), client_name=f"{i}-" + "\u00e9" * 700_000)
                   for i in range(40)]
        try:
            await asyncio.gather(*(c.open() for c in clients))
            st = await status(cell.tcp(leader))
            assert st["clients_total"] == 40 and len(st["clients"]) == 40
            assert all(len(c["name"]) <= 255 for c in st["clients"])
            # paging: 7 at a time, every session exactly once
            seen, after = [], 0
            while True:
                page = (await asyncio.to_thread(send_frames, cell.tcp(leader), [
                    {"v": 1, "t": "status", "id": 1, "clients_after": after,
                     "clients_limit": 7}]))[0]["res"]
                seen += [c["sid"] for c in page["clients"]]
                assert len(page["clients"]) <= 7
                if page["clients_next"] is None:
                    break
                after = page["clients_next"]
            assert sorted(seen) == sorted(c.sid for c in clients)
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    asyncio.run(go())
    r = subprocess.run([sys.executable, "-m", "nodes.css.cli", "--cell", cell.name, "status"],
                       env=cell.env(), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


def _keys(st: dict) -> set[str]:
    """Every field name of a status map, nested maps and list-of-map entries included."""
    out = set()
    for k, v in st.items():
        out.add(k)
        if isinstance(v, dict) and k not in ("init_seen",):  # init_seen is keyed by member
            out |= _keys(v)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            out |= _keys(v[0])
    return out


def test_every_status_field_is_documented(running_cell) -> None:
    """docs/css-protocol.md lists the status fields: a field added without a line there is
    a field operators cannot read about (nodes.md 2.10 lacked four of them)."""
    cell = running_cell

    async def go() -> dict:
        leader = await cell.wait_leader()
        async with CssClient(cell.addrs()) as c:  # one session, so clients has an entry
            await c.write("k", b"v")
            return await status(cell.tcp(leader))

    st = asyncio.run(go())
    assert st["clients"] and st["members"]
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "css-protocol.md"), encoding="utf-8").read()
    section = doc.split("## Status", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"[a-z_]+", section))
    missing = sorted(_keys(st) - documented)
    assert not missing, f"status fields missing from docs/css-protocol.md: {missing}"
