"""Garbage on the member (UDP, TCP) and client ports: dropped or answered, server keeps running."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import msgpack

from nodes.css.client import CssClient
from nodes.css.probe import status
from nodes.css.wire import read_frame, unpack


async def raw_exchange(addr: tuple[str, int], payload: bytes) -> dict | None:
    r, w = await asyncio.open_connection(*addr)
    try:
        w.write(payload)
        await w.drain()
        body = await asyncio.wait_for(read_frame(r, 1 << 20), 3)
        return None if body is None else unpack(body)
    finally:
        w.close()


def frame_raw(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def test_garbage_datagrams_are_dropped(running_cell) -> None:
    cell = running_cell
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = (cell.hosts[0], cell.base)
    payloads = [b"", b"\x00\xff" * 100, os.urandom(3000), msgpack.packb([1, 2, 3]),
                msgpack.packb({"v": 99, "t": "PREPARE"}),
                msgpack.packb({"v": 1, "t": "PREPARE", "cell_id": "other", "no": 1}),
                msgpack.packb({"v": 1, "t": "ACCEPT", "cell_id": cell.cell_id, "no": 1,
                               "from": "forged-id", "b": [99, 1], "s": 1, "val": []}),
                msgpack.packb({"v": 1, "t": "HB", "cell_id": cell.cell_id, "no": 7})]
    for p in payloads * 20:
        s.sendto(p, target)
    s.close()

    async def go() -> None:
        await asyncio.sleep(0.3)
        st = await status(cell.tcp(0))
        # unsigned: every one fails authentication before it is even decoded
        assert st["auth_failures"] >= len(payloads) * 20 - 20  # the empty one may not arrive
        assert st["epoch"] < 99, "a forged ballot must not be taken"
        async with CssClient(cell.addrs()) as cl:
            await cl.write("still", b"alive")
    asyncio.run(go())


def test_bad_client_frames_get_errors(running_cell) -> None:
    addr = running_cell.tcp(0)

    async def go() -> None:
        rep = await raw_exchange(addr, frame_raw(b"\xc1garbage"))
        assert rep["ok"] is False and rep["err"] == "EPROTO"
        rep = await raw_exchange(addr, frame_raw(msgpack.packb({"v": 2, "t": "status"})))
        assert rep["err"] == "EPROTO" and "version" in rep["msg"]
        rep = await raw_exchange(addr, frame_raw(msgpack.packb("just a string")))
        assert rep["err"] == "EPROTO"
        rep = await raw_exchange(addr, frame_raw(msgpack.packb({"v": 1, "t": "frobnicate",
                                                                "id": 5})))
        assert rep["err"] == "EINVAL" and rep["id"] == 5
        rep = await raw_exchange(addr, struct.pack(">I", 1 << 30) + b"x" * 10)
        assert rep["err"] == "EFRAME"
        rep = await raw_exchange(addr, frame_raw(msgpack.packb(
            {"v": 1, "t": "PEER_HELLO", "cell_id": "nope", "no": 1, "from": "x"})))
        assert rep is None  # connection closed, nothing else
        # session requests with nonsense arguments
        leader = await running_cell.wait_leader()
        laddr = running_cell.tcp(leader)
        rep = await raw_exchange(laddr, frame_raw(msgpack.packb(
            {"v": 1, "t": "write", "id": 1, "sid": "x", "seq": None})))
        assert rep["err"] == "EPROTO"
        rep = await raw_exchange(laddr, frame_raw(msgpack.packb(
            {"v": 1, "t": "write", "id": 1, "sid": 12345, "tok": "t", "seq": 1, "name": "a",
             "data": b""})))
        assert rep["err"] == "ESESSION_EXPIRED"
        async with CssClient(running_cell.addrs()) as cl:
            rep = await cl._request({"t": "write", "sid": cl.sid, "tok": cl.tok, "seq": 1,
                                     "ack": 0, "name": "../x", "data": b""})
            assert rep["err"] == "EINVAL"
            rep = await cl._request({"t": "read", "name": 17})
            assert rep["err"] == "EPROTO" and "name" in rep["msg"]
            cl.seq = 1
            await cl.write("ok", b"1")
        st = await status(addr)
        assert st["running"]
    asyncio.run(go())
