"""The fast paths of issue 8 (replay and appends) keep every check of the slow ones: what a
scan inflates is bounded and checked, verify still names the first bad commit, a ref moves only
by compare-and-swap after everything it names is durable, and caches never show a mix."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paxoslog import fsutil
from paxoslog.core.events import Event
from paxoslog.core.model import EMPTY, Host, Topology
from paxoslog.core.render import _Memo, render, render_conf
from paxoslog.errors import LogError
from paxoslog.store import fastread, gitlog
from paxoslog.store.fastread import ObjectReader
from paxoslog.store.gitlog import EventLog
from paxoslog.store.history import verify
from paxoslog.yamlfmt import dq
from tests.conftest import Paxos


def _packed(kind: int, size: int, body: bytes) -> bytes:
    """A pack entry: git's type-and-size header, then the zlib stream of `body`."""
    head = [(kind << 4) | (size & 15) | (0x80 if size >= 16 else 0)]
    size >>= 4
    while size:
        head.append((size & 0x7F) | (0x80 if size >= 128 else 0))
        size >>= 7
    return bytes(head) + zlib.compress(body)


def _reader_over(tmp_path: Path, entry: bytes) -> tuple[ObjectReader, bytes]:
    reader = ObjectReader(str(tmp_path), None)
    sha = b"ab" * 20
    reader._maps.append(entry)  # bytes slice like the mapped pack
    reader.index[bytes.fromhex(sha.decode())] = 0  # offset 0 of pack 0
    return reader, sha


@pytest.mark.parametrize("declared,body", [
    (5, b"hello!"),          # inflates to more than its header says
    (7, b"hello!"),          # to less
    (300, b"x" * 299),       # two header bytes, one short
])
def test_a_small_object_whose_size_header_lies_is_corrupt(tmp_path, declared, body):
    reader, sha = _reader_over(tmp_path, _packed(3, declared, body))
    with pytest.raises(LogError, match="is corrupt"):
        reader.get(sha)
    with pytest.raises(LogError, match="is corrupt"):
        reader.get_bin(bytes.fromhex(sha.decode()))


def test_a_small_object_is_read_whole_and_exact(tmp_path):
    reader, sha = _reader_over(tmp_path, _packed(3, 300, b"y" * 300) + b"trailing pack bytes")
    assert reader.get(sha) == (b"blob", b"y" * 300)
    assert reader.get_bin(bytes.fromhex(sha.decode())) == (b"blob", b"y" * 300)


def test_a_bomb_behind_a_small_header_is_still_bounded(tmp_path, monkeypatch):
    # 2 KiB declared, a stream that inflates far beyond: the one-call path must not accept
    # it, and the long path stops at MAX_OBJECT whatever the stream holds.
    monkeypatch.setattr(fastread, "MAX_OBJECT", 1 << 16)
    reader, sha = _reader_over(tmp_path, _packed(3, 2000, b"\0" * (4 << 20)))
    with pytest.raises(LogError, match="is corrupt"):
        reader.get(sha)


def test_the_render_memo_survives_id_reuse_and_clearing() -> None:
    # Objects made and dropped in a loop reuse ids; the memo holds what it keys, so a hit is
    # always the very object, also across the clear at its limit.
    for i in range(3 * _Memo.LIMIT // 2):
        conf = render_conf(Topology(hosts=(Host(f"h{i}"),)))
        assert f'hostname: "h{i}"\n'.encode() in conf
        assert conf.count(b"hostname:") == 1


@pytest.mark.parametrize("extra,problem", [
    ({"etc/cell/nested/x.conf": b"x"}, "etc/cell/nested/x.conf unexpected"),
    ({"etc/other": b"x"}, "etc/other unexpected"),
    ({"etc/paxos_memcache.conf": b"version: 1\n"}, "etc/paxos_memcache.conf differs"),
])
def test_verify_names_the_commit_and_the_file_a_fast_digest_rejects(paxos: Paxos, extra,
                                                                      problem) -> None:
    paxos.ok("register", "host", "h1")
    paxos.ok("register", "host", "h2")
    log = EventLog(str(paxos.home / "var" / "paxoslog.git"))
    head = log.head()
    # rev 2 again, its event and rendering intact, with one file more or changed
    parent = log.commit(head).parents[0]
    sha = log.write_commit(parent, {**log.files(log.commit(head)), **extra}, "tampered",
                           "T <t@t>", 2)
    assert log.move_branch(head, sha)
    result = verify(log)
    assert result.head == 2 and result.commit == sha.decode()
    assert result.problems == [f"rev 2 (commit {sha.decode()[:12]}): {problem}"]


def test_verify_of_a_long_history_folds_and_checks_every_commit(paxos: Paxos) -> None:
    for i in range(12):
        paxos.ok("register", "host", f"h{i}")
    paxos.ok("unregister", "host", "h3")
    result = verify(EventLog(str(paxos.home / "var" / "paxoslog.git")))
    assert result.problems == [] and result.head == 13
    assert [h.hostname for h in result.topology.hosts] == [f"h{i}" for i in range(12) if i != 3]


def test_an_append_syncs_objects_and_the_ref_before_the_ref_moves(paxos: Paxos, monkeypatch):
    paxos.ok("register", "host", "h1")
    log = EventLog(str(paxos.home / "var" / "paxoslog.git"))
    ref = paxos.home / "var" / "paxoslog.git" / "refs" / "heads" / "main"
    calls: list[tuple] = []
    real_rename, real_syncfs = os.rename, fsutil.syncfs

    def syncfs(path):
        lock = ref.with_name("main.lock")
        calls.append(("syncfs", lock.exists() and lock.read_bytes(), ref.read_bytes()))
        real_syncfs(path)

    def rename(src, dst, **kw):
        calls.append(("rename", str(dst)))
        real_rename(src, dst, **kw)

    monkeypatch.setenv("PAXOS_FSYNC", "1")
    monkeypatch.setattr(fsutil, "syncfs", syncfs)
    monkeypatch.setattr(gitlog.os, "rename", rename)
    monkeypatch.setattr(fsutil, "fsync_dir", lambda path: calls.append(("fsync_dir", path)))
    head = log.head()
    event = Event("host_registered", {"hostname": "h2", "user": "paxos", "groups": []})
    new = log.append(head, event, 2, render(EMPTY), "register host h2", "T <t@t>")
    assert new is not None and ref.read_bytes() == new + b"\n"
    syncs = [c for c in calls if c[0] == "syncfs"]
    # one barrier: the new ref's bytes written (as main.lock), the old ref still in place
    assert syncs == [("syncfs", new + b"\n", head + b"\n")]
    ref_moves = [i for i, c in enumerate(calls) if c[0] == "rename" and c[1] == str(ref)]
    objects = [i for i, c in enumerate(calls) if c[0] == "rename" and c[1] != str(ref)]
    assert len(ref_moves) == 1 and objects and max(objects) < calls.index(syncs[0])
    assert calls.index(syncs[0]) < ref_moves[0] < calls.index(
        ("fsync_dir", str(ref.parent)))
    assert not ref.with_name("main.lock").exists()


def test_the_ref_moves_only_from_the_head_it_was_built_on(paxos: Paxos) -> None:
    paxos.ok("register", "host", "h1")
    paxos.ok("register", "host", "h2")
    log = EventLog(str(paxos.home / "var" / "paxoslog.git"))
    head = log.head()
    older = log.history()[0]
    sha = log.write_commit(older, log.files(log.commit(older)), "stale", "T <t@t>")
    assert log.move_branch(older, sha) is False
    assert log.head() == head
    assert not (paxos.home / "var/paxoslog.git/refs/heads/main.lock").exists()


def test_the_cache_is_replaced_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsutil.replace_cache_at(fd, "c", b"one")
        fsutil.replace_cache_at(fd, "c", b"two, longer")
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["c"] and (tmp_path / "c").read_bytes() == b"two, longer"


def test_read_at_reads_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"data" * 5000)
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "p")
    (tmp_path / "l").symlink_to(tmp_path / "f")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert fsutil.read_at(fd, "f") == b"data" * 5000
        assert [fsutil.read_at(fd, n) for n in ("d", "p", "l", "missing")] == [None] * 4
    finally:
        os.close(fd)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)))
def test_dq_without_json_is_what_json_writes(text: str) -> None:
    assert dq(text) == json.dumps(text)


def test_struct_sizes_of_the_fixture_pack_entry() -> None:
    # the helper above writes git's size header: 300 = 0b1_0010_1100 -> 0xbc 0x12
    assert _packed(3, 300, b"")[:2] == struct.pack("BB", 0xBC, 0x12)


def test_temp_files_get_their_mode_whatever_the_umask(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fsutil, "_umask", None)
    old = os.umask(0o077)
    try:
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fsutil.atomic_write_at(fd, "conf", b"x", durable=False)
            fsutil.replace_cache_at(fd, "cache", b"y")
        finally:
            os.close(fd)
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {
        "conf": 0o644, "cache": 0o644}


def test_the_shell_writes_the_snapshot_cache_when_it_ends(paxos: Paxos) -> None:
    from paxoslog.store.home import Home, _read_cache, read_head_ref

    paxos(input="register host a\nregister host b\nregister host c\nquit\n", check=True)
    home = Home(str(paxos.home))
    cached = _read_cache(home, read_head_ref(home))
    assert cached is not None and cached[0] == 3
    assert [h.hostname for h in cached[1].hosts] == ["a", "b", "c"]
    assert paxos.ok("list", "host").split() == ["a", "b", "c"]


def test_etc_files_ride_on_the_logs_sync_and_are_renamed_after_the_ref(paxos: Paxos,
                                                                      monkeypatch) -> None:
    from paxoslog.app.session import Session, append
    from paxoslog.core.decide import Command
    from paxoslog.store.home import Home

    paxos.ok("register", "host", "h1")
    home = paxos.home
    monkeypatch.setenv("PAXOS_FSYNC", "1")
    monkeypatch.setenv("PAXOS_AUTHOR", "T <t@t>")
    seen: list[tuple] = []
    real_syncfs, real_fsync = fsutil.syncfs, os.fsync

    def syncfs(path):
        temps = {p.name: p.read_bytes() for p in (home / "etc").iterdir()
                 if p.name.startswith(".tmp-")}
        seen.append(("syncfs", temps, (home / "etc/paxos_memcache.conf").read_bytes()))
        real_syncfs(path)

    def fsync(fd):
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(fsutil, "syncfs", syncfs)
    monkeypatch.setattr(os, "fsync", fsync)
    old_conf = (home / "etc/paxos_memcache.conf").read_bytes()
    session = Session(Home(str(home)))
    assert append(session, Command("register host", {"hostname": "h2"}), "register host h2")
    new_conf = (home / "etc/paxos_memcache.conf").read_bytes()
    assert b'"h2"' in new_conf
    # one sync of everything, while etc/ still shows the old conf and its successor waits
    # in a temp file beside it; then no file of etc/ is synced again, only the folder
    (sync,) = [s for s in seen if s[0] == "syncfs"]
    assert sync[2] == old_conf and list(sync[1].values()) == [new_conf]
    synced = [s[1] for s in seen if s[0] == "fsync"]
    assert str(home / "etc") in synced
    assert not [p for p in synced if p.startswith(str(home / "etc") + "/")]
    assert [p.name for p in (home / "etc").iterdir()] == ["paxos_memcache.conf"]


def test_prepared_etc_files_of_an_append_that_did_not_happen_are_removed(paxos: Paxos,
                                                                         monkeypatch):
    from paxoslog.store.home import Home, discard_etc, prepare_etc

    paxos.ok("register", "host", "h1")
    monkeypatch.setenv("PAXOS_FSYNC", "1")
    before = sorted(p.name for p in (paxos.home / "etc").iterdir())
    home = Home(str(paxos.home))
    prepared = prepare_etc(home, {"etc/paxos_memcache.conf": b"version: 1\n"})
    assert list(prepared) == ["etc/paxos_memcache.conf"]
    assert (paxos.home / "etc" / prepared["etc/paxos_memcache.conf"]).exists()
    discard_etc(home, prepared)
    assert sorted(p.name for p in (paxos.home / "etc").iterdir()) == before
    monkeypatch.setenv("PAXOS_FSYNC", "0")  # nothing to save without syncs: nothing prepared
    assert prepare_etc(home, {"etc/paxos_memcache.conf": b"version: 1\n"}) == {}
