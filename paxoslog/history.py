"""History commands of §3.11: log, diff, undo, revert, verify, replay."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field

from .decide import Command
from .errors import LogError
from .events import apply, decode
from .gitlog import EVENT_PATH, EventLog, iso_time
from .model import EMPTY, Topology
from .render import CONF_PATH, render
from .revisions import Rev


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
        event, _ = log.event(commit)
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

    def doc(self) -> dict:
        doc = {"head": self.head, "commit": self.commit,
               "status": "mismatch" if self.problems else "ok"}
        if self.problems:
            doc["problems"] = self.problems
        return doc


def verify(log: EventLog) -> Verification:
    """Fold every event from nothing and compare each step with the files its commit stores.

    Compares git blob ids rather than contents, so no stored blob but the events is read.
    """
    result = Verification()
    topology = EMPTY
    trees: dict[bytes, dict[str, bytes]] = {}
    store = log.repo.object_store if log.exists() else None
    for number, sha in enumerate(log.history(), 1):
        result.head, result.commit = number, sha.decode()
        where = f"rev {number} (commit {sha.decode()[:12]})"
        try:
            commit = log.commit(sha)
            ids = _tree_ids(store, commit.tree, "", trees)
            event_id = ids.pop(EVENT_PATH, None)
            if event_id is None:
                raise LogError("holds no event")
            event, stored_rev = decode(store[event_id].data)
            if stored_rev != number:
                raise LogError(f"event records rev {stored_rev}, expected {number}")
            topology = apply(topology, event)
        except LogError as exc:
            result.problems.append(f"{where}: {exc.message}")
            return result
        except Exception as exc:  # a damaged object store: report it, never a traceback
            result.problems.append(f"{where}: unreadable ({exc.__class__.__name__}: {exc})")
            return result
        files = render(topology)
        expected = {path: _blob_id(data) for path, data in files.items()}
        if expected != ids:
            for path in sorted(set(expected) | set(ids)):
                if expected.get(path) != ids.get(path):
                    state = ("missing" if path not in ids else
                             "unexpected" if path not in expected else "differs")
                    result.problems.append(f"{where}: {path} {state}")
            return result
        result.files = files
    result.topology = topology
    return result


def _tree_ids(store, tree_id: bytes, prefix: str, cache: dict) -> dict[str, bytes]:
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


def _blob_id(data: bytes) -> bytes:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().encode()
