"""The copy of the event log on a host (`~/var/paxoslog.git`, §5.3): read its head, ship the
objects it lacks, move its ref (§6.7 steps 2 and 6).

Works on anything with the file methods of `paxoslog.remote.ssh.Connection` (an SSH connection, or
`paxoslog.remote.hostfs.LocalFS` for the admin host itself). Objects travel as one pack per deploy, written
atomically, and the ref moves only after it is durable: a host killed midway keeps a
valid repository at its old head.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence

from dulwich.object_store import DiskObjectStore
from dulwich.objects import Commit, ShaFile, Tree

from paxoslog.remote.hostfs import HostFiles
from paxoslog.store.gitlog import BRANCH, EventLog

REPO = "var/paxoslog.git"
REF_PATH = f"{REPO}/{BRANCH.decode()}"
_CONFIG = b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"


HEAD_PATH = f"{REPO}/HEAD"
MAX_REF = 4096
MAX_PACKED_REFS = 1 << 20
_HEX40 = re.compile(rb"[0-9a-f]{40}")


class Diverged(Exception):
    """The host's log has a commit the local log does not contain."""


class Unreadable(Exception):
    """The host's log is there but is not one we wrote: HEAD naming another ref, a ref that
    is no commit id. Never taken for "no log", which deploy would overwrite."""


def _printable(raw: bytes) -> str:
    text = raw[:100].decode("ascii", "replace")
    return "".join(c if c.isprintable() and c != "\ufffd" else "?" for c in text)


def remote_head(fs: HostFiles) -> bytes | None:
    """The commit refs/heads/main names on the host, or None without a log. Raises
    Unreadable when HEAD is anything but `ref: refs/heads/main` or the ref is not a commit id.
    A missing HEAD with a ref is a deploy cut short before its last write (`ship`)."""
    try:
        head = fs.read_file(HEAD_PATH, MAX_REF).strip()
    except FileNotFoundError:
        head = None
    if head is not None and head != b"ref: " + BRANCH:
        if head.startswith(b"ref: "):
            raise Unreadable(f"HEAD names {_printable(head[5:])}")
        raise Unreadable(f"HEAD is not a reference to {BRANCH.decode()}")
    try:
        sha = fs.read_file(REF_PATH, MAX_REF).strip()
    except FileNotFoundError:
        sha = b""
    if not sha:
        try:
            packed = fs.read_file(f"{REPO}/packed-refs", MAX_PACKED_REFS)
        except FileNotFoundError:
            return None
        for line in packed.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == BRANCH:
                sha = parts[0]
        if not sha:
            return None
    if not _HEX40.fullmatch(sha):
        raise Unreadable(f"{BRANCH.decode()} is not a commit id")
    return sha


def check_ancestry(history: list[bytes], theirs: bytes | None) -> None:
    """§6.7 step 2: the host's head must be HEAD or an ancestor of it."""
    if theirs is not None and theirs not in history:
        raise Diverged()


def objects_of_commit(log: EventLog, sha: bytes, out: dict[bytes, ShaFile]) -> None:
    """Add the commit and every tree and blob it names to `out`."""
    store = log.repo.object_store
    commit = store[sha]
    assert isinstance(commit, Commit)
    out[sha] = commit
    trees = [commit.tree]
    while trees:
        tid = trees.pop()
        if tid in out:
            continue
        tree = store[tid]
        assert isinstance(tree, Tree)
        out[tid] = tree
        for entry in tree.iteritems():
            if entry.mode & 0o040000:
                trees.append(entry.sha)
            elif entry.sha not in out:
                out[entry.sha] = store[entry.sha]


def missing_objects(log: EventLog, history: list[bytes], theirs: bytes | None) -> list[ShaFile]:
    """Objects of the commits after `theirs` that no commit up to `theirs` holds, in an order
    where nothing is written before what it names (blobs, trees, then the commit)."""
    cut = history.index(theirs) + 1 if theirs is not None else 0
    have: dict[bytes, ShaFile] = {}
    for sha in history[:cut]:
        objects_of_commit(log, sha, have)
    needed: dict[bytes, ShaFile] = {}
    for sha in history[cut:]:
        mine: dict[bytes, ShaFile] = {}
        objects_of_commit(log, sha, mine)
        # reversed: _objects_of_commit puts the commit first, then trees before their entries
        for oid, obj in reversed(list(mine.items())):
            if oid not in have and oid not in needed:
                needed[oid] = obj
    return list(needed.values())


Pack = tuple[str, bytes, bytes]


def pack(objects: Sequence[ShaFile]) -> Pack:
    """One pack (name, .pack bytes, .idx bytes) holding `objects`."""
    with tempfile.TemporaryDirectory(prefix="paxos-pack-") as tmp:
        store = DiskObjectStore.init(tmp)
        store.add_objects([(o, None) for o in objects])
        packs = sorted(n for n in os.listdir(os.path.join(tmp, "pack")) if n.endswith(".pack"))
        assert len(packs) == 1, packs
        name = packs[0][: -len(".pack")]
        with open(os.path.join(tmp, "pack", name + ".pack"), "rb") as f:
            data = f.read()
        with open(os.path.join(tmp, "pack", name + ".idx"), "rb") as f:
            index = f.read()
    return name, data, index


def ship(fs: HostFiles, packed: Pack | None, head: bytes) -> None:
    """§6.7 step 6: copy the objects (`pack(...)`, None when none are missing), then point
    the host's ref at `head`.

    The objects travel as one pack: two durable writes instead of one per object (a first
    deploy of a long history has hundreds of objects, and each fsync costs the host a disk
    flush). The index is written after the pack, since git and dulwich look a pack up by its
    index; the ref after both.
    """
    fresh = not fs.exists(HEAD_PATH)
    for sub in ("objects/pack", "refs/heads"):
        fs.mkdir_p(f"{REPO}/{sub}")
    if packed is not None:
        name, data, index = packed
        fs.write_atomic(f"{REPO}/objects/pack/{name}.pack", data, mode=0o444)
        fs.write_atomic(f"{REPO}/objects/pack/{name}.idx", index, mode=0o444)
    fs.write_atomic(REF_PATH, head + b"\n")
    if fresh:
        # HEAD last: until it exists the folder is not a repository (EventLog.exists), so a
        # half-created log is never taken for an empty one.
        fs.write_atomic(f"{REPO}/config", _CONFIG)
        fs.write_atomic(HEAD_PATH, b"ref: " + BRANCH + b"\n")
