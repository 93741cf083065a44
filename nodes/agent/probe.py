"""Asking a running member for its status, or telling it to stop, on its control socket.

The control socket is owner-only and exempt from the client port's limits, so it answers even
when the client port is saturated. Replies are hostile: one bounded frame, a map, checked."""

from __future__ import annotations

import os
import socket
import stat
import time
from typing import Any

from nodes.css.errors import CssError, FrameError
from nodes.css.wire import HDR, MAX_FRAME, frame, unpack

from .errors import Failed, TimedOut, clean


def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    """n bytes before the deadline; TimeoutError past it, ConnectionError at an early end."""
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(min(n - len(buf), 65536))
        if not chunk:
            raise ConnectionError("closed before the reply")
        buf += chunk
    return bytes(buf)


def _control(path: str, msg: dict, timeout: float) -> Any:
    # A plain blocking socket with one deadline for the whole exchange: the same bounds as an
    # asyncio stream with wait_for, without asyncio's start-up cost on every agent call.
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.sendall(frame({"v": 1, "id": 1, **msg}))
        (n,) = HDR.unpack(_recv_exactly(sock, HDR.size, deadline))
        if n > MAX_FRAME:
            raise FrameError(f"EFRAME: frame of {n} bytes exceeds {MAX_FRAME}")
        rep = unpack(_recv_exactly(sock, n, deadline))
    if not rep.get("ok"):
        err = rep.get("err")
        raise Failed(f"control socket answered {clean(err, 40)}")
    return rep.get("res")


def control(path: str, msg: dict, timeout: float) -> Any:
    """One request on a member's control socket; TimedOut or Failed with the reason."""
    try:
        st = os.lstat(path)
    except OSError:
        raise Failed(f"{path}: no control socket") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise Failed(f"{path}: not a socket")
    try:
        return _control(path, msg, timeout)
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
    import asyncio

    from nodes.css.probe import status as css_status

    try:
        res = asyncio.run(css_status(addr, timeout))
    except (TimeoutError, OSError, ConnectionError, CssError) as e:
        raise Failed(f"{addr[0]}:{addr[1]}: {e.__class__.__name__}") from None
    if not isinstance(res, dict):
        raise Failed(f"{addr[0]}:{addr[1]}: status is not a map")
    return res
