"""A read-only fast path into the git object store for whole-history scans (verify, replay).

Going through dulwich costs ~100 µs per object; a full scan of 100,000 commits reads 300,000
objects. Here pack indexes are read once into a dict and each object is inflated straight from
the mapped pack; deltas (what `git gc` makes of a log) are resolved here too, with dulwich's
compiled `apply_delta` once the sizes they declare are checked. Other index versions and
objects in no known pack are handed to dulwich.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from typing import Any

from paxoslog.errors import LogError

try:  # dulwich's compiled extension (C or Rust, depending on the version)
    from dulwich._pack import apply_delta as _c_apply_delta
    from dulwich.errors import ApplyDeltaError as _CDeltaError
except ImportError:  # pragma: no cover - a dulwich built without its extensions
    _c_apply_delta = None
    _CDeltaError = ValueError

_TYPES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_OFS_DELTA, _REF_DELTA = 6, 7
# Bounds on what one object may cost, whatever its headers claim: a log fetched from a host is
# hostile until verified, and a 1 MB zlib stream can inflate to 1 GB (issue 7, item 3).
MAX_OBJECT = 16 << 20
MAX_DELTA_DEPTH = 512
_CACHE_ENTRIES = 256  # resolved delta bases
_CACHE_BYTES = 64 << 20  # ... and their size: 256 bases of MAX_OBJECT would be 4 GiB
_PACK_SHIFT, _PACK_MASK, _MAX_PACKS = 1 << 16, 0xFFFF, 1 << 16  # index values: offset, pack


class ObjectReader:
    """`fallback` (a dulwich store, or None) serves objects found neither in a pack nor loose;
    everything read here is inflated under MAX_OBJECT and checked against its header."""

    def __init__(self, objects_dir: str, fallback: Any) -> None:
        self.objects_dir = objects_dir
        self.fallback = fallback  # a dulwich object store
        # binary sha -> offset << 16 | pack number: plain ints build in C, where (pack, offset)
        # tuples cost half a second for the 500,000 objects of a 100,000-commit log
        self.index: dict[bytes, int] = {}
        self._maps: list[mmap.mmap] = []
        self._bases: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._cached = 0  # bytes held by _bases
        pack_dir = os.path.join(objects_dir, "pack")
        for name in sorted(os.listdir(pack_dir)) if os.path.isdir(pack_dir) else ():
            if name.endswith(".idx"):
                self._load_pack(os.path.join(pack_dir, name[:-4]))

    def _load_pack(self, base: str) -> None:
        try:
            with open(base + ".idx", "rb") as f:
                idx = f.read()
            with open(base + ".pack", "rb") as f:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return
        header_ok = idx[:8] == b"\xfftOc\x00\x00\x00\x02" and data[:4] == b"PACK"
        count = int.from_bytes(idx[8 + 255 * 4: 8 + 256 * 4], "big") if header_ok else 0
        shas = 8 + 256 * 4
        offsets = shas + count * 24
        large = offsets + count * 4
        # a count the index cannot hold would make us loop over billions of entries
        if not header_ok or len(idx) < large + 40 or len(self._maps) >= _MAX_PACKS:
            data.close()
            return  # version 1 indexes and damaged ones: dulwich reads those objects, if any
        number = len(self._maps)
        self._maps.append(data)
        names = [idx[p: p + 20] for p in range(shas, shas + count * 20, 20)]
        offs = struct.unpack_from(f">{count}I", idx, offsets)
        if max(offs, default=0) & 0x80000000:  # any large offset (checked in C)
            offs = [
                int.from_bytes(idx[large + (o & 0x7FFFFFFF) * 8: large + (o & 0x7FFFFFFF) * 8 + 8],
                               "big") if o & 0x80000000 else o
                for o in offs
            ]
        keys = map(number.__add__, map(_PACK_SHIFT.__mul__, offs))
        self.index.update(zip(names, keys, strict=True))

    def get(self, sha: bytes, _depth: int = 0) -> tuple[bytes, bytes]:
        """(type, content) of object `sha` (40 hex digits)."""
        try:
            return self._get(sha, _depth)
        except (IndexError, ValueError, zlib.error, struct.error, OverflowError):
            raise LogError(f"object {sha.decode(errors='replace')[:12]} is corrupt") from None

    def get_bin(self, binsha: bytes) -> tuple[bytes, bytes]:
        """`get` by the 20-byte id, as trees hold it: a scan saves two conversions per object."""
        hit = self.index.get(binsha)
        if hit is None:
            return self.get(binsha.hex().encode())
        try:
            data, off = self._maps[hit & _PACK_MASK], hit >> 16
            return _small(data, off) or self._packed(data, off, binsha.hex().encode(), 0)
        except (IndexError, ValueError, zlib.error, struct.error, OverflowError):
            raise LogError(f"object {binsha.hex()[:12]} is corrupt") from None

    def _get(self, sha: bytes, depth: int) -> tuple[bytes, bytes]:
        hit = self.index.get(bytes.fromhex(sha.decode()))
        if hit is not None:
            data, off = self._maps[hit & _PACK_MASK], hit >> 16
            return _small(data, off) or self._packed(data, off, sha, depth)
        path = os.path.join(self.objects_dir, sha[:2].decode(), sha[2:].decode())
        try:
            with open(path, "rb") as f:
                # zlib never makes data much bigger: a larger file is not an object we take
                data = f.read(MAX_OBJECT + (MAX_OBJECT >> 6) + 1024)
        except FileNotFoundError:
            if self.fallback is None:
                raise LogError(f"object {sha.decode()[:12]} is missing") from None
            obj = self.fallback[sha]
            return obj.type_name, obj.as_raw_string()
        return _inflate_loose(data, sha)

    def _packed(self, data: mmap.mmap, off: int, sha: bytes, depth: int) -> tuple[bytes, bytes]:
        if depth > MAX_DELTA_DEPTH:
            raise LogError(f"object {sha.decode()[:12]}: delta chain too long")
        cached = self._bases.get((id(data), off))
        if cached is not None:
            return cached
        byte = data[off]
        kind = (byte >> 4) & 7
        size = byte & 15
        shift, pos = 4, off + 1
        while byte & 0x80:
            byte = data[pos]
            size |= (byte & 0x7F) << shift
            shift += 7
            pos += 1
            if shift > 70:
                raise ValueError("size header too long")
        if kind in _TYPES:
            return _TYPES[kind], _inflate_at(data, pos, size, sha)
        if kind == _OFS_DELTA:
            byte = data[pos]
            back = byte & 0x7F
            pos += 1
            while byte & 0x80:
                byte = data[pos]
                back = ((back + 1) << 7) | (byte & 0x7F)
                pos += 1
                if back > off:
                    raise ValueError("delta base outside the pack")
            if not 0 < back < off:
                raise ValueError("delta base outside the pack")
            base = self._packed(data, off - back, sha, depth + 1)
            self._remember((id(data), off - back), base)
        elif kind == _REF_DELTA:
            base = self.get(bytes(data[pos: pos + 20]).hex().encode(), depth + 1)
            pos += 20
        else:
            raise ValueError(f"unknown object type {kind}")
        return base[0], _apply_delta(base[1], _inflate_at(data, pos, size, sha), sha)

    def _remember(self, key: tuple[int, int], value: tuple[bytes, bytes]) -> None:
        if key in self._bases:
            return
        size = len(value[1])
        if len(self._bases) >= _CACHE_ENTRIES or self._cached + size > _CACHE_BYTES:
            self._bases.clear()
            self._cached = 0
        if size <= _CACHE_BYTES:
            self._bases[key] = value
            self._cached += size

    def close(self) -> None:
        self._bases.clear()
        self._cached = 0
        for m in self._maps:
            m.close()
        self._maps.clear()


def _small(data: mmap.mmap, off: int) -> tuple[bytes, bytes] | None:
    """(type, content) of an undeltified object under 2 KiB at `off` (commits, trees, events:
    most of a scan), or None for `_packed`, which also says what is wrong with a bad one. The
    bounds are those of `_inflate_at`: exactly `size` bytes, the stream complete."""
    b0 = data[off]
    kind = _TYPES.get((b0 >> 4) & 7)
    if kind is None:
        return None
    if b0 & 0x80:
        b1 = data[off + 1]
        if b1 & 0x80:
            return None
        size, pos = (b0 & 15) | (b1 << 4), off + 2
    else:
        size, pos = b0 & 15, off + 1
    try:
        # One call, no decompressor object: from at most 2111 bytes zlib cannot make more than
        # ~2 MB (its ratio is bounded by 1032:1), which is under MAX_OBJECT.
        body = zlib.decompress(data[pos: pos + size + 64])
    except zlib.error:  # longer than the slice, or damaged
        return None
    return (kind, body) if len(body) == size else None


def _too_large(sha: bytes) -> LogError:
    return LogError(f"object {sha.decode()[:12]} is larger than {MAX_OBJECT} bytes")


def _inflate_loose(data: bytes, sha: bytes) -> tuple[bytes, bytes]:
    d = zlib.decompressobj()
    head = d.decompress(data, 64)
    nul = head.find(b"\0")
    kind, _, digits = head[:nul].partition(b" ")
    if nul < 0 or not digits.isdigit() or len(digits) > 20 or kind not in _TYPES.values():
        raise ValueError("bad loose object header")
    size = int(digits)
    if size > MAX_OBJECT:
        raise _too_large(sha)
    body = [head[nul + 1:]]
    got = len(body[0])
    while d.unconsumed_tail and got <= size:
        body.append(d.decompress(d.unconsumed_tail, size + 1 - got))
        got += len(body[-1])
    if got != size or not d.eof:
        raise ValueError("object size does not match its header")
    return kind, b"".join(body)


def _inflate_at(data: mmap.mmap, pos: int, size: int, sha: bytes) -> bytes:
    """The zlib stream at `pos`, which must inflate to exactly `size` bytes (<= MAX_OBJECT)."""
    if size > MAX_OBJECT:
        raise _too_large(sha)
    d = zlib.decompressobj()
    if size < 4096:
        # The common case in one call: a small object's stream fits in size + 64 bytes
        # (zlib's worst case adds 5 bytes per block and 6 in all); the checks are the same.
        first = d.decompress(data[pos: pos + size + 64], size + 1)
        if d.eof:
            if len(first) != size:
                raise ValueError("object size does not match its header")
            return first
        if len(first) > size:
            raise ValueError("object larger than its header")
        d = zlib.decompressobj()  # an unusual stream: start over, the long way
    out: list[bytes] = []
    got, window, end = 0, size + 64, len(data)
    while not d.eof:
        if d.unconsumed_tail:
            chunk = d.unconsumed_tail
        else:
            if pos >= end:
                raise ValueError("truncated object")
            chunk = data[pos: pos + window]
            pos += len(chunk)
            window = min(window * 2, 1 << 22)
        out.append(d.decompress(chunk, size + 1 - got))
        got += len(out[-1])
        if got > size:
            raise ValueError("object larger than its header")
    if got != size:
        raise ValueError("object size does not match its header")
    return b"".join(out)


def _varint(delta: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = delta[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 70:
            raise ValueError("delta size header too long")


def _apply_delta(base: bytes, delta: bytes, sha: bytes) -> bytes:
    """git's delta format, every copy checked against the base and the declared size. The
    sizes are checked here, before anything is allocated; the copying is done by dulwich's
    compiled `apply_delta` (which also refuses out-of-range copies and trailing bytes): the
    loop below costs ~50 µs per object, three times what a `git gc`-ed log's scan spends on
    everything else (issue 12)."""
    src, pos = _varint(delta, 0)
    dst, pos = _varint(delta, pos)
    if src != len(base):
        raise ValueError("delta base size mismatch")
    if dst > MAX_OBJECT:
        raise _too_large(sha)
    if _c_apply_delta is not None:
        try:
            out = b"".join(_c_apply_delta(base, delta))
        except _CDeltaError as exc:
            raise ValueError(f"bad delta: {exc}") from None
        if len(out) != dst:
            raise ValueError("delta result size mismatch")
        return out
    return _apply_delta_py(base, delta, pos, dst)


def _apply_delta_py(base: bytes, delta: bytes, pos: int, dst: int) -> bytes:
    """The same in Python, where dulwich's extension is not built."""
    out = bytearray()
    end = len(delta)
    while pos < end:
        op = delta[pos]
        pos += 1
        if op & 0x80:
            start = size = 0
            for i in range(4):
                if op & (1 << i):
                    start |= delta[pos] << (8 * i)
                    pos += 1
            for i in range(3):
                if op & (0x10 << i):
                    size |= delta[pos] << (8 * i)
                    pos += 1
            size = size or 0x10000
            if start + size > len(base) or len(out) + size > dst:
                raise ValueError("delta copy out of range")
            out += base[start: start + size]
        elif op:
            if pos + op > end or len(out) + op > dst:
                raise ValueError("delta insert out of range")
            out += delta[pos: pos + op]
            pos += op
        else:
            raise ValueError("delta opcode 0")
    if len(out) != dst:
        raise ValueError("delta result size mismatch")
    return bytes(out)


def commit_links(raw: bytes) -> tuple[bytes, bytes | None]:
    """(tree, first parent) of a raw commit."""
    tree = raw[5:45]
    parent = raw[53:93] if raw[46:53] == b"parent " else None
    return tree, parent


def tree_entries(raw: bytes) -> dict[bytes, tuple[int, bytes]]:
    """name -> (mode, hex sha) of a raw tree."""
    out = {}
    pos, end = 0, len(raw)
    while pos < end:
        space = raw.index(b" ", pos)
        nul = raw.index(b"\0", space)
        out[raw[space + 1: nul]] = (int(raw[pos:space], 8), raw[nul + 1: nul + 21].hex().encode())
        pos = nul + 21
    return out
