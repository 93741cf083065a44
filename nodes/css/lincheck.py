"""Linearizability checker: Wing & Gong search with Lowe's memoization, per key.

A history is a list of `Op(client, op, args, invoke, ret, status, result, key)`. `status` is
"ok", "fail" (certainly did not take effect: dropped) or "unknown" (may take effect at any time
after its invocation; its return time is infinite). The history of each key is checked on its own
(P-compositionality). Models: `Register` (read/write/cas on a CSS file with versions), `Counter`
(add returning the new value, get) and `MemcacheKey` (get/gets/set/add/cas/delete, where a miss
is always allowed because memcached may evict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

ANY = "?"  # a version we did not observe (written by an operation with unknown outcome)


@dataclass
class Op:
    client: Any
    op: str
    args: Any
    invoke: float
    ret: float
    status: str = "ok"
    result: Any = None
    key: Any = None
    index: int = field(default=0, compare=False)


class Register:
    """state: None (absent) or (data, version). Results: read -> (data, version) or None,
    write -> version, cas -> ("ok", version) or ("conflict", version)."""

    init: Any = None

    @staticmethod
    def step(state: Any, op: Op) -> list[Any]:
        known = op.status == "ok"
        if op.op == "read" and not known:
            return [state]
        if op.op == "read":
            if op.result is None:
                return [state] if state is None else []
            if state is None or state[0] != op.result[0]:
                return []
            return [state] if state[1] in (ANY, op.result[1]) else []
        if op.op == "write":
            return [(op.args, op.result if known else ANY)]
        if op.op == "cas":
            expect, data = op.args
            have = 0 if state is None else state[1]
            if not known:
                return [(data, ANY)] if have in (ANY, expect) else [state]
            kind, ver = op.result
            if kind == "ok":
                return [(data, ver)] if have in (ANY, expect) else []
            return [state] if have == ANY or (have != expect and have == ver) else []
        raise ValueError(f"register: unknown op {op.op!r}")


class Counter:
    """state: int. add(delta) returns the new value; get returns the value."""

    init: Any = 0

    @staticmethod
    def step(state: int, op: Op) -> list[Any]:
        if op.op == "add":
            new = state + op.args
            if op.status != "ok":
                return [new]
            return [new] if op.result == new else []
        if op.op == "get":
            return [state] if op.status != "ok" or op.result == state else []
        raise ValueError(f"counter: unknown op {op.op!r}")


class MemcacheKey:
    """state: None or (value, cas). A get may always miss (eviction), which empties the key."""

    init: Any = None

    @staticmethod
    def step(state: Any, op: Op) -> list[Any]:
        ok = op.status == "ok"
        if op.op in ("get", "gets"):
            if not ok:
                return [state]
            if op.result is None:
                return [None]
            if state is None or state[0] != op.result[0]:
                return []
            if op.op == "gets" and state[1] not in (ANY, op.result[1]):
                return []
            return [state]
        if op.op == "set":
            return [(op.args, op.result if ok else ANY)]
        if op.op == "add":
            if not ok:
                return [state, (op.args, ANY)] if state is None else [state]
            if op.result is None:  # NOT_STORED
                return [state] if state is not None else []
            return [(op.args, op.result)] if state is None else []
        if op.op == "delete":
            if not ok:
                return [None]
            return [None] if (state is not None) == op.result else []
        if op.op == "cas":
            expect, value = op.args
            if not ok:
                return [state, (value, ANY)] if state is not None else [state]
            if op.result == "stored":
                return [(value, ANY)] if state is not None and state[1] in (ANY, expect) else []
            if op.result == "exists":
                return [state] if state is not None and state[1] != expect else []
            return [None] if state is None else [None]  # not_found: evicted or absent
        raise ValueError(f"memcache: unknown op {op.op!r}")


@dataclass
class Result:
    ok: bool
    key: Any = None
    window: list[Op] = field(default_factory=list)
    explored: int = 0


def check_key(ops: list[Op], model: Any, limit: int = 2_000_000) -> Result:
    """Check one key's history; on failure `window` holds the linearized prefix tail and the
    operations that could not be placed next."""
    ops = sorted((o for o in ops if o.status != "fail"), key=lambda o: o.invoke)
    for i, o in enumerate(ops):
        o.index = i
    rets = [o.ret if o.status == "ok" else math.inf for o in ops]
    must = sum(1 << i for i, o in enumerate(ops) if o.status == "ok")
    seen: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any, list[int]]] = [(0, model.init, [])]
    best: tuple[int, list[int], int] = (-1, [], 0)
    explored = 0
    while stack:
        done, state, path = stack.pop()
        if done & must == must:
            return Result(True, explored=explored)
        if (done, _freeze(state)) in seen:
            continue
        seen.add((done, _freeze(state)))
        explored += 1
        if explored > limit:
            raise RuntimeError("linearizability search too large")
        if bin(done & must).count("1") > best[0]:
            best = (bin(done & must).count("1"), path, done)
        horizon = min((rets[i] for i in range(len(ops)) if not done >> i & 1), default=math.inf)
        for i in range(len(ops) - 1, -1, -1):
            if done >> i & 1 or ops[i].invoke > horizon:
                continue
            for nxt in model.step(state, ops[i]):
                stack.append((done | 1 << i, nxt, path + [i]))
    _n, path, done = best
    horizon = min((rets[i] for i in range(len(ops)) if not done >> i & 1), default=math.inf)
    stuck = [ops[i] for i in range(len(ops)) if not done >> i & 1 and ops[i].invoke <= horizon]
    return Result(False, window=[ops[i] for i in path[-5:]] + stuck, explored=explored)


def _freeze(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_freeze(i) for i in x)
    return x


def check(history: list[Op], model: Any) -> Result:
    """Check a whole history, key by key; returns the first failing key's result."""
    keys: dict[Any, list[Op]] = {}
    for o in history:
        keys.setdefault(o.key, []).append(o)
    total = 0
    for k, ops in keys.items():
        r = check_key(ops, model)
        total += r.explored
        if not r.ok:
            r.key = k
            return r
    return Result(True, explored=total)


def describe(r: Result) -> str:
    if r.ok:
        return "linearizable"
    lines = [f"not linearizable at key {r.key!r}; failing window:"]
    for o in r.window:
        lines.append(f"  client={o.client} {o.op}{o.args!r} -> {o.result!r} [{o.status}] "
                     f"{o.invoke:.4f}..{o.ret:.4f}")
    return "\n".join(lines)
