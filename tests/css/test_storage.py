"""WAL and snapshot files: torn tails repaired, corruption and unknown formats refused."""

from __future__ import annotations

import os

import msgpack
import pytest

from nodes.css.errors import StorageError
from nodes.css.shell.storage import Storage


def make(tmp_path) -> Storage:
    st = Storage(str(tmp_path / "d"))
    st.create({"cell": "c", "cell_id": "x", "no": 0, "member_id": "m"})
    st.resume()
    return st


def test_records_survive_and_torn_tail_is_truncated(tmp_path) -> None:
    st = make(tmp_path)
    st.append([{"r": "PROMISE", "b": [1, 0]}, {"r": "LEARNED", "s": 1, "val": ["a"]}])
    st.sync()
    seg = st.seg_name
    st.close()
    size = os.path.getsize(seg)
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x01\x00\x12\x34")  # a record header without its body
    _slot, blob, recs = Storage(str(tmp_path / "d")).load()
    assert blob is None and [r["r"] for r in recs] == ["PROMISE", "LEARNED"]
    assert os.path.getsize(seg) == size  # repaired in place


def test_corruption_before_the_last_segment_is_refused(tmp_path) -> None:
    st = make(tmp_path)
    st.append([{"r": "LEARNED", "s": 1, "val": ["a"]}])
    st.snapshot(1, b"state", [{"r": "PROMISE", "b": [1, 0]}])
    st.append([{"r": "LEARNED", "s": 2, "val": ["b"]}])
    st.sync()
    st.close()
    segs = sorted(os.listdir(tmp_path / "d" / "wal"))
    assert len(segs) == 2
    first = tmp_path / "d" / "wal" / segs[0]
    data = bytearray(first.read_bytes())
    data[-2] ^= 0xFF  # flip a byte inside the last record of the older segment
    first.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corrupt record"):
        Storage(str(tmp_path / "d")).load()


def test_snapshot_fallback_and_unknown_formats(tmp_path) -> None:
    st = make(tmp_path)
    st.snapshot(5, b"five", [])
    st.snapshot(9, b"nine", [])
    st.close()
    assert Storage(str(tmp_path / "d")).load()[:2] == (9, b"nine")
    newest = tmp_path / "d" / "snap" / f"snap-{9:020d}.msgpack"
    d = msgpack.unpackb(newest.read_bytes())
    d["blob"] = b"nine!"  # checksum no longer matches: fall back to the older snapshot
    newest.write_bytes(msgpack.packb(d, use_bin_type=True))
    assert Storage(str(tmp_path / "d")).load()[:2] == (5, b"five")
    d["format"] = 7
    newest.write_bytes(msgpack.packb(d, use_bin_type=True))
    with pytest.raises(StorageError, match="unknown snapshot format 7"):
        Storage(str(tmp_path / "d")).load()
    member = tmp_path / "d" / "MEMBER"
    m = msgpack.unpackb(member.read_bytes())
    m["format"] = 2
    member.write_bytes(msgpack.packb(m))
    with pytest.raises(StorageError, match="unknown format 2"):
        Storage(str(tmp_path / "d")).read_member()


def test_shutdown_marker_round_trip(tmp_path) -> None:
    st = make(tmp_path)
    assert st.read_shutdown() is None
    st.write_shutdown(42, "maintenance window")
    assert st.read_shutdown() == (42, "maintenance window")
    st.remove_shutdown()
    assert st.read_shutdown() is None
