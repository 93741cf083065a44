"""A damaged or unknown-version event log gives a clear error naming the commit, never a
traceback, and changes nothing."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import msgpack

from paxoslog.store.gitlog import EVENT_PATH, EventLog
from tests.conftest import Paxos


def _log(home: Path) -> EventLog:
    return EventLog(str(home / "var" / "paxoslog.git"))


def _append_raw(home: Path, event_blob: bytes, conf: bytes | None = None) -> str:
    """Append a commit whose event is `event_blob`, bypassing every check."""
    log = _log(home)
    head = log.head()
    files = log.files(log.commit(head))
    files[EVENT_PATH] = event_blob
    if conf is not None:
        files["etc/paxos_memcache.conf"] = conf
    sha = log.write_commit(head, files, "tampered", "T <t@t>")
    assert log.move_branch(head, sha)
    return sha.decode()


def _state(home: Path) -> dict[str, bytes]:
    out = {}
    for root, _, names in os.walk(home / "etc"):
        for name in names:
            path = Path(root) / name
            out[str(path.relative_to(home))] = path.read_bytes()
    return out


def test_unknown_event_version_is_named(seeded: Paxos) -> None:
    home = seeded.home
    bad = _append_raw(home, msgpack.packb({"v": 2, "type": "host_registered", "rev": 6,
                                           "data": {}}))
    proc = seeded("verify")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"rev 6 (commit {bad[:12]}): unknown event version 2" in proc.stdout
    # the audit trail still reads, and history commands that need the event say which commit
    assert seeded("log", "-n", "1").returncode == 0
    before = _state(home)
    proc = seeded("undo")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"commit {bad[:12]}: unknown event version 2"
    assert _state(home) == before


def test_garbage_event_blob_is_named(seeded: Paxos) -> None:
    bad = _append_raw(seeded.home, b"\xc1\xc1 not msgpack")
    proc = seeded("verify")
    assert proc.returncode == 1
    assert f"commit {bad[:12]}" in proc.stdout and "undecodable event" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_snapshot_of_unknown_version_is_refused_clearly(seeded: Paxos) -> None:
    conf = b"version: 9\nhosts: []\n"
    event = msgpack.packb({"v": 1, "type": "host_unregistered", "rev": 6,
                           "data": {"hostname": "x"}})
    bad = _append_raw(seeded.home, event, conf=conf)
    (seeded.home / "var" / "topology.cache").unlink()
    proc = seeded("show", "host")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"commit {bad[:12]}: unknown etc/paxos_memcache.conf version 9"
    proc = seeded("register", "host", "h")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_damaged_object_file_is_reported_by_verify(seeded: Paxos) -> None:
    log = _log(seeded.home)
    commit = log.commit(log.head())
    event_id = dict((e.path.decode(), e.sha) for e in log.repo.object_store[commit.tree]
                    .iteritems())[EVENT_PATH]
    path = Path(log.path) / "objects" / event_id[:2].decode() / event_id[2:].decode()
    path.chmod(0o644)
    path.write_bytes(zlib.compress(b"blob 3\0abc")[:5])  # truncated
    proc = seeded("verify")
    assert proc.returncode == 1
    assert "rev 5" in proc.stdout and commit.id.decode()[:12] in proc.stdout
    assert "Traceback" not in proc.stderr
