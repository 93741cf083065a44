"""Member transport of the shell: authenticated UDP datagrams and member TCP links (spec 2.3).

Every outgoing member message is signed; every incoming one is checked before it is decoded.
A datagram or frame without a valid tag is dropped and counted (`auth_failures`), so a
non-member can make a member neither answer nor send anything anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from ..core.peerschema import BadPeer, check_peer
from ..core.types import Peer
from ..errors import ProtocolError
from ..wire import HDR, pack, unpack

UDP_MAX = 8192
log = logging.getLogger("css.peers")


class UdpProto(asyncio.DatagramProtocol):
    def __init__(self, node: Any) -> None:
        self.node = node

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.node.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable from a stopped peer: loss is normal


class PeerLink:
    """Outgoing member TCP link: signed frames."""

    def __init__(self, writer: asyncio.StreamWriter, auth: Any) -> None:
        self.writer, self.auth = writer, auth
        self.closed = False

    def send(self, msg: dict) -> None:
        if self.closed:
            return
        body = self.auth.sign(pack(msg))
        try:
            self.writer.write(HDR.pack(len(body)) + body)
        except Exception:
            self.closed = True


class PeerMixin:
    """Part of Node: see node.py for the attributes used here."""

    def _envelope(self, msg: dict) -> dict:
        # envelope of spec 2.3: the sender is `no` (member number) and `from` (member id)
        return {**msg, "cell_id": self.cell_id, "no": self.r.px.no, "from": self.member_id}

    def send_peer(self, to: int, msg: dict) -> None:
        m = self.r.addr.get(to)
        if m is None or self._hook_drop(to, "out"):
            return
        env = self._envelope(msg)
        data = self.auth.sign(pack(env))
        if len(data) <= UDP_MAX and self.udp is not None:
            self._udp_send(to, data, tuple(m["udp"]))
        else:
            self.loop.create_task(self._send_tcp(to, env))

    def _udp_send(self, to: int, data: bytes, addr: tuple) -> None:
        delay = self.hooks["delay"].get(to) or self.hooks["delay"].get(-1)
        if delay:
            self.loop.call_later(delay, self.udp.sendto, data, addr)
        else:
            self.udp.sendto(data, addr)

    async def _send_tcp(self, to: int, env: dict) -> None:
        link = self.peer_links.get(to)
        if link is None or link.closed:
            try:
                host, port = self.r.addr[to]["tcp"]
                _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            except Exception:
                return
            link = PeerLink(w, self.auth)
            link.send(self._envelope({"t": "PEER_HELLO"}))
            self.peer_links[to] = link
        link.send(env)

    def _accept_peer(self, msg: dict) -> int | None:
        """The sender's Paxos id, -1 for a joiner's admission request, None to drop."""
        frm = msg.get("no")
        if msg.get("cell_id") != self.cell_id or not isinstance(frm, int) \
                or isinstance(frm, bool):
            self.dropped += 1
            return None
        if msg.get("t") in ("JOIN", "PEER_HELLO") and frm not in self.r.addr:
            return -1  # a joining member has no id yet (spec 2.3: the admission request)
        if frm not in self.r.addr or msg.get("from") != self.r.addr[frm].get("member_id"):
            self.dropped += 1
            return None
        return frm

    def peer_message(self, data: bytes) -> dict | None:
        """Check the tag, decode, check every field (core/peerschema.py); None (counted) if
        any of these fails. A signed message is not a well-formed one."""
        body = self.auth.verify(data)
        if body is None:
            self.auth_failures += 1
            return None
        try:
            msg = unpack(body)
        except ProtocolError:
            self.peer_invalid += 1
            return None
        try:
            check_peer(msg)
        except BadPeer as e:
            self.peer_invalid += 1
            log.warning("invalid member message %s from member %s dropped: %s",
                        str(msg.get("t"))[:40], str(msg.get("no"))[:20], e)
            return None
        return msg

    def on_datagram(self, data: bytes, addr: Any) -> None:
        msg = self.peer_message(data)
        if msg is None:
            return
        frm = self._accept_peer(msg)
        if frm is None or self.paused() or self._hook_drop(frm, "in"):
            # hold (--init wait): a data directory re-created under a live identity must not
            # promise or accept anything before the genesis check refuses it
            return
        self.peer_in(frm, msg)

    def peer_in(self, frm: int, msg: dict) -> None:
        """An accepted member message: the shell's own (snapshot transfer) or the core's."""
        if msg.get("t") == "SNAPSHOT_AVAILABLE":
            self.on_snapshot_offer(frm, msg)
        else:
            self.feed(Peer(frm, msg))

    def _hook_drop(self, peer: int, direction: str) -> bool:
        rule = self.hooks["drop"].get((peer, direction)) or self.hooks["drop"].get((-1, direction))
        return bool(rule) and random.random() < rule
