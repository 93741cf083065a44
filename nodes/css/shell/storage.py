"""Durable state of one member: MEMBER, WAL segments, snapshots, SHUTDOWN marker, LOCK.

WAL record: u32 length, u32 CRC32 of the body, msgpack body. Every segment starts with a
HEADER record carrying the format number, so a reader meets an unknown format explicitly.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import zlib
from typing import Any

import msgpack

from ..errors import StorageError
from .durable import fsync_dir, unlink_durable, write_atomic

FORMAT = 1
TEMP_PREFIX = ".tmp-"  # temporary files of atomic writes; recovery ignores them
REC = struct.Struct(">II")
log = logging.getLogger("css.storage")


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(b: bytes) -> object:
    return msgpack.unpackb(b, raw=False, strict_map_key=False)


def encode_record(rec: dict) -> bytes:
    body = _pack(rec)
    return REC.pack(len(body), zlib.crc32(body)) + body


class Storage:
    def __init__(self, path: str, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self.wal_dir = os.path.join(path, "wal")
        self.snap_dir = os.path.join(path, "snap")
        self.seg = None  # open file object of the current segment
        self.seg_name = ""
        self.lock_fd: int | None = None
        self.crash_at: str | None = None  # test hook (control.CRASH_POINTS)

    # ---- identity, lock, marker ------------------------------------------------------------
    def is_empty(self) -> bool:
        return not os.path.isdir(self.path) or not os.listdir(self.path)

    def create(self, member: dict) -> None:
        os.makedirs(self.wal_dir, exist_ok=True)
        os.makedirs(self.snap_dir, exist_ok=True)
        fsync_dir(self.path)
        fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        write_atomic(os.path.join(self.path, "MEMBER"), _pack({**member, "format": FORMAT}))

    def read_member(self) -> dict:
        try:
            with open(os.path.join(self.path, "MEMBER"), "rb") as f:
                m = _unpack(f.read())
        except FileNotFoundError:
            raise StorageError(f"{self.path}: no MEMBER file; use --init or --join") from None
        except Exception as e:
            raise StorageError(f"{self.path}/MEMBER unreadable: {e}") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise StorageError(f"{self.path}/MEMBER: unknown format "
                               f"{m.get('format') if isinstance(m, dict) else '?'}")
        return m

    def lock(self) -> None:
        fd = os.open(os.path.join(self.path, "LOCK"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StorageError(f"{self.path}: another process holds LOCK") from None
        self.lock_fd = fd

    def read_shutdown(self) -> tuple[int, str] | None:
        try:
            with open(os.path.join(self.path, "SHUTDOWN"), encoding="utf-8") as f:
                line = f.readline().strip()
        except FileNotFoundError:
            return None
        parts = line.split(" ", 1)
        try:
            return int(parts[0]), parts[1] if len(parts) > 1 else ""
        except ValueError:
            raise StorageError(f"{self.path}/SHUTDOWN: bad marker {line!r}") from None

    def write_shutdown(self, next_seq: int, comment: str = "") -> None:
        text = f"{next_seq} {comment}".rstrip() + "\n"
        write_atomic(os.path.join(self.path, "SHUTDOWN"), text.encode(), self.fsync)

    def remove_shutdown(self) -> None:
        unlink_durable(os.path.join(self.path, "SHUTDOWN"), True)

    # ---- recovery --------------------------------------------------------------------------
    def _snaps(self) -> list[tuple[int, str]]:
        out = []
        for n in os.listdir(self.snap_dir):
            if n.startswith("snap-") and n.endswith(".msgpack"):
                out.append((int(n[5:-8]), os.path.join(self.snap_dir, n)))
        return sorted(out, reverse=True)

    def _segments(self) -> list[tuple[int, str]]:
        out = []
        for n in os.listdir(self.wal_dir):
            if n.startswith("wal-") and n.endswith(".log"):
                out.append((int(n[4:-4]), os.path.join(self.wal_dir, n)))
        return sorted(out)

    def load(self) -> tuple[int, bytes | None, list[dict]]:
        """Return (snapshot slot, snapshot blob or None, WAL records in write order)."""
        slot, blob = 0, None
        for s, p in self._snaps():
            try:
                with open(p, "rb") as f:
                    d = _unpack(f.read())
                if d.get("format") != FORMAT:
                    raise StorageError(f"{p}: unknown snapshot format {d.get('format')}")
                if zlib.crc32(d["blob"]) != d["crc"] or d["slot"] != s:
                    raise ValueError("checksum")
                slot, blob = s, d["blob"]
                break
            except StorageError:
                raise
            except Exception:
                log.warning("snapshot %s does not verify; trying an older one", p)
        records: list[dict] = []
        segs = self._segments()
        for i, (_first, p) in enumerate(segs):
            records += self._read_segment(p, last=(i == len(segs) - 1))
        return slot, blob, records

    def check_continuity(self, snap_slot: int) -> None:
        """Refuse a data directory whose log does not reach back to its snapshot (or to slot
        1): its member lost durable state (promises, accepts) it may have acknowledged, so it
        must not vote again under its identity; it comes back only through join (spec 2.8)."""
        segs = self._segments()
        if not segs:
            raise StorageError(f"{self.path}: MEMBER present but no WAL: this member's data "
                               "was lost; it may not rejoin under its old identity (replace "
                               "it: --join gives a new one)")
        if segs[0][0] > snap_slot + 1:
            raise StorageError(f"{self.path}: the WAL starts at slot {segs[0][0]} but the "
                               f"newest snapshot is at slot {snap_slot}: data lost; replace "
                               "this member (--join gives a new identity)")

    def _read_segment(self, p: str, last: bool) -> list[dict]:
        with open(p, "rb") as f:
            data = f.read()
        out, off = [], 0
        while off < len(data):
            bad = None
            if off + REC.size > len(data):
                bad = "short header"
            else:
                n, crc = REC.unpack_from(data, off)
                body = data[off + REC.size: off + REC.size + n]
                if len(body) < n:
                    bad = "short body"
                elif zlib.crc32(body) != crc:
                    bad = "checksum"
            if bad:
                if not last:
                    raise StorageError(f"{p}: corrupt record at offset {off} ({bad}); "
                                       "replace this member")
                log.warning("torn write at the end of %s offset %d (%s): truncating", p, off,
                            bad)
                with open(p, "r+b") as f:
                    f.truncate(off)
                    os.fsync(f.fileno())
                break
            rec = _unpack(body)
            if rec.get("r") == "HEADER" and rec.get("format") != FORMAT:
                raise StorageError(f"{p}: unknown WAL format {rec.get('format')}")
            if rec.get("r") != "HEADER":
                out.append(rec)
            off += REC.size + n
        return out

    # ---- writing (called from the single writer thread only) ----------------------------------
    def open_segment(self, first_slot: int) -> None:
        name = os.path.join(self.wal_dir, f"wal-{first_slot:020d}.log")
        if self.seg is not None and name == self.seg_name:
            return
        fresh = not os.path.exists(name)
        # unbuffered: a failed write (ENOSPC) leaves nothing queued that a later flush could
        # write after the rollback
        seg = open(name, "ab", buffering=0)
        if fresh:
            try:
                self._write_all(seg, encode_record({"r": "HEADER", "format": FORMAT}))
                if self.fsync:
                    os.fdatasync(seg.fileno())
                    fsync_dir(self.wal_dir)
            except OSError:
                seg.close()
                unlink_durable(name, self.fsync)  # never leave a segment without its header
                raise
        if self.seg is not None:
            self.seg.close()
        self.seg, self.seg_name = seg, name

    def resume(self) -> None:
        segs = self._segments()
        self.open_segment(segs[-1][0] if segs else 1)

    @staticmethod
    def _write_all(f: Any, data: bytes) -> None:
        """Write everything or roll the file back to where it was and raise: a full disk
        (ENOSPC) must never leave a partial record in the WAL."""
        start = os.lseek(f.fileno(), 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                n = f.write(view)
                if not n:
                    raise OSError(errno.ENOSPC, "short write")
                view = view[n:]
        except OSError:
            os.ftruncate(f.fileno(), start)
            raise

    def append(self, records: list[dict]) -> None:
        self._write_all(self.seg, b"".join(encode_record(r) for r in records))

    def _sync_file(self) -> None:
        if self.fsync:
            os.fdatasync(self.seg.fileno())

    def sync(self) -> None:
        self._sync_file()

    def snapshot(self, slot: int, blob: bytes, carry: list[dict]) -> None:
        """Store a snapshot, start a new segment with `carry`, then drop old files."""
        self._sync_file()
        path = os.path.join(self.snap_dir, f"snap-{slot:020d}.msgpack")
        data = _pack({"format": FORMAT, "slot": slot, "crc": zlib.crc32(blob), "blob": blob})
        if self.crash_at in ("snapshot_mid_write", "snapshot_after_rename"):
            self._crash_in_snapshot(path, data)
        write_atomic(path, data, self.fsync)
        prev = self.seg_name
        self.open_segment(slot + 1)
        try:
            self.append(carry)
        except OSError:
            # the new segment has only its header: drop it and go on in the old one, so a
            # retry starts the same way (the snapshot file itself is complete and durable)
            self.seg.close()
            self.seg = None
            unlink_durable(self.seg_name, self.fsync)
            self.seg_name = ""
            self.open_segment(int(os.path.basename(prev)[4:-4]))
            raise
        self._sync_file()
        self.crash_point("snapshot_before_truncate")
        snaps = self._snaps()
        keep_from = snaps[1][0] + 1 if len(snaps) > 1 else 1
        for _s, p in snaps[2:]:
            unlink_durable(p, self.fsync)
        for first, p in self._segments():
            if first < keep_from and p != self.seg_name:
                unlink_durable(p, self.fsync)

    # ---- test hooks (--test-hooks, crash_at) ----------------------------------------------
    def crash_point(self, point: str) -> None:
        """Die here, as kill -9 would, if the test armed this point (spec 5.4)."""
        if self.crash_at == point:
            log.warning("crash_at %s: exiting", point)
            os._exit(99)

    def _crash_in_snapshot(self, path: str, data: bytes) -> None:
        """write_atomic's steps, dying half-way through the temporary file, or after the
        rename but before the directory fsync."""
        tmp = os.path.join(self.snap_dir, f"{TEMP_PREFIX}{os.getpid()}-crash")
        with open(tmp, "wb") as f:
            if self.crash_at == "snapshot_mid_write":
                f.write(data[:len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                self.crash_point("snapshot_mid_write")
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        self.crash_point("snapshot_after_rename")

    def close(self) -> None:
        if self.seg is not None:
            self._sync_file()
            self.seg.close()
            self.seg = None
