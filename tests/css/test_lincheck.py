"""The linearizability checker accepts linearizable histories and rejects broken ones."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.css.lincheck import Counter, MemcacheKey, Op, Register, check, describe


def concurrent_history(seed: int, n: int, model: str) -> list[Op]:
    """Run a sequential execution, then blur each op into an interval around its instant."""
    rng = random.Random(seed)
    ops: list[Op] = []
    regs: dict = {}
    ctrs: dict = {}
    version = 0
    for i in range(n):
        t = i * 1.0
        inv, ret = t - rng.uniform(0, 3), t + rng.uniform(0, 3)
        key = rng.choice("ab")
        r = rng.random()
        status = "ok" if rng.random() > 0.1 else "unknown"
        if model == "ctr":
            if r < 0.6:
                d = rng.randint(-3, 5)
                ctrs[key] = ctrs.get(key, 0) + d
                ops.append(Op(i % 4, "add", d, inv, ret, status, ctrs[key], key))
            else:
                ops.append(Op(i % 4, "get", None, inv, ret, "ok", ctrs.get(key, 0), key))
            continue
        regs.setdefault(key, None)
        if r < 0.4:
            version += 1
            regs[key] = (f"v{i}", version)
            ops.append(Op(i % 4, "write", f"v{i}", inv, ret, status, version, key))
        elif r < 0.7:
            have = regs[key][1] if regs[key] else 0
            expect = have if rng.random() < 0.6 else have + 7
            if expect == have:
                version += 1
                regs[key] = (f"c{i}", version)
                res: tuple = ("ok", version)
            else:
                res = ("conflict", have)
            ops.append(Op(i % 4, "cas", (expect, f"c{i}"), inv, ret, status, res, key))
        else:
            ops.append(Op(i % 4, "read", None, inv, ret, "ok", regs[key], key))
    return ops


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10**9), n=st.integers(1, 60), model=st.sampled_from(["reg", "ctr"]))
def test_histories_from_sequential_runs_pass(seed: int, n: int, model: str) -> None:
    h = concurrent_history(seed, n, model)
    r = check(h, Register if model == "reg" else Counter)
    assert r.ok, describe(r)


def test_stale_read_fails() -> None:
    h = [Op(1, "write", "x", 0, 1, "ok", 1, "k"),
         Op(1, "write", "y", 2, 3, "ok", 2, "k"),
         Op(2, "read", None, 4, 5, "ok", ("x", 1), "k")]
    r = check(h, Register)
    assert not r.ok and r.key == "k"
    assert any(o.op == "read" for o in r.window)
    assert "not linearizable" in describe(r)


def test_lost_write_fails_and_unknown_write_may_vanish() -> None:
    h = [Op(1, "write", "x", 0, 1, "ok", 1, "k"), Op(2, "read", None, 2, 3, "ok", None, "k")]
    assert not check(h, Register).ok
    h[0].status = "unknown"
    h[0].ret = math.inf
    assert check(h, Register).ok


def test_phantom_value_fails() -> None:
    h = [Op(1, "write", "x", 0, 1, "ok", 1, "k"), Op(2, "read", None, 2, 3, "ok", ("z", 1), "k")]
    assert not check(h, Register).ok


def test_concurrent_reads_may_see_either_value() -> None:
    h = [Op(1, "write", "x", 0, 10, "ok", 1, "k"),
         Op(2, "read", None, 1, 2, "ok", ("x", 1), "k"),
         Op(3, "read", None, 3, 4, "ok", None, "k")]
    assert not check(h, Register).ok  # once seen, the write cannot be undone
    h[2].result = ("x", 1)
    assert check(h, Register).ok


def test_cas_conflict_and_counter() -> None:
    h = [Op(1, "write", "x", 0, 1, "ok", 5, "k"),
         Op(2, "cas", (4, "y"), 2, 3, "ok", ("ok", 6), "k")]
    assert not check(h, Register).ok
    h[1].result = ("conflict", 5)
    assert check(h, Register).ok
    c = [Op(1, "add", 2, 0, 1, "ok", 2, "c"), Op(2, "add", 3, 0.5, 1.5, "ok", 5, "c"),
         Op(3, "get", None, 2, 3, "ok", 5, "c")]
    assert check(c, Counter).ok
    c[2].result = 2  # lost add
    assert not check(c, Counter).ok
    c2 = [Op(1, "add", 1, 0, 1, "ok", 1, "c"), Op(2, "add", 1, 2, 3, "ok", 1, "c")]
    assert not check(c2, Counter).ok  # duplicate value: an add applied twice or lost


def test_memcache_model_allows_eviction_not_old_values() -> None:
    h = [Op(1, "set", "a", 0, 1, "ok", 1, "k"), Op(1, "set", "b", 2, 3, "ok", 2, "k"),
         Op(2, "get", None, 4, 5, "ok", None, "k")]
    assert check(h, MemcacheKey).ok  # eviction
    h[2].result = ("a", 1)
    assert not check(h, MemcacheKey).ok  # older value after a newer write
