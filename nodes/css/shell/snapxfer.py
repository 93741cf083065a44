"""Chunked, resumable snapshot transfer to lagging members and learners (spec 2.7).

Source: asked for log it no longer keeps, a member offers its newest durable snapshot file,
`SNAPSHOT_AVAILABLE {slot, size, crc}` (crc: CRC32 of the whole file). The offer opens the file
and keeps the descriptor (the file is pinned: compaction may unlink it, the transfer still
reads it). The receiver connects to the source's TCP port as a member (signed `PEER_HELLO`) and
asks `SNAP_GET {slot, off, n}` for 256 KiB chunks (a few in flight); the source answers
`SNAP_CHUNK {slot, off, data}` on the same connection, reading with pread off the event loop.

Receiver: chunks are appended to `snap/.tmp-recv-<slot>-<crc>`; after a dropped connection or a
stall (10 s without a chunk) it reconnects and goes on from the file's length, and gives up
after a few attempts (the next offer, possibly from another member, resumes the same file when
slot and crc match). A complete file is checked (size, CRC32, then the snapshot's own checksum)
and handed to the core as the state of `slot`; the core installs it as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from typing import Any

import msgpack

from ..core.types import Peer
from ..wire import HDR, MAX_PEER_FRAME, pack
from .peers import PeerLink

log = logging.getLogger("css.snapxfer")
CHUNK = 256 << 10
WINDOW = 4  # chunks in flight
STALL = 10.0
ATTEMPTS = 5
PIN_IDLE = 120.0  # a pinned snapshot nobody read for this long is released


def _file_crc(path: str) -> tuple[int, int]:
    crc, size = 0, 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return size, crc
            crc = zlib.crc32(b, crc)
            size += len(b)


class SnapMixin:
    """Part of Node: see node.py for the attributes used here."""

    def snap_init(self) -> None:
        self.pinned: dict[int, list] = {}  # slot -> [fd, size, crc, last used]
        self.pinning: set[int] = set()
        self.fetch: dict | None = None  # the transfer in progress (status)
        self.fetch_task: asyncio.Task | None = None
        self.snap_stats = {"offered": 0, "chunks_served": 0, "received": 0, "resumes": 0}

    # ---- source ------------------------------------------------------------------------------
    def offer_snapshot(self, to: int) -> None:
        snaps = self.st._snaps()
        if not snaps:
            return
        slot, path = snaps[0]
        pin = self.pinned.get(slot)
        if pin is not None:
            pin[3] = time.monotonic()
            self.send_peer(to, {"t": "SNAPSHOT_AVAILABLE", "slot": slot, "size": pin[1],
                                "crc": pin[2]})
            self.snap_stats["offered"] += 1
            return
        if slot in self.pinning:
            return
        self.pinning.add(slot)
        self.loop.create_task(self._pin(slot, path, to))

    async def _pin(self, slot: int, path: str, to: int) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            size, crc = await self.loop.run_in_executor(None, _file_crc, path)
        except OSError:
            return  # replaced meanwhile: the next request gets the newer one
        finally:
            self.pinning.discard(slot)
        self.pinned[slot] = [fd, size, crc, time.monotonic()]
        now = time.monotonic()
        for s in [s for s, p in self.pinned.items() if s != slot and now - p[3] > PIN_IDLE]:
            os.close(self.pinned.pop(s)[0])
        self.offer_snapshot(to)

    async def serve_chunk(self, writer: asyncio.StreamWriter, msg: dict) -> None:
        slot, off, n = msg.get("slot"), msg.get("off"), msg.get("n")
        pin = self.pinned.get(slot) if isinstance(slot, int) else None
        if pin is None or not isinstance(off, int) or not isinstance(n, int) or off < 0:
            reply: dict = {"t": "SNAP_CHUNK", "slot": slot, "off": off, "err": "gone"}
        else:
            pin[3] = time.monotonic()
            data = await self.loop.run_in_executor(None, os.pread, pin[0],
                                                   max(0, min(n, CHUNK)), off)
            reply = {"t": "SNAP_CHUNK", "slot": slot, "off": off, "data": data}
            self.snap_stats["chunks_served"] += 1
            cut = self.hooks.get("snap_cut")
            if cut is not None:
                self.hooks["snap_cut"] = cut - 1
                if cut <= 0:  # test hook: this transfer loses its connection here, once
                    self.hooks["snap_cut"] = None
                    writer.transport.abort()
                    return
        body = self.auth.sign(pack(self._envelope(reply)))
        writer.write(HDR.pack(len(body)) + body)

    # ---- receiver ----------------------------------------------------------------------------
    def on_snapshot_offer(self, frm: int, msg: dict) -> None:
        slot, size, crc = msg.get("slot"), msg.get("size"), msg.get("crc")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (slot, size, crc)):
            return
        if slot <= self.r.px.delivered or size <= 0 or self.paused():
            return
        if self.fetch_task is not None and not self.fetch_task.done():
            return  # one transfer at a time; it asks again if this one fails
        self.fetch = {"slot": slot, "size": size, "crc": crc, "from": frm, "received": 0,
                      "resumes": 0}
        self.fetch_task = self.loop.create_task(self._fetch(frm, slot, size, crc))

    async def _fetch(self, frm: int, slot: int, size: int, crc: int) -> None:
        tmp = os.path.join(self.st.snap_dir, f".tmp-recv-{slot:020d}-{crc:08x}")
        for old in os.listdir(self.st.snap_dir):
            if old.startswith(".tmp-recv-") and os.path.join(self.st.snap_dir, old) != tmp:
                os.unlink(os.path.join(self.st.snap_dir, old))  # an abandoned transfer
        f = open(tmp, "ab")
        try:
            for attempt in range(ATTEMPTS):
                have = f.tell()
                if have >= size:
                    break
                if have:
                    self.snap_stats["resumes"] += 1
                    self.fetch["resumes"] += 1
                    log.info("snapshot %d: resuming at %d of %d bytes (attempt %d)", slot,
                             have, size, attempt + 1)
                try:
                    await self._fetch_from(frm, slot, size, f)
                except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError,
                        ValueError) as e:
                    log.warning("snapshot %d transfer from %s interrupted: %s", slot, frm,
                                e or type(e).__name__)
                    await asyncio.sleep(0.2)
            f.flush()
            if f.tell() != size:
                return
        finally:
            f.close()
        blob = await self.loop.run_in_executor(None, self._check_received, tmp, slot, size, crc)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if blob is None:
            log.warning("snapshot %d from %s does not verify; discarded", slot, frm)
            return
        self.snap_stats["received"] += 1
        log.info("snapshot %d received from %s (%d bytes, %d resumes)", slot, frm, size,
                 self.fetch["resumes"])
        self.feed(Peer(frm, {"t": "SNAPSHOT", "slot": slot, "blob": blob}))

    async def _fetch_from(self, frm: int, slot: int, size: int, f: Any) -> None:
        host, port = self.r.addr[frm]["tcp"]
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), STALL)
        link = PeerLink(writer, self.auth)
        try:
            link.send(self._envelope({"t": "PEER_HELLO"}))
            nxt = f.tell()  # next offset to ask for
            want = nxt  # next offset to write
            while want < size:
                while nxt < size and nxt - want < WINDOW * CHUNK:
                    link.send(self._envelope({"t": "SNAP_GET", "slot": slot, "off": nxt,
                                              "n": CHUNK}))
                    nxt += CHUNK
                msg = await asyncio.wait_for(self._read_signed(reader), STALL)
                if msg.get("t") != "SNAP_CHUNK" or msg.get("slot") != slot:
                    continue
                if msg.get("err") or msg.get("off") != want or not isinstance(
                        msg.get("data"), bytes) or not msg["data"]:
                    raise ValueError(f"bad chunk at {msg.get('off')}: {msg.get('err')}")
                await self.loop.run_in_executor(None, f.write, msg["data"])
                want += len(msg["data"])
                self.fetch["received"] = want
        finally:
            writer.transport.abort()

    async def _read_signed(self, reader: asyncio.StreamReader) -> dict:
        while True:
            (n,) = HDR.unpack(await reader.readexactly(4))
            if n > MAX_PEER_FRAME:
                raise ValueError("oversized frame")
            msg = self.peer_message(await reader.readexactly(n))
            if msg is not None:
                return msg

    @staticmethod
    def _check_received(path: str, slot: int, size: int, crc: int) -> bytes | None:
        got_size, got_crc = _file_crc(path)
        if (got_size, got_crc) != (size, crc):
            return None
        try:
            with open(path, "rb") as f:
                d = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
            if d.get("slot") != slot or zlib.crc32(d["blob"]) != d["crc"]:
                return None
            return d["blob"]
        except Exception:
            return None

    def snap_status(self) -> dict:
        return {"snapshot_transfer": {**self.snap_stats, "current": self.fetch}}
