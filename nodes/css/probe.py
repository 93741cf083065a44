"""Status probe of CSS members: over the client port, the control socket, or the data dir.

Public API (used by the agent's `status css` and the admin's `status css --long`):
- `await status(addr, timeout)` -> the member's status map (see docs/css-protocol.md).
- `await member_status(cell, no, members=None, timeout)` -> the status map with `running: True`,
  or for a member that does not answer `{running: False, cell, no, next_seq}` where next_seq comes
  from its SHUTDOWN marker (0: no data directory, None: no marker, i.e. crashed).
- `await cell_status(cell, timeout)` -> [member_status for every member of the config file].
- `await control(cell, no, msg, timeout)` -> reply of the owner-only control socket.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from .config import data_dir, load_cell_config, run_dir
from .errors import RequestError
from .shell.storage import Storage
from .wire import frame, read_frame, unpack


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, msg: dict) -> dict:
    writer.write(frame(msg))
    await writer.drain()
    body = await read_frame(reader)
    if body is None:
        raise ConnectionError("connection closed before the reply")
    rep = unpack(body)
    if not rep.get("ok"):
        raise RequestError(rep.get("err", "EPROTO"), rep.get("msg", ""))
    return rep


async def request(addr: tuple[str, int], msg: dict, timeout: float = 2.0) -> Any:
    """One request without a session (status, hello, ping) to one member's client port."""
    async def go() -> Any:
        reader, writer = await asyncio.open_connection(addr[0], addr[1])
        try:
            return (await _call(reader, writer, {"v": 1, "id": 1, **msg})).get("res")
        finally:
            writer.close()
    return await asyncio.wait_for(go(), timeout)


async def status(addr: tuple[str, int], timeout: float = 2.0) -> dict:
    return await request(addr, {"t": "status"}, timeout)


async def control(cell: str, no: int, msg: dict, timeout: float = 5.0) -> dict:
    path = os.path.join(run_dir(), f"paxos-css-{cell}-{no}.sock")

    async def go() -> dict:
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            return await _call(reader, writer, {"v": 1, "id": 1, **msg})
        finally:
            writer.close()
    return await asyncio.wait_for(go(), timeout)


def stopped_status(cell: str, no: int, path: str | None = None) -> dict:
    path = path or data_dir(cell, no)
    st = Storage(path)
    if st.is_empty():
        nxt: int | None = 0
    else:
        marker = st.read_shutdown()
        nxt = marker[0] if marker else None
    return {"running": False, "cell": cell, "no": no, "next_seq": nxt}


async def member_status(cell: str, no: int, members: dict[int, dict] | None = None,
                        timeout: float = 2.0) -> dict:
    members = members or load_cell_config(cell)
    try:
        return await status(tuple(members[no]["tcp"]), timeout)
    except (TimeoutError, OSError, RequestError, ConnectionError):
        return stopped_status(cell, no)


async def cell_status(cell: str, timeout: float = 2.0) -> list[dict]:
    members = load_cell_config(cell)
    return list(await asyncio.gather(*(member_status(cell, n, members, timeout)
                                       for n in sorted(members))))
