"""The CSS state machine: sessions, reply cache, locks, small files and counters.

Pure and deterministic: `apply(cmd, pos)` mutates the state and returns effects. `pos` is the
command's position in the log (slot * 512 + index in the slot's batch); it is unique and grows, so
it serves as session id, lock version and file version.
"""

from __future__ import annotations

import copy
from typing import Any

import msgpack

MAX_FILE = 64 * 1024
MAX_NAME = 512
MAX_INFLIGHT = 128
INT64 = (-(1 << 63), (1 << 63) - 1)
STATE_FORMAT = 1

def encode_state(cut: dict) -> bytes:
    """msgpack of a `Service.cut()`, the files map packed entry by entry: each small packb
    call lets another thread (the event loop) take the GIL, which one big packb of a large
    state would hold for most of a second."""
    pk = msgpack.Packer(use_bin_type=True)
    parts = [pk.pack_map_header(len(cut))]
    for k, v in cut.items():
        parts.append(pk.pack(k))
        if k == "files":
            parts.append(pk.pack_map_header(len(v)))
            for name, f in v.items():
                parts.append(pk.pack(name))
                parts.append(pk.pack(f))
        else:
            parts.append(pk.pack(v))
    return b"".join(parts)


# Effects returned by apply(): ("reply", key, reply) and ("push", sid, event).
# key is (sid, seq) for session requests and ("open", tok) for `open`.
Effect = tuple


class Err(Exception):
    def __init__(self, code: str, **info: Any) -> None:
        super().__init__(code)
        self.code, self.info = code, info


def _fsize(name: str, f: dict) -> int:
    return len(name) + len(f["data"]) + 64


def ok(res: Any = None) -> dict:
    return {"ok": True, "res": res}


def err(code: str, **info: Any) -> dict:
    r: dict = {"ok": False, "err": code}
    if info:
        r["info"] = info
    return r


def check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise Err("ETYPE", what="name")
    raw = name.encode("utf-8", "surrogatepass")
    if not raw or len(raw) > MAX_NAME:
        raise Err("EINVAL", what="name length")
    if any(c in ("", ".", "..") for c in name.split("/")):
        raise Err("EINVAL", what="name component")
    return name


def check_data(data: Any) -> bytes:
    if not isinstance(data, bytes):
        raise Err("ETYPE", what="data")
    if len(data) > MAX_FILE:
        raise Err("ETOOBIG", limit=MAX_FILE)
    return data


def _int(x: Any, what: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise Err("ETYPE", what=what)
    return x


class Service:
    def __init__(self) -> None:
        self.sessions: dict[int, dict] = {}
        self.toks: dict[str, int] = {}
        self.locks: dict[str, dict] = {}
        self.files: dict[str, dict] = {}
        self.counters: dict[str, int] = {}
        self.file_bytes = 0  # sum of _fsize over files, kept as files change

    # ---- snapshots -------------------------------------------------------------------------
    def to_blob(self, extra: dict | None = None) -> bytes:
        return msgpack.packb({"format": STATE_FORMAT, "sessions": self.sessions,
                              "toks": self.toks, "locks": self.locks, "files": self.files,
                              "counters": self.counters, "extra": extra or {}},
                             use_bin_type=True)

    def cut(self, extra: dict | None = None) -> dict:
        """The state at this instant, cheap to take: the state machine replaces file records
        and counters instead of changing them, so shallow copies of those maps suffice; the
        small, mutable sessions and locks are copied deeply. `encode_state(cut)` gives the same
        bytes as `to_blob` and may run on another thread while this state moves on."""
        return {"format": STATE_FORMAT, "sessions": copy.deepcopy(self.sessions),
                "toks": dict(self.toks), "locks": copy.deepcopy(self.locks),
                "files": dict(self.files), "counters": dict(self.counters),
                "extra": copy.deepcopy(extra or {})}

    @classmethod
    def from_blob(cls, blob: bytes) -> tuple[Service, dict]:
        d = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        if d.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown state format {d.get('format')!r}")
        s = cls()
        s.sessions, s.toks, s.locks = d["sessions"], d["toks"], d["locks"]
        s.files, s.counters = d["files"], d["counters"]
        s.file_bytes = sum(_fsize(n, f) for n, f in s.files.items())
        return s, d.get("extra", {})

    # ---- entry point -----------------------------------------------------------------------
    def apply(self, cmd: dict, pos: int) -> list[Effect]:
        fx: list[Effect] = []
        op = cmd.get("op")
        if op == "open":
            fx.append(("reply", ("open", cmd.get("tok")), self._open(cmd, pos)))
            return fx
        if op in ("expire", "lock_timeout"):
            getattr(self, "_" + op)(cmd, pos, fx)
            return fx
        sid, seq = cmd.get("sid"), cmd.get("seq")
        key = (sid, seq)
        sess = self.sessions.get(sid)  # type: ignore[arg-type]
        if sess is None or sess["tok"] != cmd.get("tok"):
            fx.append(("reply", key, err("ESESSION_EXPIRED")))
            return fx
        if not isinstance(seq, int) or seq <= sess["ack"]:
            fx.append(("reply", key, err("ESTALE_SEQ")))
            return fx
        if seq in sess["replies"]:
            fx.append(("reply", key, sess["replies"][seq]))
            return fx
        if seq in sess["waiting"]:
            return fx  # answered when the lock is granted or times out
        ack = cmd.get("ack", 0)
        if isinstance(ack, int) and ack > sess["ack"]:
            sess["ack"] = min(ack, seq - 1)
            for s in [s for s in sess["replies"] if s <= sess["ack"]]:
                del sess["replies"][s]
        if seq > sess["ack"] + MAX_INFLIGHT or seq <= sess["last"] - MAX_INFLIGHT:
            fx.append(("reply", key, err("ESTALE_SEQ")))
            return fx
        sess["last"] = max(sess["last"], seq)
        h = getattr(self, "_op_" + str(op), None)
        try:
            if h is None:
                raise Err("EINVAL", what=f"unknown op {op!r}")
            reply = h(sid, seq, cmd, pos, fx)
        except Err as e:
            reply = err(e.code, **e.info)
        if reply is not None and sid in self.sessions:
            self.sessions[sid]["replies"][seq] = reply
        if reply is not None:
            fx.append(("reply", key, reply))
        return fx

    # ---- sessions --------------------------------------------------------------------------
    def _open(self, cmd: dict, pos: int) -> dict:
        tok = cmd.get("tok")
        if not isinstance(tok, str) or not tok:
            return err("EINVAL", what="tok")
        if tok in self.toks and self.toks[tok] in self.sessions:
            sid = self.toks[tok]
            return ok({"sid": sid, "timeout_ms": self.sessions[sid]["timeout_ms"]})
        t = cmd.get("timeout_ms", 10000)
        t = min(max(int(t) if isinstance(t, int) else 10000, 3000), 300000)
        client = cmd.get("client") if isinstance(cmd.get("client"), dict) else {}
        self.sessions[pos] = {"tok": tok, "timeout_ms": t, "client": client, "replies": {},
                              "ack": 0, "last": 0, "waiting": {}, "opened": cmd.get("w", 0)}
        self.toks[tok] = pos
        return ok({"sid": pos, "timeout_ms": t})

    def _op_close(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        self._end(sid, pos, fx, abort=False)
        return ok()

    def _op_abort(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        self._end(sid, pos, fx, abort=True)
        return ok()

    def _expire(self, cmd: dict, pos: int, fx: list) -> None:
        if cmd.get("sid") in self.sessions:
            self._end(cmd["sid"], pos, fx, abort=True)

    def _end(self, sid: int, pos: int, fx: list, abort: bool) -> None:
        held = sorted(n for n, lk in self.locks.items() if sid in lk["holders"])
        if abort:
            for n in held:
                if self.locks[n]["mode"] == "W":
                    self._drop_file(n)
        for n in [n for n, f in self.files.items() if f.get("eph") == sid]:
            self._drop_file(n)
        touched = set(held)
        for n, lk in self.locks.items():
            before = len(lk["waiters"])
            lk["waiters"] = [w for w in lk["waiters"] if w[0] != sid]
            if len(lk["waiters"]) != before:
                touched.add(n)
        for n in held:
            self.locks[n]["holders"].pop(sid, None)
        sess = self.sessions.pop(sid)
        self.toks.pop(sess["tok"], None)
        for n in sorted(touched):
            self._grant(n, pos, fx)

    # ---- locks -----------------------------------------------------------------------------
    def _op_lock(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict | None:
        name = check_name(cmd.get("name"))
        mode = cmd.get("mode")
        if mode not in ("R", "W"):
            raise Err("EINVAL", what="mode")
        wait, recall = bool(cmd.get("wait")), bool(cmd.get("recall"))
        lk = self.locks.setdefault(name, {"mode": None, "version": 0, "holders": {},
                                          "waiters": []})
        released_read = False
        if sid in lk["holders"]:
            lk["holders"][sid] = lk["holders"][sid] or recall
            if lk["mode"] == mode or lk["mode"] == "W":
                return ok({"mode": lk["mode"], "version": lk["version"]})
            if len(lk["holders"]) == 1:  # sole reader upgrades at once
                lk["mode"], lk["version"] = "W", pos
                return ok({"mode": "W", "version": pos})
            if not wait:
                self._recall(name, lk, sid, "W", fx)
                raise Err("EBUSY")
            del lk["holders"][sid]
            released_read = True
        free = not lk["holders"]
        if not lk["waiters"] and (free or (mode == "R" and lk["mode"] == "R")):
            if free or lk["mode"] != mode:
                lk["mode"], lk["version"] = mode, pos
            lk["holders"][sid] = recall
            return ok({"mode": mode, "version": lk["version"]})
        if not wait:
            self._recall(name, lk, sid, mode, fx)
            self._drop_if_unused(name)
            raise Err("EBUSY")
        wait_ms = cmd.get("wait_ms") if isinstance(cmd.get("wait_ms"), int) else None
        lk["waiters"].append([sid, seq, mode, recall, released_read, wait_ms])
        self.sessions[sid]["waiting"][seq] = name
        self._recall(name, lk, sid, mode, fx)
        if released_read:
            self._grant(name, pos, fx)
        return None

    def _recall(self, name: str, lk: dict, requester: int, wanted: str, fx: list) -> None:
        for h, rc in sorted(lk["holders"].items()):
            if rc and h != requester:
                fx.append(("push", h, {"ev": "RECALL", "name": name, "version": lk["version"],
                                       "wanted": wanted}))

    def recalls(self) -> list[tuple[int, dict]]:
        """Recalls to repeat now: level-triggered while a lock has waiters."""
        out: list[tuple[int, dict]] = []
        for name, lk in sorted(self.locks.items()):
            if lk["waiters"]:
                fx: list = []
                self._recall(name, lk, lk["waiters"][0][0], lk["waiters"][0][2], fx)
                out += [(sid, ev) for _, sid, ev in fx]
        return out

    def _grant(self, name: str, pos: int, fx: list) -> None:
        lk = self.locks.get(name)
        if lk is None:
            return
        if not lk["holders"]:
            lk["mode"] = None
        while lk["waiters"]:
            sid, seq, mode, recall, rr, _ms = lk["waiters"][0]
            if lk["holders"] and not (mode == "R" and lk["mode"] == "R"):
                break
            lk["waiters"].pop(0)
            if lk["mode"] != mode:
                lk["mode"], lk["version"] = mode, pos
            lk["holders"][sid] = recall
            res: dict = {"mode": mode, "version": lk["version"]}
            if rr:
                res["released_read"] = True
            self._finish_wait(sid, seq, ok(res), fx)
            if mode == "W":
                break
        if lk["waiters"]:
            # the new holders learn of the queue now, not at the next recall repeat
            self._recall(name, lk, lk["waiters"][0][0], lk["waiters"][0][2], fx)
        self._drop_if_unused(name)

    def _finish_wait(self, sid: int, seq: int, reply: dict, fx: list) -> None:
        sess = self.sessions[sid]
        sess["waiting"].pop(seq, None)
        sess["replies"][seq] = reply
        fx.append(("reply", (sid, seq), reply))

    def _drop_if_unused(self, name: str) -> None:
        lk = self.locks.get(name)
        if lk is not None and not lk["holders"] and not lk["waiters"]:
            del self.locks[name]

    def _op_unlock(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        name = check_name(cmd.get("name"))
        lk = self.locks.get(name)
        if lk is None or sid not in lk["holders"]:
            raise Err("ENOENT")
        del lk["holders"][sid]
        self._grant(name, pos, fx)
        return ok()

    def _lock_timeout(self, cmd: dict, pos: int, fx: list) -> None:
        sid, seq = cmd.get("sid"), cmd.get("seq")
        sess = self.sessions.get(sid)  # type: ignore[arg-type]
        if sess is None or seq not in sess["waiting"]:
            return
        name = sess["waiting"][seq]
        lk = self.locks[name]
        lk["waiters"] = [w for w in lk["waiters"] if not (w[0] == sid and w[1] == seq)]
        self._finish_wait(sid, seq, err("ETIMEDOUT"), fx)
        self._grant(name, pos, fx)

    def waiters(self) -> list[tuple[int, int, str, int | None]]:
        """(sid, seq, lock name, wait_ms) of every queued lock request."""
        return [(w[0], w[1], n, w[5]) for n, lk in self.locks.items() for w in lk["waiters"]]

    # ---- files -----------------------------------------------------------------------------
    def _put(self, name: str, data: bytes, pos: int, cmd: dict, eph: int | None) -> dict:
        old = self.files.get(name)
        f = {"data": data, "version": pos, "ctime": old["ctime"] if old else cmd.get("w", 0),
             "mtime": cmd.get("w", 0), "eph": old["eph"] if old else eph}
        if old is not None:
            self.file_bytes -= _fsize(name, old)
        self.files[name] = f
        self.file_bytes += _fsize(name, f)
        return ok({"version": pos})

    def _drop_file(self, name: str) -> None:
        f = self.files.pop(name, None)
        if f is not None:
            self.file_bytes -= _fsize(name, f)

    def state_bytes(self) -> int:
        """An estimate of the state's size (max_state_bytes, spec 2.5): file names and data
        exactly, a fixed allowance per record otherwise."""
        return (self.file_bytes + 96 * len(self.counters) + 128 * len(self.locks)
                + 512 * len(self.sessions))

    def _op_create(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        name, data = check_name(cmd.get("name")), check_data(cmd.get("data", b""))
        if name in self.files:
            raise Err("EEXIST")
        return self._put(name, data, pos, cmd, sid if cmd.get("ephemeral") else None)

    def _op_write(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        name, data = check_name(cmd.get("name")), check_data(cmd.get("data", b""))
        if name not in self.files and not cmd.get("create", True):
            raise Err("ENOENT")
        return self._put(name, data, pos, cmd, None)

    def _op_cas(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        name, data = check_name(cmd.get("name")), check_data(cmd.get("data", b""))
        expect = _int(cmd.get("expect_version"), "expect_version")
        have = self.files[name]["version"] if name in self.files else 0
        if have != expect:
            raise Err("ECONFLICT", version=have)
        return self._put(name, data, pos, cmd, None)

    def _op_delete(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        name = check_name(cmd.get("name"))
        if name not in self.files:
            raise Err("ENOENT")
        ev = cmd.get("expect_version")
        if ev is not None and self.files[name]["version"] != ev:
            raise Err("ECONFLICT", version=self.files[name]["version"])
        self._drop_file(name)
        return ok()

    def _op_delete_prefix(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        prefix = cmd.get("prefix")
        if not isinstance(prefix, str) or not prefix:
            raise Err("EINVAL", what="prefix")
        names = [n for n in self.files if n.startswith(prefix)]
        for n in names:
            self._drop_file(n)
        return ok({"count": len(names)})

    # ---- counters --------------------------------------------------------------------------
    def _op_counter_add(self, sid: int, seq: int, cmd: dict, pos: int, fx: list) -> dict:
        name = check_name(cmd.get("name"))
        delta = _int(cmd.get("delta", 1), "delta")
        if name not in self.counters and not cmd.get("create", True):
            raise Err("ENOENT")
        v = self.counters.get(name, 0) + delta
        if not INT64[0] <= v <= INT64[1]:
            raise Err("EINVAL", what="counter overflow")
        self.counters[name] = v
        return ok({"value": v})

    # ---- reads (served by the leader, not logged) --------------------------------------------
    def read(self, op: str, args: dict) -> dict:
        try:
            return self._read(op, args)
        except Err as e:
            return err(e.code, **e.info)

    def _read(self, op: str, a: dict) -> dict:
        if op == "list":
            prefix, after = a.get("prefix", ""), a.get("after", "")
            limit = a.get("limit", 1000)
            if not isinstance(prefix, str) or not isinstance(after, str):
                raise Err("ETYPE", what="prefix")
            if not isinstance(limit, int) or not 0 < limit <= 1000:
                raise Err("EINVAL", what="limit")
            names = sorted(n for n in self.files if n.startswith(prefix) and n > after)
            page = names[:limit]
            return ok({"names": [[n, self.files[n]["version"]] for n in page],
                       "more": len(names) > limit})
        if op == "session_info":
            s = self.sessions.get(a.get("sid"))  # type: ignore[arg-type]
            if s is None:
                raise Err("ESESSION_EXPIRED")
            held = {n: lk["mode"] for n, lk in self.locks.items() if a["sid"] in lk["holders"]}
            return ok({"sid": a["sid"], "timeout_ms": s["timeout_ms"], "client": s["client"],
                       "locks": held})
        name = check_name(a.get("name"))
        if op == "counter_get":
            if name not in self.counters:
                raise Err("ENOENT")
            return ok({"value": self.counters[name]})
        f = self.files.get(name)
        if f is None:
            raise Err("ENOENT")
        if op == "read":
            return ok({"data": f["data"], "version": f["version"]})
        if op == "stat":
            return ok({"version": f["version"], "ctime": f["ctime"], "mtime": f["mtime"],
                       "size": len(f["data"]), "ephemeral_owner": f["eph"]})
        raise Err("EINVAL", what=f"unknown read {op!r}")

    def counts(self) -> dict:
        return {"sessions": len(self.sessions), "locks": len(self.locks),
                "files": len(self.files), "counters": len(self.counters),
                "state_bytes": self.state_bytes()}
