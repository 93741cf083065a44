"""Issue 11 leftover: authenticated member messages were trusted blindly. A message signed with
the cell secret but ill-typed (a ballot "x", a slot of 2**70, a logged command with a map as
session id) crashed the member, and a logged one would crash every member applying it. Now
every field is checked (core/peerschema.py) and bad messages are dropped and counted."""

from __future__ import annotations

import asyncio
import socket
import struct

import msgpack
import pytest
from css_cell import poll_until
from css_fuzz import frames, values
from css_replsim import RSim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.css.client import CssClient
from nodes.css.config import member_id
from nodes.css.core.peerschema import MESSAGES, BadPeer, check_peer
from nodes.css.core.types import Peer
from nodes.css.probe import status
from nodes.css.shell.auth import Auth, load_key

WRITE = {"op": "write", "sid": 512, "tok": "t", "seq": 1, "name": "a", "data": b"x", "w": 1.5}


def malformed(leader: int) -> list[dict]:
    """Signed-but-malformed messages, each of which reached the core before (most crashed it)."""
    b = [10 ** 6, leader]
    return [
        {"t": "HB", "b": "x", "commit": {}, "n": []},
        {"t": "HB", "b": [1], "commit": 1, "n": 1},
        {"t": "HB_ACK", "b": [None, leader], "n": "1"},
        {"t": "PREPARE", "b": b, "fs": []},
        {"t": "ACCEPT", "b": b, "s": (1 << 64) - 1, "val": [], "commit": 0},
        {"t": "ACCEPT", "b": b, "s": 1, "val": "not a list", "commit": 0},
        {"t": "ACCEPT", "b": b, "s": 1, "val": [{"op": 1}], "commit": 0},
        {"t": "ACCEPT", "b": b, "s": 1, "val": [{**WRITE, "sid": {}}], "commit": 0},
        {"t": "ACCEPT", "b": b, "s": 1, "val": [{"op": "_cfg", "kind": "replace",
                                                  "expect": 1, "old": "a", "new": 9,
                                                  "quorums": 3}], "commit": 0},
        {"t": "ACCEPTED", "b": b, "s": -4},
        {"t": "PROMISE", "b": b, "acc": [[1, "b", []]], "dec": 5},
        {"t": "PROMISE", "b": b, "acc": [], "dec": [[1, []], [1 << 40, []]]},
        {"t": "NACK", "b": b, "p": [1, 2, 3]},
        {"t": "LEAVE", "b": None},
        {"t": "CATCHUP_REQ", "lo": "a", "hi": 5},
        {"t": "CATCHUP_REQ", "lo": 1, "hi": 1 << 60},
        {"t": "CATCHUP", "ents": [[1, [{**WRITE, "seq": []}]]], "commit": 1},
        {"t": "CATCHUP", "ents": {"1": []}},
        {"t": "JOIN_OK", "id": 7, "cfg": {"version": "1", "members": []}},
        {"t": "JOIN", "cno": 0, "member_id": ["x"], "udp": "h", "tcp": [1, 2]},
        {"t": "SNAPSHOT", "slot": 10 ** 6, "blob": b"garbage"},
        {"t": "SNAPSHOT_AVAILABLE", "slot": "1", "size": 1, "crc": 1},
        {"t": "SNAP_GET", "slot": 1, "off": -1, "n": 1 << 40},
        {"t": "NO_SUCH_TYPE"},
    ]


def test_malformed_messages_are_refused_and_valid_ones_pass() -> None:
    env = {"v": 1, "cell_id": "c", "no": 0, "from": "m0"}
    for m in malformed(0):
        with pytest.raises(BadPeer):
            check_peer({**env, **m})
    for m in ({"t": "HB", "b": [3, 0], "commit": 5, "n": 2, "ls": 1700000000},
              {"t": "ACCEPT", "b": [3, 0], "s": 6, "val": [WRITE, {"op": "expire", "sid": 5}],
               "commit": 5},
              {"t": "NACK", "b": [3, 0], "p": [0, -1], "alive": False},
              {"t": "JOIN", "cno": 1, "member_id": "abc", "udp": ["127.0.0.1", 1],
               "tcp": ["127.0.0.1", 2], "expect_cfg": None, "extra": "ignored"}):
        assert check_peer({**env, **m})["t"] == m["t"]
    with pytest.raises(BadPeer):
        check_peer({**env, "t": "HB", "b": [1, 0], "n": 1, "cell_id": 5})


def _signed(cell, leader: int, msgs: list[dict]) -> list[bytes]:
    auth = Auth(load_key(cell.key_path))
    env = {"v": 1, "cell_id": cell.cell_id, "no": leader,
           "from": member_id(cell.cell_id, leader)}
    return [auth.sign(msgpack.packb({**env, **m}, use_bin_type=True)) for m in msgs]


def test_signed_malformed_messages_are_dropped_and_counted(running_cell) -> None:
    cell = running_cell
    leader = asyncio.run(cell.wait_leader())
    others = [n for n in range(3) if n != leader]
    bad = malformed(leader)
    before = {n: asyncio.run(status(cell.tcp(n))) for n in range(3)}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # as if from the leader to the followers, and from a follower to the leader
    for n in others:
        for data in _signed(cell, leader, bad):
            s.sendto(data, (cell.hosts[n], cell.base))
    for data in _signed(cell, others[0], bad):
        s.sendto(data, (cell.hosts[leader], cell.base))
    s.close()

    async def go() -> None:
        # the member link (TCP) checks the same way
        r, w = await asyncio.open_connection(*cell.tcp(others[1]))
        frames_ = _signed(cell, leader, [{"t": "PEER_HELLO"}, *bad])
        for body in frames_:
            w.write(struct.pack(">I", len(body)) + body)
        await w.drain()

        async def counted():
            sts = {n: await status(cell.tcp(n)) for n in range(3)}
            grew = {n: sts[n]["peer_invalid"] - before[n]["peer_invalid"] for n in range(3)}
            want = {others[0]: len(bad), others[1]: 2 * len(bad), leader: len(bad)}
            return sts if all(grew[n] >= want[n] for n in range(3)) else None
        sts = await poll_until(counted, what="invalid member messages counted")
        w.close()
        for n in range(3):
            assert cell.procs[n].poll() is None, f"member {n} died: {cell.log(n)[-2000:]}"
            assert sts[n]["auth_failures"] == before[n]["auth_failures"]  # they were signed
            assert sts[n]["epoch"] < 10 ** 6
        async with CssClient(cell.addrs()) as cl:
            await cl.write("after", b"malformed")
            assert (await cl.read("after"))["data"] == b"malformed"
        assert await cell.wait_leader() == leader  # no election was provoked
    asyncio.run(go())
    assert "invalid member message" in cell.log(others[0])


# ---- the decoder under Hypothesis: what passes never makes a replica raise -------------------
def _command(draw: st.DrawFn) -> dict:
    f = draw(frames())
    return {**{k: v for k, v in f.items() if k not in ("t", "v", "id")}, "op": f["t"],
            "w": draw(st.floats(0, 2e9))}


small = st.integers(0, 40)
ballot = st.lists(st.integers(-1, 5), min_size=2, max_size=2)


@st.composite
def field_value(draw: st.DrawFn) -> object:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(small)
    if kind == 1:
        return draw(ballot)
    if kind == 2:
        return [draw(st.sampled_from([{**WRITE}, {"op": "expire", "sid": 512}]))
                for _ in range(draw(st.integers(0, 2)))] if draw(st.booleans()) else \
            [_command(draw)]
    if kind == 3:
        return [[draw(st.integers(1, 40)), draw(ballot), []] for _ in range(draw(
            st.integers(0, 2)))] if draw(st.booleans()) else [[draw(st.integers(1, 40)), []]]
    return draw(values)


FIELDS = {"b", "p", "s", "fs", "n", "commit", "ls", "val", "acc", "dec", "ents", "lo", "hi",
          "slot", "alive", "ahead", "cno", "member_id", "udp", "tcp", "expect_cfg", "id", "cfg",
          "size", "crc", "off", "data", "err", "fwd"}


@st.composite
def peer_messages(draw: st.DrawFn) -> dict:
    t = draw(st.sampled_from([*MESSAGES, "BOGUS"]))
    msg: dict = {"v": 1, "t": t, "cell_id": "sim", "no": draw(st.integers(-1, 3)),
                 "from": draw(st.sampled_from(["g0", "g1", "g2", None]))}
    for k in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=6, unique=True)):
        msg[k] = draw(field_value())
    return msg


SIM: dict = {}


def _sim() -> RSim:
    if "sim" not in SIM:
        sim = RSim(seed=5)
        sim.run_until(lambda: sim.leader() is not None, 10, "a leader")
        SIM["sim"] = sim
    return SIM["sim"]


@settings(max_examples=400, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(peer_messages(), min_size=1, max_size=5))
def test_what_the_peer_schema_passes_never_breaks_a_replica(msgs: list[dict]) -> None:
    sim = _sim()
    for m in msgs:
        wire = msgpack.unpackb(msgpack.packb(m, use_bin_type=True), raw=False,
                               strict_map_key=False)
        try:
            check_peer(wire)
        except BadPeer:
            continue
        for n in sim.live():
            if n.exit is None and isinstance(wire["no"], int) and wire["no"] in n.r.addr:
                sim.feed(n, Peer(wire["no"], dict(wire)))  # raises if the core does


def test_configuration_entries_naming_unknown_members_are_refused_alike_everywhere() -> None:
    """Well typed but naming no member: every member applying it refuses it the same way
    (before: a KeyError in every member applying the slot)."""
    from nodes.css.core import membership as mb
    cfg = mb.genesis({i: {"udp": ["h", 1], "tcp": ["h", 2], "member_id": f"m{i}"}
                      for i in range(3)})
    for cmd in ({"op": "_cfg", "kind": "replace", "expect": 1, "old": 0, "new": 9,
                 "quorums": [[0, 1, 2], [1, 2, 9]]},
                {"op": "_cfg", "kind": "replace", "expect": 1, "old": 7, "new": 1,
                 "quorums": [[0, 1, 2], [0, 1, 2]]},
                {"op": "_cfg", "kind": "finalize", "expect": 1, "old": 8, "new": 1,
                 "quorums": [[0, 1, 2]]}):
        check_peer({"v": 1, "t": "ACCEPT", "cell_id": "c", "no": 0, "from": "m0",
                    "b": [1, 0], "s": 1, "val": [cmd], "commit": 0})  # it is well typed
        new, code = mb.apply_cfg(cfg, cmd)
        assert code == "EINVAL" and new is cfg
