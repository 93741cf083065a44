"""Status probe of CSS members: over the client port, the control socket, or the data dir.

Public API (used by the agent's `status css` and the admin's `status css --long`):
- `await status(addr, timeout)` -> the member's status map (see docs/css-protocol.md).
- `await member_status(cell, no, members=None, timeout)` -> the status map with `running: True`,
  or for a member that does not answer `{running: False, cell, no, next_seq}` where next_seq comes
  from its SHUTDOWN marker (0: no data directory, None: no marker, i.e. crashed).
- `await cell_status(cell, timeout)` -> [member_status for every member of the config file].
- `await control(cell, no, msg, timeout)` -> reply of the owner-only control socket.
- `await replace(addrs, no, new_member_id, expect_cfg=None)` -> {cfg}: promote a learner.
- `await remove_learner(addrs, member_id=..., no=..., expect_cfg=None)` -> {cfg, removed,
  member_id}: abort a replace before REPLACE is decided (see CssClient.remove_learner).
- `await leader_request(addrs, {"t": "config"})` -> the replicated configuration.
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
        info = rep.get("info")
        info = dict(info) if isinstance(info, dict) else {}
        if "leader" in rep:  # ENOT_LEADER's redirect hint sits beside `info`, not in it
            info.setdefault("leader", rep.get("leader"))
        raise RequestError(rep.get("err", "EPROTO"), rep.get("msg", "") or str(rep.get("info", "")),
                           info)
    return rep


def _hint(e: RequestError) -> tuple[str, int] | None:
    """The leader's client endpoint from an ENOT_LEADER answer, if it is a plausible one."""
    hint = e.info.get("leader") if isinstance(e.info, dict) else None
    tcp = hint.get("tcp") if isinstance(hint, dict) else None
    if not isinstance(tcp, (list, tuple)) or len(tcp) != 2:
        return None
    host, port = tcp
    if not isinstance(host, str) or not 0 < len(host) <= 255 or isinstance(port, bool) \
            or not isinstance(port, int) or not 0 < port < 65536:
        return None
    return host, port


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


async def leader_request(addrs: list[tuple[str, int]], msg: dict, timeout: float = 10.0) -> Any:
    """Send an admin request (`replace`, `config`) to whichever member leads; follow hints."""
    deadline = asyncio.get_event_loop().time() + timeout
    i = 0
    target: tuple[str, int] | None = None
    while asyncio.get_event_loop().time() < deadline:
        addr = target or addrs[i % len(addrs)]
        target = None
        try:
            return await request(addr, msg, max(0.1, deadline - asyncio.get_event_loop().time()))
        except RequestError as e:
            if e.code not in ("ENOT_LEADER", "ESTOPPING"):
                raise
            # the leader may be a member the caller does not list (the one being replaced)
            hint = _hint(e) if e.code == "ENOT_LEADER" else None
            if hint is not None and hint != addr:
                target = hint
        except (OSError, TimeoutError, ConnectionError):
            pass
        i += 1
        await asyncio.sleep(0.05)
    raise TimeoutError("no leader answered")


async def replace(addrs: list[tuple[str, int]], no: int, new_member_id: str,
                  expect_cfg: int | None = None, timeout: float = 30.0) -> dict:
    """Promote the caught-up learner `new_member_id` to member `no` (REPLACE, then FINALIZE).
    Returns {cfg: new configuration version}; RequestError ENOT_CAUGHT_UP, EQUORUM_AT_RISK,
    ECONFIG_CHANGED, EBUSY or EINVAL when refused."""
    msg: dict = {"t": "replace", "no": no, "new": new_member_id}
    if expect_cfg is not None:
        msg["expect_cfg"] = expect_cfg
    return await leader_request(addrs, msg, timeout)


async def remove_learner(addrs: list[tuple[str, int]], member_id: str | None = None,
                         no: int | None = None, expect_cfg: int | None = None,
                         timeout: float = 30.0) -> dict:
    """Remove a learner (by member id, or the learner joining as line `no`) from the replicated
    configuration; its member id is retired. Returns {cfg, removed, member_id}; RequestError
    ENOT_LEARNER, ECONFIG_CHANGED, EBUSY or EINVAL when refused (see docs/css-protocol.md)."""
    if (member_id is None) == (no is None):
        raise ValueError("give exactly one of member_id and no")
    msg: dict = {"t": "remove_learner"}
    msg.update({"member_id": member_id} if member_id is not None else {"no": no})
    if expect_cfg is not None:
        msg["expect_cfg"] = expect_cfg
    return await leader_request(addrs, msg, timeout)
