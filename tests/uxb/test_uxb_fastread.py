"""fastread after `git gc` (issue 12 item 6): deltified objects are resolved by dulwich's
compiled apply_delta once their declared sizes are checked (the Python loop was 50 µs per
object, slower than dulwich's own get_raw on the whole scan), with the same refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from paxoslog.errors import LogError
from paxoslog.store import fastread
from paxoslog.store.fastread import ObjectReader


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True,
                          check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def gced(tmp_path_factory) -> tuple[Path, list[bytes]]:
    """A repository of 40 versions of one file, packed by `git gc --aggressive`."""
    repo = tmp_path_factory.mktemp("gced")
    _git(repo, "init", "-q", "--bare")
    blobs = []
    for i in range(40):
        text = "".join(f"host-{k}: worker {i if k <= i * 7 else 5}\n"
                       for k in range(300)).encode()
        blobs.append(_git(repo, "hash-object", "-w", "--stdin", data=text).strip())
    tree = b"".join(b"100644 blob %s\tf%d\n" % (b, i) for i, b in enumerate(blobs))
    tree_id = _git(repo, "mktree", data=tree).strip()
    commit = _git(repo, "commit-tree", tree_id.decode(), "-m", "x").strip()
    _git(repo, "update-ref", "refs/heads/main", commit.decode())
    _git(repo, "gc", "-q", "--aggressive")
    verify = _git(repo, "verify-pack", "-v",
                  *[str(p) for p in (repo / "objects" / "pack").glob("*.idx")]).decode()
    assert "chain length = 2" in verify  # deltas, several deep
    return repo, blobs


def test_deltified_objects_read_exactly_through_the_extension(gced, monkeypatch):
    repo, blobs = gced

    def slow(*args):
        raise AssertionError("the Python delta loop ran")

    monkeypatch.setattr(fastread, "_apply_delta_py", slow)
    assert fastread._c_apply_delta is not None
    reader = ObjectReader(str(repo / "objects"), None)
    for sha in blobs:
        assert reader.get(sha) == (b"blob", _git(repo, "cat-file", "blob", sha.decode()))
    reader.close()


def test_python_fallback_reads_the_same(gced, monkeypatch):
    repo, blobs = gced
    monkeypatch.setattr(fastread, "_c_apply_delta", None)
    reader = ObjectReader(str(repo / "objects"), None)
    for sha in blobs:
        assert reader.get(sha) == (b"blob", _git(repo, "cat-file", "blob", sha.decode()))


def _hdr(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


BASE = b"hello world"
BAD = {
    "copy out of range": _hdr(11) + _hdr(5) + bytes([0x91, 8, 5]),
    "insert past end": _hdr(11) + _hdr(5) + bytes([10]) + b"ab",
    "opcode 0": _hdr(11) + _hdr(5) + bytes([0]),
    "short result": _hdr(11) + _hdr(9) + bytes([0x91, 0, 5]),
    "long result": _hdr(11) + _hdr(3) + bytes([0x91, 0, 5]),
    "base size": _hdr(12) + _hdr(5) + bytes([0x91, 0, 5]),
    "trailing bytes": _hdr(11) + _hdr(5) + bytes([0x91, 0, 5]) + b"\x05",
}


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("name", sorted(BAD))
def test_hostile_deltas_are_refused_by_both(name, compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(fastread, "_c_apply_delta", None)
    with pytest.raises((ValueError, IndexError)):
        fastread._apply_delta(BASE, BAD[name], b"0" * 40)


@pytest.mark.parametrize("compiled", [True, False])
def test_declared_size_over_the_bound_is_refused_before_allocating(compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(fastread, "_c_apply_delta", None)
    delta = _hdr(11) + _hdr(fastread.MAX_OBJECT + 1) + bytes([0x91, 0, 5])
    with pytest.raises(LogError, match="larger than"):
        fastread._apply_delta(BASE, delta, b"0" * 40)
    good = _hdr(11) + _hdr(5) + bytes([0x91, 6, 5])
    assert fastread._apply_delta(BASE, good, b"0" * 40) == b"world"


def test_the_base_cache_is_bounded_in_bytes(monkeypatch):
    monkeypatch.setattr(fastread, "_CACHE_BYTES", 100)
    reader = ObjectReader("/nonexistent", None)
    for i in range(10):
        reader._remember((0, i), (b"blob", b"x" * 40))
        assert reader._cached <= 100
        assert sum(len(v[1]) for v in reader._bases.values()) == reader._cached
