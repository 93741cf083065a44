"""Schema of every member-to-member message: field types and ranges, checked before the core.

The HMAC (shell/auth.py) proves a message comes from a holder of the cell secret, not that it is
well formed: a member running other code, a bug, or a test hook can still send `b: "x"` or a
slot of 2**70, and the core indexes, compares and loops on these fields without looking. So
the shell passes every decoded peer message through `check_peer` and drops (and counts) what
fails, exactly like an unauthenticated datagram. Logged values are checked command by command
with the client schema (validate.py) plus the internal ops, because a decided value is applied
by every member: one ill-typed command there would take the whole cell down.

Unknown keys are ignored (spec 1.1); unknown message types are refused (nothing handles them).
"""

from __future__ import annotations

from typing import Any

from .validate import MAX_ID_STR, OPS

MAX_SLOT = 1 << 62
MAX_ID = 1 << 31  # Paxos member ids (genesis numbers, then next_id)
MAX_NO = 1 << 16  # member numbers of the cell file
MAX_PORT = 65535
MAX_HOST = 255
# a PROMISE only carries slots from the candidate's commit on (at most catchup_batch decided
# ones, else `ahead`); the candidate proposes every slot up to the highest, so this bounds work
MAX_PROMISE_SPAN = 1 << 16
MAX_CATCHUP_SPAN = 1 << 16
MAX_CHUNK = 16 << 20


class BadPeer(Exception):
    """The message does not match the schema; the text names the field."""


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _int(msg: dict, k: str, lo: int, hi: int, required: bool = True) -> None:
    if k not in msg:
        if required:
            raise BadPeer(f"missing field {k!r}")
        return
    if not _is_int(msg[k], lo, hi):
        raise BadPeer(f"field {k!r} must be an integer in {lo}..{hi}")


def _bool(msg: dict, k: str) -> None:
    if k in msg and not isinstance(msg[k], bool):
        raise BadPeer(f"field {k!r} must be a boolean")


def _str(v: Any, hi: int = MAX_ID_STR, lo: int = 0) -> bool:
    return isinstance(v, str) and lo <= len(v) <= hi


def _ballot(v: Any) -> bool:
    # ZERO = (0, -1) is the "never promised" ballot, sent back in NACKs
    return isinstance(v, list) and len(v) == 2 and _is_int(v[0], 0, MAX_SLOT) and \
        _is_int(v[1], -1, MAX_ID)


def _addr(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and _str(v[0], MAX_HOST, 1) and \
        _is_int(v[1], 0, MAX_PORT)


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise BadPeer(what)


def _ballots(msg: dict, *keys: str) -> None:
    for k in keys:
        _need(_ballot(msg.get(k)), f"field {k!r} must be a ballot [round, member]")


# ---- logged values ----------------------------------------------------------------------------
def _ids(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 1024 and all(_is_int(x, 0, MAX_ID) for x in v)


_CFG: dict[str, dict[str, Any]] = {
    "add_learner": {"id": lambda v: _is_int(v, 0, MAX_ID), "no": lambda v: _is_int(v, 0, MAX_NO),
                    "member_id": lambda v: _str(v, MAX_ID_STR, 1), "udp": _addr, "tcp": _addr},
    "replace": {"old": lambda v: _is_int(v, 0, MAX_ID), "new": lambda v: _is_int(v, 0, MAX_ID),
                "quorums": lambda v: isinstance(v, list) and len(v) == 2 and all(map(_ids, v))},
    "finalize": {"old": lambda v: _is_int(v, 0, MAX_ID), "new": lambda v: _is_int(v, 0, MAX_ID),
                 "quorums": lambda v: isinstance(v, list) and len(v) == 1 and all(map(_ids, v))},
    "remove_learner": {"id": lambda v: _is_int(v, 0, MAX_ID),
                       "member_id": lambda v: _str(v, MAX_ID_STR, 1),
                       "no": lambda v: _is_int(v, 0, MAX_NO), "why": lambda v: _str(v, 64)},
}


def _command(c: Any) -> None:
    if not isinstance(c, dict):
        raise BadPeer("a logged command must be a map")
    op = c.get("op")
    if "w" in c and not (isinstance(c["w"], (int, float)) and not isinstance(c["w"], bool)):
        raise BadPeer("command field 'w' must be a number")
    if op == "_cfg":
        schema = _CFG.get(c.get("kind"))  # type: ignore[arg-type]
        if schema is None:
            raise BadPeer("unknown configuration entry kind")
        _need(_is_int(c.get("expect"), 0, MAX_SLOT), "_cfg: field 'expect' must be a version")
        for k, chk in schema.items():
            _need(chk(c.get(k)), f"_cfg {c['kind']}: bad field {k!r}")
        return
    if op == "expire":
        _need(_is_int(c.get("sid"), 0, (1 << 63) - 1), "expire: bad field 'sid'")
        return
    if op == "lock_timeout":
        _need(_is_int(c.get("sid"), 0, (1 << 63) - 1) and _is_int(c.get("seq"), 1, 1 << 63),
              "lock_timeout: bad sid or seq")
        return
    schema = OPS.get(op) if isinstance(op, str) else None
    if schema is None:
        raise BadPeer(f"unknown logged op {str(op)[:40]!r}")
    for k, (chk, required) in schema.items():
        if k not in c or (c[k] is None and not required):
            if required:
                raise BadPeer(f"{op}: missing field {k!r}")
            continue
        v = c[k]
        if isinstance(chk, dict):
            ok = isinstance(v, dict) and all(sk not in v or sc(v[sk]) for sk, sc in chk.items())
        else:
            ok = chk(v)
        _need(ok, f"{op}: bad field {k!r}")


def check_value(v: Any) -> None:
    """A value of the log: a list of commands ([] is the no-op)."""
    if not isinstance(v, list):
        raise BadPeer("a logged value must be a list")
    for c in v:
        _command(c)


def _slot_value_pairs(v: Any, what: str, with_ballot: bool = False) -> list[int]:
    if not isinstance(v, list):
        raise BadPeer(f"field {what!r} must be a list")
    slots = []
    for e in v:
        n = 3 if with_ballot else 2
        _need(isinstance(e, list) and len(e) == n and _is_int(e[0], 1, MAX_SLOT),
              f"field {what!r}: entries must be [slot{', ballot' if with_ballot else ''}, value]")
        if with_ballot:
            _need(_ballot(e[1]), f"field {what!r}: bad ballot")
        check_value(e[-1])
        slots.append(e[0])
    return slots


# ---- configuration (JOIN_OK) ----------------------------------------------------------------
def check_config(cfg: Any) -> None:
    _need(isinstance(cfg, dict), "cfg must be a map")
    _need(_is_int(cfg.get("version"), 1, MAX_SLOT) and _is_int(cfg.get("next_id"), 0, MAX_ID),
          "cfg: bad version or next_id")
    ret = cfg.get("retired")
    _need(isinstance(ret, list) and all(_str(x) for x in ret), "cfg: bad retired list")
    mem = cfg.get("members")
    _need(isinstance(mem, dict) and 0 < len(mem) <= 1024, "cfg: bad members map")
    for pid, m in mem.items():
        _need(_is_int(pid, 0, MAX_ID) and isinstance(m, dict), "cfg: bad member entry")
        _need(_is_int(m.get("no"), 0, MAX_NO) and (m.get("member_id") is None or _str(
            m.get("member_id"))) and _addr(m.get("udp")) and _addr(m.get("tcp")) and
            m.get("role") in ("voter", "learner"), f"cfg: bad member {pid}")
    j = cfg.get("joint")
    if j is not None:
        _need(isinstance(j, dict) and _ids(j.get("old")) and _ids(j.get("new")) and
              _is_int(j.get("old_id"), 0, MAX_ID) and _is_int(j.get("new_id"), 0, MAX_ID),
              "cfg: bad joint phase")


# ---- messages -------------------------------------------------------------------------------
def _prepare(m: dict) -> None:
    _ballots(m, "b")
    _int(m, "fs", 0, MAX_SLOT)


def _promise(m: dict) -> None:
    _ballots(m, "b")
    _int(m, "commit", 0, MAX_SLOT, required=False)
    _bool(m, "ahead")
    slots = _slot_value_pairs(m.get("acc", []), "acc", with_ballot=True)
    slots += _slot_value_pairs(m.get("dec", []), "dec")
    if slots and max(slots) - min(slots) > MAX_PROMISE_SPAN:
        raise BadPeer("PROMISE: entries span too many slots")


def _nack(m: dict) -> None:
    _ballots(m, "b", "p")
    _bool(m, "alive")


def _accept(m: dict) -> None:
    _ballots(m, "b")
    _int(m, "s", 1, MAX_SLOT)
    _int(m, "commit", 0, MAX_SLOT, required=False)
    _need("val" in m, "missing field 'val'")
    check_value(m["val"])


def _accepted(m: dict) -> None:
    _ballots(m, "b")
    _int(m, "s", 1, MAX_SLOT)


def _hb(m: dict) -> None:
    _ballots(m, "b")
    _int(m, "n", 0, MAX_SLOT)
    _int(m, "commit", 0, MAX_SLOT, required=False)
    _int(m, "ls", 0, 1 << 40, required=False)


def _hb_ack(m: dict) -> None:
    _ballots(m, "b")
    _int(m, "n", 0, MAX_SLOT)
    _int(m, "commit", 0, MAX_SLOT, required=False)


def _leave(m: dict) -> None:
    _ballots(m, "b")


def _catchup_req(m: dict) -> None:
    _int(m, "lo", 0, MAX_SLOT)
    _int(m, "hi", 0, MAX_SLOT)
    _need(m["hi"] - m["lo"] <= MAX_CATCHUP_SPAN, "CATCHUP_REQ: range too wide")


def _catchup(m: dict) -> None:
    _int(m, "commit", 0, MAX_SLOT, required=False)
    _slot_value_pairs(m.get("ents", []), "ents")


def _slot_only(m: dict) -> None:
    _int(m, "slot", 0, MAX_SLOT)


def _snapshot(m: dict) -> None:
    _int(m, "slot", 0, MAX_SLOT)
    _need(isinstance(m.get("blob"), bytes), "field 'blob' must be binary")


def _join(m: dict) -> None:
    _int(m, "cno", 0, MAX_NO)
    _need(_str(m.get("member_id"), MAX_ID_STR, 1), "field 'member_id' must be a short string")
    _need(_addr(m.get("udp")) and _addr(m.get("tcp")), "fields 'udp' and 'tcp' must be "
          "[host, port]")
    if m.get("expect_cfg") is not None:
        _int(m, "expect_cfg", 0, MAX_SLOT)
    _bool(m, "fwd")


def _join_ok(m: dict) -> None:
    _int(m, "id", 0, MAX_ID)
    check_config(m.get("cfg"))


def _snap_offer(m: dict) -> None:
    _int(m, "slot", 1, MAX_SLOT)
    _int(m, "size", 1, 1 << 40)
    _int(m, "crc", 0, (1 << 32) - 1)


def _snap_get(m: dict) -> None:
    _int(m, "slot", 0, MAX_SLOT)
    _int(m, "off", 0, 1 << 40)
    _int(m, "n", 1, MAX_CHUNK)


def _snap_chunk(m: dict) -> None:
    _need(_is_int(m.get("slot"), 0, MAX_SLOT) or m.get("slot") is None, "bad field 'slot'")
    _need(_is_int(m.get("off"), 0, 1 << 40) or m.get("off") is None, "bad field 'off'")
    if "data" in m:
        _need(isinstance(m["data"], bytes) and len(m["data"]) <= MAX_CHUNK, "bad field 'data'")
    if "err" in m:
        _need(_str(m["err"], 64), "bad field 'err'")


def _nothing(m: dict) -> None:
    pass


MESSAGES = {
    "PREPARE": _prepare, "PROMISE": _promise, "NACK": _nack, "ACCEPT": _accept,
    "ACCEPTED": _accepted, "HB": _hb, "HB_ACK": _hb_ack, "LEAVE": _leave,
    "CATCHUP_REQ": _catchup_req, "CATCHUP": _catchup, "SNAPSHOT_NEEDED": _slot_only,
    "SNAPSHOT": _snapshot, "REMOVED": _nothing, "JOIN": _join, "JOIN_OK": _join_ok,
    "SNAPSHOT_AVAILABLE": _snap_offer, "SNAP_GET": _snap_get, "SNAP_CHUNK": _snap_chunk,
    "PEER_HELLO": _nothing,
}


def check_peer(msg: dict, inline_snapshots: bool = False) -> dict:
    """Return `msg` if its envelope and every field of its type are well typed and in range;
    BadPeer otherwise. `msg` is a decoded map with an int `v` and a str `t` (wire.unpack).

    A shell never sends an inline SNAPSHOT (it streams snapshot files, checked by size and
    CRC before the core sees them): one from the wire would be installed unverified, so it is
    refused unless `inline_snapshots` (the simulators, which have no files)."""
    if msg.get("t") == "SNAPSHOT" and not inline_snapshots:
        raise BadPeer("inline SNAPSHOT is not accepted from the network")
    _need(_str(msg.get("cell_id"), MAX_ID_STR), "envelope: bad 'cell_id'")
    _int(msg, "no", -1, MAX_ID)
    _need(msg.get("from") is None or _str(msg.get("from")), "envelope: bad 'from'")
    chk = MESSAGES.get(msg["t"])
    if chk is None:
        raise BadPeer(f"unknown member message type {msg['t'][:40]!r}")
    chk(msg)
    return msg
