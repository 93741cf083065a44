"""A clean copy of an event log fetched from a host (§6.8 step 2, issue 7 item 3).

The downloaded repository is hostile until verified: its objects may be decompression bombs,
delta chains, objects whose content does not match their id, or garbage nobody references.
`sanitize` walks only what the head reaches (a linear chain of commits, their trees and
blobs), reads each object through the bounded `fastread.ObjectReader` (never dulwich, whose
inflate trusts the size headers), checks each against its id, and writes them as one pack of
whole objects into a fresh bare repository. Everything after (verify, the merge into the local
log) reads only that copy.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import zlib

from dulwich.pack import write_pack_index_v2

from paxoslog.errors import LogError
from paxoslog.store.fastread import ObjectReader, tree_entries

_CODES = {b"commit": 1, b"tree": 2, b"blob": 3}
_HEX40 = re.compile(rb"[0-9a-f]{40}")
_NAME = re.compile(rb"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_CONFIG = b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"


def _short(sha: bytes) -> str:
    return sha.decode()[:12]


def _commit_links(sha: bytes, raw: bytes) -> tuple[bytes, list[bytes]]:
    header = raw.split(b"\n\n", 1)[0].split(b"\n")
    tree = header[0][5:] if header[0].startswith(b"tree ") else b""
    parents = [line[7:] for line in header[1:] if line.startswith(b"parent ")]
    if not _HEX40.fullmatch(tree) or not all(_HEX40.fullmatch(p) for p in parents):
        raise LogError(f"commit {_short(sha)} is malformed")
    if len(parents) > 1:
        raise LogError(f"commit {_short(sha)} is a merge; the event log is linear")
    return tree, parents


class _PackWriter:
    """Whole objects appended to a pack file; the count and checksum are fixed at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.f = open(path, "wb")  # noqa: SIM115 - closed in finish()
        self.f.write(b"PACK" + struct.pack(">LL", 2, 0))
        self.entries: list[tuple[bytes, int, int]] = []

    def add(self, sha: bytes, kind: bytes, raw: bytes) -> None:
        size = len(raw)
        byte = (_CODES[kind] << 4) | (size & 15)
        size >>= 4
        header = bytearray()
        while size:
            header.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        header.append(byte)
        entry = bytes(header) + zlib.compress(raw, 1)
        self.entries.append((bytes.fromhex(sha.decode()), self.f.tell(), zlib.crc32(entry)))
        self.f.write(entry)

    def finish(self) -> str:
        """Write the count, the checksum and the index; returns the pack's base path."""
        self.f.seek(8)
        self.f.write(struct.pack(">L", len(self.entries)))
        self.f.close()
        digest = hashlib.sha1()
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        checksum = digest.digest()
        with open(self.path, "ab") as f:
            f.write(checksum)
        base = os.path.join(os.path.dirname(self.path), f"pack-{checksum.hex()}")
        os.rename(self.path, base + ".pack")
        with open(base + ".idx", "wb") as f:
            write_pack_index_v2(f, sorted(self.entries), checksum)
        return base

    def abort(self) -> None:
        self.f.close()


def sanitize(objects_dir: str, head: bytes, dest: str, *, max_total: int) -> str:
    """Copy what `head` reaches from the store `objects_dir` into a new bare repository at
    `dest` (refs/heads/main = head). Raises LogError naming the first bad object, or when the
    objects inflate to more than `max_total` bytes in all. Returns the pack's base path."""
    pack_dir = os.path.join(dest, "objects", "pack")
    os.makedirs(pack_dir)
    os.makedirs(os.path.join(dest, "refs", "heads"))
    reader = ObjectReader(objects_dir, None)
    writer = _PackWriter(os.path.join(pack_dir, "tmp.pack"))
    total = 0
    seen: set[bytes] = set()

    def take(sha: bytes, want: bytes) -> bytes:
        nonlocal total
        kind, raw = reader.get(sha)
        if kind != want:
            raise LogError(f"object {_short(sha)} is a {kind.decode()}, not a {want.decode()}")
        if hashlib.sha1(kind + b" %d\0" % len(raw) + raw).hexdigest().encode() != sha:
            raise LogError(f"object {_short(sha)} does not match its id")
        total += len(raw)
        if total > max_total:
            raise LogError(f"the objects inflate to more than {max_total} bytes")
        writer.add(sha, kind, raw)
        seen.add(sha)
        return raw

    try:
        commit: bytes | None = head
        while commit is not None:
            if commit in seen:
                raise LogError(f"commit {_short(commit)} is its own ancestor")
            tree, parents = _commit_links(commit, take(commit, b"commit"))
            trees = [tree]
            while trees:
                tid = trees.pop()
                if tid in seen:
                    continue
                try:
                    entries = tree_entries(take(tid, b"tree"))
                except ValueError:
                    raise LogError(f"tree {_short(tid)} is malformed") from None
                for name, (mode, sha) in entries.items():
                    if not _NAME.fullmatch(name) or name in (b".", b".."):
                        raise LogError(f"tree {_short(tid)} holds an illegal name {name!r}")
                    if mode == 0o040000:
                        trees.append(sha)
                    elif mode == 0o100644:
                        if sha not in seen:
                            take(sha, b"blob")
                    else:
                        raise LogError(f"tree {_short(tid)}: {name!r} has mode {mode:o}")
            commit = parents[0] if parents else None
        base = writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        reader.close()
    with open(os.path.join(dest, "refs", "heads", "main"), "wb") as f:
        f.write(head + b"\n")
    with open(os.path.join(dest, "config"), "wb") as f:
        f.write(_CONFIG)
    with open(os.path.join(dest, "HEAD"), "wb") as f:
        f.write(b"ref: refs/heads/main\n")
    return base
