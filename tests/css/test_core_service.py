"""Example tests of the CSS state machine: one or more per operation and error code."""

from __future__ import annotations

from nodes.css.core.service import MAX_FILE, Service


class Harness:
    def __init__(self) -> None:
        self.svc = Service()
        self.pos = 0
        self.seqs: dict[int, int] = {}
        self.toks: dict[int, str] = {}
        self.pushes: list[tuple[int, dict]] = []

    def apply(self, cmd: dict) -> list:
        self.pos += 512
        fx = self.svc.apply(cmd, self.pos)
        self.pushes += [(sid, ev) for kind, sid, ev in fx if kind == "push"]
        return fx

    def open(self, tok: str = "", timeout_ms: int = 10000) -> int:
        tok = tok or f"tok{self.pos}"
        fx = self.apply({"op": "open", "tok": tok, "timeout_ms": timeout_ms})
        sid = fx[0][2]["res"]["sid"]
        self.toks[sid] = tok
        return sid

    def req(self, sid: int, op: str, seq: int | None = None, **args) -> dict | None:
        if seq is None:
            seq = self.seqs.get(sid, 0) + 1
        self.seqs[sid] = max(self.seqs.get(sid, 0), seq)
        fx = self.apply({"op": op, "sid": sid, "tok": self.toks.get(sid, "x"), "seq": seq,
                         "ack": 0, **args})
        replies = [r for kind, key, r in fx if kind == "reply" and key == (sid, seq)]
        return replies[0] if replies else None

    def replies_for(self, fx: list) -> dict:
        return {key: r for kind, key, r in fx if kind == "reply"}


def test_open_is_idempotent_by_token_and_clamps_timeout() -> None:
    h = Harness()
    a = h.apply({"op": "open", "tok": "t1", "timeout_ms": 1})[0][2]["res"]
    b = h.apply({"op": "open", "tok": "t1", "timeout_ms": 1})[0][2]["res"]
    assert a == b and a["timeout_ms"] == 3000
    assert h.apply({"op": "open", "tok": ""})[0][2]["err"] == "EINVAL"


def test_unknown_session_and_wrong_token() -> None:
    h = Harness()
    assert h.req(999, "write", name="a", data=b"x")["err"] == "ESESSION_EXPIRED"
    sid = h.open()
    h.toks[sid] = "forged"
    assert h.req(sid, "write", name="a", data=b"x")["err"] == "ESESSION_EXPIRED"


def test_reply_cache_answers_retries_once() -> None:
    h = Harness()
    sid = h.open()
    r1 = h.req(sid, "counter_add", seq=1, name="c", delta=5)
    r2 = h.req(sid, "counter_add", seq=1, name="c", delta=5)
    assert r1 == r2 == {"ok": True, "res": {"value": 5}}
    assert h.svc.counters["c"] == 5
    # ack 1 drops the cached reply; seq 1 is now stale and never runs again
    fx = h.apply({"op": "counter_add", "sid": sid, "tok": h.toks[sid], "seq": 2, "ack": 1,
                  "name": "c", "delta": 1})
    assert h.replies_for(fx)[(sid, 2)]["res"]["value"] == 6
    assert h.req(sid, "counter_add", seq=1, name="c", delta=5)["err"] == "ESTALE_SEQ"
    assert h.svc.counters["c"] == 6


def test_files_create_write_cas_delete_list() -> None:
    h = Harness()
    s = h.open()
    v1 = h.req(s, "create", name="d/a", data=b"1")["res"]["version"]
    assert h.req(s, "create", name="d/a", data=b"1")["err"] == "EEXIST"
    assert h.svc.read("read", {"name": "d/a"})["res"] == {"data": b"1", "version": v1}
    assert h.req(s, "write", name="d/b", data=b"2", create=False)["err"] == "ENOENT"
    h.req(s, "write", name="d/b", data=b"2")
    bad = h.req(s, "cas", name="d/a", expect_version=v1 + 1, data=b"x")
    assert bad["err"] == "ECONFLICT" and bad["info"]["version"] == v1
    v2 = h.req(s, "cas", name="d/a", expect_version=v1, data=b"3")["res"]["version"]
    assert v2 > v1
    assert h.req(s, "cas", name="d/new", expect_version=0, data=b"n")["ok"]
    assert h.req(s, "cas", name="d/new", expect_version=0, data=b"n")["err"] == "ECONFLICT"
    lst = h.svc.read("list", {"prefix": "d/", "limit": 2})["res"]
    assert [n for n, _ in lst["names"]] == ["d/a", "d/b"] and lst["more"]
    lst = h.svc.read("list", {"prefix": "d/", "after": "d/b"})["res"]
    assert [n for n, _ in lst["names"]] == ["d/new"] and not lst["more"]
    assert h.req(s, "delete", name="d/a", expect_version=v1)["err"] == "ECONFLICT"
    assert h.req(s, "delete", name="d/a")["ok"]
    assert h.req(s, "delete", name="d/a")["err"] == "ENOENT"
    assert h.req(s, "delete_prefix", prefix="d/")["res"] == {"count": 2}
    assert h.svc.read("stat", {"name": "d/b"})["err"] == "ENOENT"


def test_bad_names_and_sizes() -> None:
    h = Harness()
    s = h.open()
    for name in ["", "a//b", "a/./b", "../x", "x" * 513]:
        assert h.req(s, "write", name=name, data=b"")["err"] == "EINVAL", name
    assert h.req(s, "write", name=5, data=b"")["err"] == "ETYPE"
    assert h.req(s, "write", name="a", data="str")["err"] == "ETYPE"
    assert h.req(s, "write", name="a", data=b"x" * (MAX_FILE + 1))["err"] == "ETOOBIG"
    assert h.req(s, "frobnicate")["err"] == "EINVAL"
    assert h.svc.read("list", {"limit": 5000})["err"] == "EINVAL"


def test_counters() -> None:
    h = Harness()
    s = h.open()
    assert h.req(s, "counter_add", name="n", delta=1, create=False)["err"] == "ENOENT"
    assert h.req(s, "counter_add", name="n", delta=-3)["res"]["value"] == -3
    assert h.svc.read("counter_get", {"name": "n"})["res"]["value"] == -3
    assert h.req(s, "counter_add", name="m", delta=(1 << 63) - 1)["ok"]
    assert h.req(s, "counter_add", name="m", delta=1)["err"] == "EINVAL"
    assert h.req(s, "counter_add", name="n", delta="1")["err"] == "ETYPE"
    h.req(s, "abort")
    assert h.svc.counters["n"] == -3  # aborts never reset counters


def test_locks_try_block_fifo_and_recall() -> None:
    h = Harness()
    a, b, c = h.open(), h.open(), h.open()
    ra = h.req(a, "lock", name="L", mode="W", recall=True)["res"]
    assert ra["mode"] == "W"
    assert h.req(b, "lock", name="L", mode="R")["err"] == "EBUSY"
    assert h.pushes[-1] == (a, {"ev": "RECALL", "name": "L", "version": ra["version"],
                                "wanted": "R"})
    assert h.req(b, "lock", seq=10, name="L", mode="W", wait=True) is None
    assert h.req(c, "lock", seq=10, name="L", mode="R", wait=True) is None
    # retry of a waiting request runs nothing
    assert h.req(b, "lock", seq=10, name="L", mode="W", wait=True) is None
    assert {sid for sid, _ in h.svc.recalls()} == {a}
    h.pushes.clear()
    fx = h.apply({"op": "unlock", "sid": a, "tok": h.toks[a], "seq": 20, "ack": 0, "name": "L"})
    rs = h.replies_for(fx)
    assert rs[(a, 20)]["ok"] and rs[(b, 10)]["res"]["mode"] == "W"
    assert (c, 10) not in rs  # the queued R waits behind the granted W
    fx = h.apply({"op": "unlock", "sid": b, "tok": h.toks[b], "seq": 21, "ack": 0, "name": "L"})
    assert h.replies_for(fx)[(c, 10)]["res"]["mode"] == "R"
    assert h.req(b, "lock", name="L", mode="R")["ok"]  # readers share
    assert h.req(a, "unlock", name="L")["err"] == "ENOENT"


def test_a_new_holder_is_recalled_at_once_while_others_wait() -> None:
    """Without this the next holder learned of the queue only at the recall repeat (1 s),
    which stalled every contended key behind a delegated lock."""
    h = Harness()
    a, b, c = h.open(), h.open(), h.open()
    h.req(a, "lock", name="L", mode="W", recall=True)
    assert h.req(b, "lock", seq=10, name="L", mode="W", wait=True, recall=True) is None
    assert h.req(c, "lock", seq=10, name="L", mode="W", wait=True, recall=True) is None
    h.pushes.clear()
    fx = h.apply({"op": "unlock", "sid": a, "tok": h.toks[a], "seq": 20, "ack": 0, "name": "L"})
    granted = h.replies_for(fx)[(b, 10)]["res"]
    assert h.pushes == [(b, {"ev": "RECALL", "name": "L", "version": granted["version"],
                             "wanted": "W"})]
    kinds = [kind for kind, *_ in fx]
    assert kinds.index("reply") < kinds.index("push")  # the grant reaches b before its recall
    h.pushes.clear()
    fx = h.apply({"op": "unlock", "sid": b, "tok": h.toks[b], "seq": 21, "ack": 0, "name": "L"})
    assert h.replies_for(fx)[(c, 10)]["ok"] and h.pushes == []  # nobody waits behind c


def test_upgrade_and_versions_grow() -> None:
    h = Harness()
    a, b = h.open(), h.open()
    v1 = h.req(a, "lock", name="L", mode="R")["res"]["version"]
    assert h.req(a, "lock", name="L", mode="R")["res"]["version"] == v1
    v2 = h.req(a, "lock", name="L", mode="W")["res"]["version"]  # sole reader upgrades
    assert v2 > v1
    h.req(a, "unlock", name="L")
    h.req(a, "lock", name="L", mode="R")
    h.req(b, "lock", name="L", mode="R")
    assert h.req(a, "lock", name="L", mode="W")["err"] == "EBUSY"
    assert h.req(a, "lock", seq=50, name="L", mode="W", wait=True) is None
    fx = h.apply({"op": "unlock", "sid": b, "tok": h.toks[b], "seq": 60, "ack": 0, "name": "L"})
    r = h.replies_for(fx)[(a, 50)]["res"]
    assert r["mode"] == "W" and r["released_read"] and r["version"] > v2


def test_lock_timeout() -> None:
    h = Harness()
    a, b = h.open(), h.open()
    h.req(a, "lock", name="L", mode="W")
    assert h.req(b, "lock", seq=5, name="L", mode="W", wait=True) is None
    assert h.svc.waiters() == [(b, 5, "L", None)]
    fx = h.apply({"op": "lock_timeout", "sid": b, "seq": 5})
    assert h.replies_for(fx)[(b, 5)]["err"] == "ETIMEDOUT"
    assert h.req(b, "lock", seq=5, name="L", mode="W", wait=True)["err"] == "ETIMEDOUT"
    assert h.svc.waiters() == []


def test_close_versus_abort() -> None:
    h = Harness()
    a, b = h.open(), h.open()
    for s in (a, b):
        h.req(s, "write", name=f"w{s}", data=b"x")
        h.req(s, "lock", name=f"w{s}", mode="W")
        h.req(s, "create", name=f"e{s}", data=b"", ephemeral=True)
        h.req(s, "write", name=f"r{s}", data=b"x")
        h.req(s, "lock", name=f"r{s}", mode="R")
    other = h.open()
    assert h.req(other, "lock", seq=3, name=f"w{a}", mode="W", wait=True) is None
    fx = h.apply({"op": "close", "sid": a, "tok": h.toks[a], "seq": 99, "ack": 0})
    assert h.replies_for(fx)[(other, 3)]["ok"]  # waiter granted by close
    assert f"w{a}" in h.svc.files and f"e{a}" not in h.svc.files
    h.apply({"op": "expire", "sid": b})
    assert f"w{b}" not in h.svc.files  # write-locked file deleted on abort
    assert f"e{b}" not in h.svc.files and f"r{b}" in h.svc.files
    assert b not in h.svc.sessions and f"r{b}" not in h.svc.locks
    assert h.req(b, "write", name="z", data=b"")["err"] == "ESESSION_EXPIRED"


def test_snapshot_round_trip() -> None:
    h = Harness()
    s = h.open()
    h.req(s, "create", name="f", data=b"\x00\xff")
    h.req(s, "lock", name="L", mode="W", recall=True)
    h.req(s, "counter_add", name="c", delta=2)
    svc, extra = Service.from_blob(h.svc.to_blob({"cfg": 1}))
    assert extra == {"cfg": 1}
    assert svc.files == h.svc.files and svc.locks == h.svc.locks
    assert svc.sessions == h.svc.sessions and svc.counters == h.svc.counters
