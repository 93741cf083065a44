"""Asking a running member for its status, or telling it to stop, on its control socket.

The control socket is owner-only and exempt from the client port's limits, so it answers even
when the client port is saturated. Replies are hostile: one bounded frame, a map, checked."""

from __future__ import annotations

import asyncio
import os
import stat
from typing import Any

from nodes.css.errors import CssError
from nodes.css.wire import frame, read_frame, unpack

from .errors import Failed, TimedOut, clean


async def _control(path: str, msg: dict, timeout: float) -> Any:
    async def go() -> Any:
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(frame({"v": 1, "id": 1, **msg}))
            await writer.drain()
            body = await read_frame(reader)
            if body is None:
                raise ConnectionError("closed before the reply")
            rep = unpack(body)
            if not rep.get("ok"):
                err = rep.get("err")
                raise Failed(f"control socket answered {clean(err, 40)}")
            return rep.get("res")
        finally:
            writer.close()
    return await asyncio.wait_for(go(), timeout)


def control(path: str, msg: dict, timeout: float) -> Any:
    """One request on a member's control socket; TimedOut or Failed with the reason."""
    try:
        st = os.lstat(path)
    except OSError:
        raise Failed(f"{path}: no control socket") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise Failed(f"{path}: not a socket")
    try:
        return asyncio.run(_control(path, msg, timeout))
    except Failed:
        raise
    except TimeoutError:
        raise TimedOut(f"{path}: no answer within {timeout:g} s") from None
    except (OSError, ConnectionError, CssError) as e:
        raise Failed(f"{path}: {e.__class__.__name__}: {clean(e, 200)}") from None


def status(path: str, timeout: float = 3.0) -> dict:
    res = control(path, {"t": "status"}, timeout)
    if not isinstance(res, dict):
        raise Failed(f"{path}: status is not a map")
    return res


def tcp_status(addr: tuple[str, int], timeout: float = 2.0) -> dict:
    """Status of a member on its client port (another host's member, e.g. the leader)."""
    from nodes.css.probe import status as css_status

    try:
        res = asyncio.run(css_status(addr, timeout))
    except (TimeoutError, OSError, ConnectionError, CssError) as e:
        raise Failed(f"{addr[0]}:{addr[1]}: {e.__class__.__name__}") from None
    if not isinstance(res, dict):
        raise Failed(f"{addr[0]}:{addr[1]}: status is not a map")
    return res
