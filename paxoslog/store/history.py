"""History commands of §3.11: log, diff, undo, revert, verify, replay."""

from __future__ import annotations

import difflib
import gc
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import sha1

from paxoslog.core.decide import Command
from paxoslog.core.events import apply, decode
from paxoslog.core.model import EMPTY, Topology
from paxoslog.core.render import CELL_DIR, CONF_PATH, render, render_parts
from paxoslog.errors import LogError
from paxoslog.store.fastread import tree_entries
from paxoslog.store.gitlog import EVENT_PATH, EventLog, iso_time, nest
from paxoslog.store.revisions import Rev

CELL_PREFIX = CELL_DIR + "/"


def log_docs(log: EventLog, head_rev: int, max_count: int | None, reverse: bool) -> list[dict]:
    docs = []
    rev = head_rev
    for commit in log.walk_back():
        if max_count is not None and len(docs) >= max_count:
            break
        docs.append({
            "rev": rev,
            "commit": commit.id.decode(),
            "time": iso_time(commit),
            "author": commit.author.decode(errors="replace"),
            "command": commit.message.decode(errors="replace").rstrip("\n"),
        })
        rev -= 1
    if reverse:
        docs.reverse()
    return docs


def rendered_at(log: EventLog, rev: Rev) -> dict[str, bytes]:
    if rev.commit is None:
        return {}
    files = log.files(log.commit(rev.commit))
    files.pop(EVENT_PATH, None)
    return files


def topology_at(log: EventLog, rev: Rev) -> Topology:
    return log.topology(rev.commit) if rev.commit is not None else EMPTY


def diff_entries(old: dict[str, bytes], new: dict[str, bytes]) -> list[dict]:
    def order(path: str) -> tuple:
        return (path != CONF_PATH, path)

    out = []
    for path in sorted(set(old) | set(new), key=order):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        change = "create" if a is None else "delete" if b is None else "modify"
        lines = difflib.unified_diff(
            _lines(a), _lines(b),
            "/dev/null" if a is None else f"a/{path}",
            "/dev/null" if b is None else f"b/{path}", n=3,
        )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        out.append({"path": path, "change": change, "diff": text})
    return out


def _lines(data: bytes | None) -> list[str]:
    return [] if data is None else data.decode(errors="replace").splitlines(keepends=True)


def undo_target(log: EventLog, head_rev: int) -> tuple[int, bytes, str, bytes | None] | None:
    """(rev, commit, command, parent) of the newest event that is neither an undo nor undone."""
    undone: set[int] = set()
    rev = head_rev
    for commit in log.walk_back():
        event = log.event(commit)
        if event.type == "topology_restored" and event.data.get("reason") == "undo":
            undone.add(event.data["target_rev"])
        elif rev not in undone:
            parent = commit.parents[0] if commit.parents else None
            return rev, commit.id, commit.message.decode(errors="replace").rstrip("\n"), parent
        rev -= 1
    return None


def restore_command(reason: str, rev: int, commit: bytes | None, topology: Topology,
                    always: bool = False) -> Command:
    """always: record the event even when it changes nothing, so the undo is remembered."""
    return Command("restore", {"reason": reason, "target_rev": rev,
                               "target_commit": commit.decode() if commit else None,
                               "topology": topology, "always": always})


@dataclass
class Verification:
    head: int = 0
    commit: str | None = None
    problems: list[str] = field(default_factory=list)
    topology: Topology = EMPTY
    files: dict[str, bytes] = field(default_factory=dict)
    # Local leftovers of a killed writer (temp files, etc/ behind HEAD): the log itself is
    # sound and the next writer repairs them, so they do not make the status a mismatch.
    warnings: list[str] = field(default_factory=list)

    def doc(self) -> dict:
        doc = {"head": self.head, "commit": self.commit,
               "status": "mismatch" if self.problems else "ok"}
        if self.problems:
            doc["problems"] = self.problems
        if self.warnings:
            doc["warnings"] = self.warnings
        return doc


def verify(log: EventLog) -> Verification:
    """Fold every event from nothing and check that each commit stores exactly the files that
    fold renders. Compares tree ids computed from the rendering with the stored ones, so only
    the commit, its root tree and its event are read per commit."""
    result = Verification()
    topology = EMPTY
    if not log.exists():
        return result
    reader = log.reader()
    # The scan makes no reference cycles, but it allocates millions of objects next to the
    # pack index (one entry per object): every collection would walk that index again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            chain = log.chain(reader=reader)
        except LogError as exc:  # a broken link in the history itself
            result.problems.append(exc.message)
            return result
        cells, etc_head = None, b""
        for number, (sha, tree_id) in enumerate(chain, 1):
            try:
                stored = bytes.fromhex(tree_id.decode())
                event_id = _event_id(reader.get_bin(stored)[1])
                event = decode(reader.get_bin(event_id)[1])
                topology = apply(topology, event)
                conf, cell_files = render_parts(topology)
                if cell_files is not cells:  # the same dict while the cells do not change
                    cells, etc_head = cell_files, _etc_head(cell_files)
                # The tree id of {event.msgpack, etc/paxos_memcache.conf, etc/cell/...}:
                # `_snapshot_digest` inlined, as this runs once per commit.
                if etc_head is not None:
                    etc = etc_head + sha1(b"blob %d\0" % len(conf) + conf).digest()
                    etc = b"40000 etc\0" + sha1(b"tree %d\0" % len(etc) + etc).digest()
                    root = etc + _ROOT_EVENT + event_id
                    same = sha1(b"tree %d\0" % len(root) + root).digest() == stored
                else:
                    same = False
                if not same:
                    files = {CONF_PATH: conf, **cell_files}
                    if _snapshot_digest(event_id, files) != stored:
                        where = f"rev {number} (commit {sha.decode()[:12]})"
                        result.problems += _differences(log, tree_id, files, where)
            except LogError as exc:
                result.problems.append(f"rev {number} (commit {sha.decode()[:12]}): "
                                       f"{exc.message}")
            except Exception as exc:  # a damaged object store: report it, never a traceback
                result.problems.append(f"rev {number} (commit {sha.decode()[:12]}): unreadable "
                                       f"({exc.__class__.__name__}: {exc})")
            if result.problems:
                result.head, result.commit = number, sha.decode()
                return result
        if chain:
            result.head, result.commit = len(chain), chain[-1][0].decode()
    finally:
        if collecting:
            gc.enable()
        reader.close()
    result.topology, result.files = topology, render(topology)
    return result


_ROOT_HEAD = b"40000 etc\0"
_ROOT_EVENT = b"100644 event.msgpack\0"


def _etc_head(cell_files: dict[str, bytes]) -> bytes | None:
    """The bytes of the etc tree before the conf blob's id: the `cell` entry and the conf
    entry's name; None when a path is not a cell file (then the long way decides)."""
    cells = []
    for path, data in cell_files.items():
        if not path.startswith(CELL_PREFIX) or "/" in path[len(CELL_PREFIX):]:
            return None
        cells.append((path[len(CELL_PREFIX):], data))
    return _cell_entry(tuple(cells)) + b"100644 paxos_memcache.conf\0"


def _event_id(raw_root: bytes) -> bytes:
    """The binary id of the event blob in a raw root tree; the layout every commit has
    (`etc`, then `event.msgpack`) is sliced, anything else parsed in full."""
    if len(raw_root) == 71 and raw_root[:10] == _ROOT_HEAD and raw_root[30:51] == _ROOT_EVENT:
        return raw_root[51:71]
    entry = tree_entries(raw_root).get(EVENT_PATH.encode())
    if entry is None:
        raise LogError("holds no event")
    return bytes.fromhex(entry[1].decode())


def _differences(log: EventLog, tree_id: bytes, files: dict[str, bytes], where: str) -> list[str]:
    stored = _tree_ids(log.repo.object_store, tree_id, "", {})
    stored.pop(EVENT_PATH, None)
    expected = _blob_ids(files)
    out = []
    for path in sorted(set(expected) | set(stored)):
        if expected.get(path) != stored.get(path):
            state = ("missing" if path not in stored else
                     "unexpected" if path not in expected else "differs")
            out.append(f"{where}: {path} {state}")
    return out or [f"{where}: tree differs from the rendering"]


def _blob_ids(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: _blob_id(data) for path, data in files.items()}


def snapshot_tree_id(event_blob: bytes, files: dict[str, bytes]) -> bytes:
    """The tree id (hex) of a commit holding this event (blob id, hex) and these rendered
    files (the layout `render` produces)."""
    return _snapshot_digest(bytes.fromhex(event_blob.decode()), files).hex().encode()


def _snapshot_digest(event_id: bytes, files: dict[str, bytes]) -> bytes:
    """`snapshot_tree_id` with binary ids, computed without building tree objects: binary
    digests all the way, the cell subtree memoized, since this runs once per commit in a
    replay."""
    cells = []
    for path, data in files.items():
        if path == CONF_PATH:
            continue
        if not path.startswith(CELL_PREFIX):
            hexid = _tree_id({EVENT_PATH: event_id.hex().encode(), **_blob_ids(files)})
            return bytes.fromhex(hexid.decode())
        cells.append((path[len(CELL_PREFIX):], data))
    etc = _cell_entry(tuple(cells)) + b"100644 paxos_memcache.conf\0" + _digest(
        b"blob", files[CONF_PATH])
    return _digest(b"tree", b"40000 etc\0" + _digest(b"tree", etc) + _ROOT_EVENT + event_id)


@lru_cache(maxsize=1024)
def _cell_entry(cells: tuple[tuple[str, bytes], ...]) -> bytes:
    """The `cell` entry of the etc tree (empty without cells)."""
    if not cells:
        return b""
    body = b"".join(b"100644 " + name.encode() + b"\0" + _digest(b"blob", data)
                    for name, data in sorted(cells))
    return b"40000 cell\0" + _digest(b"tree", body)


def _digest(kind: bytes, body: bytes) -> bytes:
    h = hashlib.sha1(kind + b" %d\0" % len(body))
    h.update(body)
    return h.digest()


def _tree_id(blobs: dict[str, bytes]) -> bytes:
    """The git tree id of files given as path -> blob id, as dulwich would write it."""
    return _node_id(nest(blobs))


def _node_id(node: dict) -> bytes:
    files = tuple(sorted((k, v) for k, v in node.items() if not isinstance(v, dict)))
    if len(files) == len(node):
        return _leaf_tree_id(files)
    entries = [(name.encode(), b"100644 " + name.encode(), sha) for name, sha in files]
    entries += [(name.encode() + b"/", b"40000 " + name.encode(), _node_id(sub))
                for name, sub in node.items() if isinstance(sub, dict)]
    entries.sort()
    body = b"".join(head + b"\0" + bytes.fromhex(sha.decode()) for _, head, sha in entries)
    return _object_id(b"tree", body)


@lru_cache(maxsize=4096)
def _leaf_tree_id(items: tuple[tuple[str, bytes], ...]) -> bytes:
    """A tree of files only (etc/cell): mostly unchanged from one commit to the next."""
    body = b"".join(b"100644 " + name.encode() + b"\0" + bytes.fromhex(sha.decode())
                    for name, sha in items)
    return _object_id(b"tree", body)


def _object_id(kind: bytes, body: bytes) -> bytes:
    return hashlib.sha1(kind + b" %d\0" % len(body) + body).hexdigest().encode()


@lru_cache(maxsize=1024)
def _blob_id(data: bytes) -> bytes:
    return _object_id(b"blob", data)


def _tree_ids(store, tree_id: bytes, prefix: str, cache: dict) -> dict[str, bytes]:
    """path -> blob id of every file under a stored tree (only to explain a mismatch)."""
    cached = cache.get(tree_id)
    if cached is None:
        cached = {}
        for entry in store[tree_id].iteritems():
            name = entry.path.decode()
            if entry.mode & 0o040000:
                for sub, blob in _tree_ids(store, entry.sha, "", cache).items():
                    cached[f"{name}/{sub}"] = blob
            else:
                cached[name] = entry.sha
        cache[tree_id] = cached
    return {prefix + k: v for k, v in cached.items()}
