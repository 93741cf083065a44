"""Local value cache with CRC32 checksums (spec 3.6); time is passed in."""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass
class Entry:
    meta_cas: int
    flags: int
    data: bytes
    crc: int
    stored: float
    checked: float


class ValueCache:
    def __init__(self, checksum: bool = True, checksum_interval: float = 5.0,
                 expire_interval: float = 300.0) -> None:
        self.checksum = checksum
        self.checksum_interval = checksum_interval
        self.expire_interval = expire_interval
        self.entries: dict[tuple[str, bytes], Entry] = {}
        self.checksum_errors = 0
        self.hits = 0
        self.misses = 0

    def put(self, backend: str, key: bytes, meta_cas: int, flags: int, data: bytes,
            now: float) -> None:
        crc = zlib.crc32(data) if self.checksum else 0
        self.entries[(backend, key)] = Entry(meta_cas, flags, data, crc, now, now)

    def get(self, backend: str, key: bytes, meta_cas: int, now: float) -> Entry | None:
        """The cached value if it still names `meta_cas`, is young enough and checks out."""
        e = self.entries.get((backend, key))
        if e is None or e.meta_cas != meta_cas or now - e.stored > self.expire_interval:
            if e is not None:
                del self.entries[(backend, key)]
            self.misses += 1
            return None
        if self.checksum and now - e.checked >= self.checksum_interval:
            if zlib.crc32(e.data) != e.crc:
                del self.entries[(backend, key)]
                self.checksum_errors += 1
                self.misses += 1
                return None
            e.checked = now
        self.hits += 1
        return e

    def drop(self, backend: str, key: bytes) -> None:
        self.entries.pop((backend, key), None)

    def drop_key(self, key: bytes) -> None:
        for k in [k for k in self.entries if k[1] == key]:
            del self.entries[k]

    def drop_backend(self, backend: str) -> None:
        for k in [k for k in self.entries if k[0] == backend]:
            del self.entries[k]

    def clear(self) -> None:
        self.entries.clear()
