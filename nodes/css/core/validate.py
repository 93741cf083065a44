"""Schema of every client request: field types and ranges, checked before anything else.

A frame from the client port is hostile until it passes `check_request`. Every field the server
reads is typed and bounded here, so a wrongly typed value (an unhashable `tok`, a map as `sid`)
never reaches the replica or the state machine, where it could raise on every member that
applies it. The returned map holds only the known fields: unknown keys are ignored (spec 1.1)
and therefore never copied into the replicated log.
"""

from __future__ import annotations

from typing import Any

INT64 = (-(1 << 63), (1 << 63) - 1)
MAX_TOK = 128  # clients use 24 hex characters
MAX_ID_STR = 128
MAX_CLIENT_STR = 255  # host names are at most 253 bytes; status lists them (2.10)
MAX_NAME_FIELD = 4096  # semantic limits (512 bytes, components) are the service's EINVAL
MAX_DATA = 1 << 20  # the frame limit; the service answers ETOOBIG above max_file_size


class BadRequest(Exception):
    """The request does not match the schema; answered with EPROTO naming the field."""


def _int(lo: int = INT64[0], hi: int = INT64[1]) -> Any:
    def chk(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
    chk.what = f"an integer in {lo}..{hi}"  # type: ignore[attr-defined]
    return chk


def _str(lo: int, hi: int) -> Any:
    def chk(v: Any) -> bool:
        return isinstance(v, str) and lo <= len(v) <= hi
    chk.what = f"a string of {lo}..{hi} characters"  # type: ignore[attr-defined]
    return chk


def _bytes(hi: int) -> Any:
    def chk(v: Any) -> bool:
        return isinstance(v, bytes) and len(v) <= hi
    chk.what = f"binary data of at most {hi} bytes"  # type: ignore[attr-defined]
    return chk


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


_bool.what = "a boolean"  # type: ignore[attr-defined]


def _mode(v: Any) -> bool:
    return v in ("R", "W")


_mode.what = "'R' or 'W'"  # type: ignore[attr-defined]

SID = _int(0)
SEQ = _int(1)
ACK = _int(0)
TOK = _str(1, MAX_TOK)
NAME = _str(0, MAX_NAME_FIELD)
DATA = _bytes(MAX_DATA)
MS = _int(0, 1 << 40)
VERSION = _int(0)
CLIENT = {"host": _str(0, MAX_CLIENT_STR), "name": _str(0, MAX_CLIENT_STR),
          "pid": _int(0, 1 << 32)}

# field -> (checker, required); a session request also carries sid, tok, seq and ack
SESSION = {"sid": (SID, True), "tok": (TOK, True), "seq": (SEQ, True), "ack": (ACK, False)}
OPS: dict[str, dict[str, tuple[Any, bool]]] = {
    "ping": {},
    "status": {"clients_after": (_int(0), False), "clients_limit": (_int(0, 1000), False)},
    "hello": {"client": (CLIENT, False)},
    "members": {"client": (CLIENT, False)},
    "config": {},
    "open": {"tok": (TOK, True), "timeout_ms": (MS, False), "client": (CLIENT, False)},
    "keepalive": {"sid": (SID, True), "tok": (TOK, True)},
    "close": dict(SESSION),
    "abort": dict(SESSION),
    "lock": {**SESSION, "name": (NAME, True), "mode": (_mode, True), "wait": (_bool, False),
             "wait_ms": (MS, False), "recall": (_bool, False)},
    "unlock": {**SESSION, "name": (NAME, True)},
    "create": {**SESSION, "name": (NAME, True), "data": (DATA, False),
               "ephemeral": (_bool, False)},
    "write": {**SESSION, "name": (NAME, True), "data": (DATA, False), "create": (_bool, False)},
    "cas": {**SESSION, "name": (NAME, True), "expect_version": (VERSION, True),
            "data": (DATA, False)},
    "delete": {**SESSION, "name": (NAME, True), "expect_version": (VERSION, False)},
    "delete_prefix": {**SESSION, "prefix": (NAME, True)},
    "counter_add": {**SESSION, "name": (NAME, True), "delta": (_int(), False),
                    "create": (_bool, False)},
    # reads: a session id is optional (the library sends its own)
    "read": {"sid": (SID, False), "name": (NAME, True)},
    "stat": {"sid": (SID, False), "name": (NAME, True)},
    "counter_get": {"sid": (SID, False), "name": (NAME, True)},
    "list": {"sid": (SID, False), "prefix": (NAME, False), "after": (NAME, False),
             "limit": (_int(), False)},
    "session_info": {"sid": (SID, True)},
    "replace": {"no": (_int(0, 1 << 16), True), "new": (_str(1, MAX_ID_STR), True),
                "expect_cfg": (VERSION, False)},
    "remove_learner": {"member_id": (_str(1, MAX_ID_STR), False),
                       "no": (_int(0, 1 << 16), False), "expect_cfg": (VERSION, False)},
}


def _check_id(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, int) and not isinstance(v, bool):
        return INT64[0] <= v <= INT64[1]
    return isinstance(v, str) and len(v) <= MAX_ID_STR


def _check_map(where: str, v: Any, schema: dict[str, Any]) -> dict:
    if not isinstance(v, dict):
        raise BadRequest(f"field {where!r} must be a map")
    out = {}
    for k, chk in schema.items():
        if k in v:
            if not chk(v[k]):
                raise BadRequest(f"field {where}.{k} must be {chk.what}")
            out[k] = v[k]
    return out


def check_request(msg: dict) -> dict:
    """Return the request reduced to its known, well-typed fields; BadRequest otherwise.

    `msg` is a decoded map with an int `v` and a str `t` (wire.unpack checked those). An
    unknown op passes through (the replica answers EINVAL with its name)."""
    rid = msg.get("id")
    if not _check_id(rid):
        raise BadRequest("field 'id' must be null, an integer or a short string")
    t = msg["t"]
    out: dict = {"v": msg["v"], "t": t, "id": rid}
    schema = OPS.get(t)
    if schema is None:
        if len(t) > MAX_ID_STR:
            raise BadRequest("field 't' is too long")
        return out
    for k, (chk, required) in schema.items():
        if k not in msg or (msg[k] is None and not required):
            if required:
                raise BadRequest(f"{t}: missing field {k!r}")
            continue
        v = msg[k]
        if isinstance(chk, dict):
            out[k] = _check_map(k, v, chk)
        elif not chk(v):
            raise BadRequest(f"{t}: field {k!r} must be {chk.what}")
        else:
            out[k] = v
    if t == "remove_learner" and ("member_id" in out) == ("no" in out):
        raise BadRequest("remove_learner: give exactly one of 'member_id' and 'no'")
    return out
