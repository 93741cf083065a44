"""Stale-read checker for per-key histories of unique-valued writes and reads.

An event is (client, op, key, value, invoke, ret): op "set" with a value no other set uses, or
"get" with the value read (None for a miss). Misses are always legal (eviction, expiry). A read
of v is *stale* when some acknowledged set of the same key started after v's set had returned
and itself returned before the read started: the read missed a write that was over before it
began (G5). A read of a value no set wrote, or whose set started only after the read returned,
is a *phantom*. Sets whose outcome is unknown have ret = inf: they never make a read stale.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    client: int
    op: str
    key: str
    value: bytes | None
    invoke: float
    ret: float = math.inf


def check(history: list[Event]) -> list[str]:
    """Problems found (empty if none)."""
    sets: dict[tuple[str, bytes], Event] = {}
    by_key: dict[str, list[Event]] = defaultdict(list)
    for e in history:
        if e.op == "set":
            sets[(e.key, e.value)] = e  # type: ignore[index]
            by_key[e.key].append(e)
    problems = []
    for r in history:
        if r.op != "get" or r.value is None:
            continue
        w = sets.get((r.key, r.value))
        if w is None or w.invoke > r.ret:
            problems.append(f"phantom read of {r.value!r} on {r.key} by client {r.client}")
            continue
        for w2 in by_key[r.key]:
            if w2 is not w and w2.invoke > w.ret and w2.ret < r.invoke:
                problems.append(f"stale read of {r.value!r} on {r.key} by client {r.client} at "
                                f"{r.invoke:.3f}: {w2.value!r} was acknowledged at {w2.ret:.3f}")
                break
    return problems
