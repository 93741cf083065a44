"""Per-key metadata records (spec 3.2), exptime rules and the meta-CAS block allocator."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import msgpack

RELATIVE_MAX = 60 * 60 * 24 * 30  # memcached: up to 30 days an exptime is relative
META_BLOCK = 1000


def css_prefix(ns: str) -> str:
    """`PaxosMemcache/<name-space>` (spec 3.2) as one CSS name component: the name space
    may hold `/`, `%` or be `.` (rule N allows any non-blank text), so it is percent-encoded;
    names made only of letters, digits and `_.-` (all that was allowed before) are unchanged.
    Two name spaces therefore never share an object."""
    part = quote(ns, safe="")
    if part in (".", ".."):
        part = part.replace(".", "%2E")
    return f"PaxosMemcache/{part}"


def key_name(ns: str, key: bytes) -> str:
    return f"{ns}/key/{hashlib.blake2b(key, digest_size=16).hexdigest()}"


def absolute_exptime(exptime: int, now_wall: float) -> float:
    """memcached's rules: 0 never, negative already expired, <= 30 days relative."""
    if exptime == 0:
        return 0
    if exptime < 0:
        return now_wall - 1
    if exptime <= RELATIVE_MAX:
        return now_wall + exptime
    return float(exptime)


@dataclass
class Meta:
    key: bytes
    meta_cas: int
    flags: int
    bytes: int | None  # None after incr/decr: memcached may pad in place, length unknown
    exptime: float
    backends: list[dict] = field(default_factory=list)
    epoch: int = 0
    by: int = 0

    def live(self, now_wall: float) -> bool:
        return self.exptime == 0 or self.exptime > now_wall

    def on(self, backend: str) -> bool:
        return any(b.get("addr") == backend for b in self.backends)

    def encode(self) -> bytes:
        return msgpack.packb({"key": self.key, "meta_cas": self.meta_cas, "flags": self.flags,
                              "bytes": self.bytes, "exptime": self.exptime,
                              "backends": self.backends, "epoch": self.epoch, "by": self.by},
                             use_bin_type=True)


def decode(data: bytes) -> Meta:
    """Decode a metadata file; ValueError if it is not one (hostile until validated)."""
    try:
        d: Any = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        raise ValueError("undecodable metadata") from None
    if not isinstance(d, dict):
        raise ValueError("metadata is not a map")
    try:
        key, cas, flags = d["key"], d["meta_cas"], d["flags"]
        nbytes, exp, backends = d.get("bytes"), d.get("exptime", 0), d.get("backends", [])
        if not (isinstance(key, bytes) and isinstance(cas, int) and isinstance(flags, int)
                and (nbytes is None or isinstance(nbytes, int))
                and isinstance(exp, int | float) and isinstance(backends, list)
                and all(isinstance(b, dict) for b in backends)):
            raise TypeError
        return Meta(key, cas, flags, nbytes, float(exp), backends, int(d.get("epoch", 0)),
                    int(d.get("by", 0)))
    except (KeyError, TypeError, ValueError):
        raise ValueError("malformed metadata") from None


class CasBlock:
    """Meta-CAS values from a block fetched with one counter_add of META_BLOCK."""

    def __init__(self) -> None:
        self.next = 0
        self.end = 0  # exclusive

    def take(self) -> int | None:
        """A fresh value, or None when the block is used up (fetch a new one)."""
        if self.next >= self.end:
            return None
        v = self.next
        self.next += 1
        return v

    def refill(self, counter_value: int) -> None:
        # counter_add returned the new total: the block is (value - META_BLOCK, value]
        self.next, self.end = counter_value - META_BLOCK + 1, counter_value + 1
