"""On-wire encoding: msgpack maps with a protocol version, and length-prefixed frames."""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from . import PROTOCOL
from .errors import FrameError, ProtocolError

MAX_FRAME = 1 << 20  # clients
MAX_PEER_FRAME = 512 << 20  # member links carry snapshots
HDR = struct.Struct(">I")


def pack(msg: dict) -> bytes:
    msg.setdefault("v", PROTOCOL)
    return msgpack.packb(msg, use_bin_type=True)


def unpack(data: bytes) -> dict:
    """Decode one message; raise ProtocolError if it is not a map of a known version."""
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types
        raise ProtocolError(f"undecodable message: {e.__class__.__name__}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a map")
    v = msg.get("v")
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError("message without protocol version")
    if v > PROTOCOL:
        raise ProtocolError(f"EPROTO: unsupported protocol version {v}")
    if not isinstance(msg.get("t"), str):
        raise ProtocolError("message without type")
    return msg


def frame(msg: dict) -> bytes:
    body = pack(msg)
    return HDR.pack(len(body)) + body


async def read_frame(reader: Any, limit: int = MAX_FRAME) -> bytes | None:
    """Return one frame body, None at a clean end of stream; FrameError if oversized."""
    try:
        hdr = await reader.readexactly(4)
    except Exception:
        return None
    (n,) = HDR.unpack(hdr)
    if n > limit:
        raise FrameError(f"EFRAME: frame of {n} bytes exceeds {limit}")
    try:
        return await reader.readexactly(n)
    except Exception:
        return None
