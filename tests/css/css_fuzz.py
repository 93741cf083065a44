"""Hypothesis strategies for hostile client frames: every op, fields of any msgpack type."""

from __future__ import annotations

import socket
import struct

import msgpack
from hypothesis import strategies as st

from nodes.css.core.validate import OPS

ENVELOPE = ("id", "sid", "tok", "seq", "ack", "client")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 64) - 1),
    st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=20),
    st.sampled_from(["R", "W", "a", "a/b", "", "..", "x" * 600]))
values = st.recursive(scalars, lambda ch: st.one_of(
    st.lists(ch, max_size=3), st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-99, 99)), ch,
                                              max_size=3)), max_leaves=6)


@st.composite
def frames(draw: st.DrawFn) -> dict:
    """A request of a known (sometimes unknown) op whose fields have random types."""
    op = draw(st.sampled_from([*OPS, "frobnicate"]))
    names = list(OPS.get(op, {})) + list(ENVELOPE)
    msg: dict = {"v": 1, "t": op}
    for k in draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True)):
        msg[k] = draw(values)
    return msg


def send_frames(addr: tuple[str, int], msgs: list[dict], timeout: float = 10.0) -> list[dict]:
    """Send each frame on one connection and read one reply per frame (blocking socket)."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        out = []
        for m in msgs:
            body = msgpack.packb(m, use_bin_type=True)
            s.sendall(struct.pack(">I", len(body)) + body)
            out.append(_read_reply(s))
        return out
    finally:
        s.close()


def _read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the member")
        buf += chunk
    return buf


def _read_reply(s: socket.socket) -> dict:
    while True:
        (n,) = struct.unpack(">I", _read_exact(s, 4))
        msg = msgpack.unpackb(_read_exact(s, n), raw=False, strict_map_key=False)
        if msg.get("t") != "event":
            return msg
