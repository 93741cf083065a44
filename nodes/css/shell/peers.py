"""Member transport of the shell: authenticated UDP datagrams and member TCP links (spec 2.3).

Every outgoing member message is signed; every incoming one is checked before it is decoded.
A datagram or frame without a valid tag is dropped and counted (`auth_failures`), so a
non-member can make a member neither answer nor send anything anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from typing import Any

from ..core.peerschema import BadPeer, check_peer
from ..core.types import Peer, Persist, Send
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
        cached = self.sent_cache
        if cached is not None and cached[0] is msg:
            data = cached[1]  # the same message to every peer (_send_all): encoded once
        else:
            data = self.auth.sign(pack(env))
            self.sent_cache = (msg, data)
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

    # ---- datagrams released by an fsync, sent by the writer thread ---------------------------
    def open_direct(self) -> None:
        """A second UDP socket on the member's own address, for the writer thread: a
        follower's ACCEPTED then leaves right after its fsync, without waiting for the event
        loop to be scheduled again (on a busy machine that wait cost more than the fsync).
        Receivers tell members by the signed envelope, not by the source port."""
        sock = self.udp.get_extra_info("socket") if self.udp is not None else None
        if sock is None:
            return
        host = self.file_members[self.no]["udp"][0]
        try:
            s = socket.socket(sock.family, socket.SOCK_DGRAM)
            s.bind((host, 0))
            s.settimeout(0.05)  # a full send buffer must not hold the writer: loss is normal
        except OSError as e:
            log.warning("no direct datagram socket (%s): gated sends go through the loop", e)
            return
        self.direct_sock = s

    def take_direct(self, batch: list) -> list[tuple[bytes, tuple]]:
        """Remove from the gated actions the member datagrams that the fsync of `batch`
        releases, signed and addressed, for the writer thread to send after that fsync. None
        under test hooks that drop or delay (those go through send_peer)."""
        if self.direct_sock is None or self.hooks["drop"] or self.hooks["delay"] \
                or not self.gated:
            return []
        top = max((a.token for a in batch if isinstance(a, Persist) and not a.lazy),
                  default=0)
        if not top or any(not isinstance(a, Persist) for a in batch):
            return []
        out: list[tuple[bytes, tuple]] = []
        keep = []
        me = self.r.px.no
        for t, a in self.gated:
            m = self.r.addr.get(a.to) if isinstance(a, Send) and t <= top and a.to != me \
                else None
            if m is not None:
                data = self.auth.sign(pack(self._envelope(a.msg)))
                if len(data) <= UDP_MAX:
                    out.append((data, tuple(m["udp"])))
                    continue
            keep.append((t, a))
        if out:
            self.gated = keep
        return out

    def send_direct(self, sends: list[tuple[bytes, tuple]]) -> None:
        """Writer thread, after the fsync: a datagram lost here is like one lost on the wire
        (the leader retransmits)."""
        for data, addr in sends:
            try:
                self.direct_sock.sendto(data, addr)
                self.direct_sent += 1
            except OSError:
                pass

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
