"""The event log: a bare git repository written with dulwich, one commit per event (§5.1).

Each commit's tree holds `event.msgpack` and the files rendered after the event, so the tree of
HEAD is a snapshot: readers never replay. Appends are compare-and-swap on refs/heads/main.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from paxoslog import fsutil
from paxoslog.core.events import Event, decode, encode
from paxoslog.core.model import EMPTY, Topology
from paxoslog.core.render import CONF_PATH, parse_conf
from paxoslog.errors import LogError
from paxoslog.store.fastread import ObjectReader, commit_links

BRANCH = b"refs/heads/main"
REV_HEADER = b"paxos-rev"
EVENT_PATH = "event.msgpack"
TMP_DIR = "paxos-tmp"  # under objects/: git and dulwich only look into two-hex-digit folders
_TMP_OBJECT = re.compile(r"[0-9a-f]{38}\.([0-9]{1,10})\.tmp\Z")


class EventLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._repo: Repo | None = None

    # opening -------------------------------------------------------------------------------
    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, "HEAD"))

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            if not self.exists():
                raise LogError(f"no event log at {self.path}")
            try:
                self._repo = Repo(self.path)
            except Exception as exc:
                raise LogError(f"cannot open the event log at {self.path}: {exc}") from None
        return self._repo

    def create(self) -> None:
        if self.exists():
            return
        # Built aside and renamed into place, so a killed creator never leaves half a repository.
        parent = os.path.dirname(self.path)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".paxoslog-init-", dir=parent)
        try:
            Repo.init_bare(tmp, default_branch=b"main").refs.set_symbolic_ref(b"HEAD", BRANCH)
            os.rename(tmp, self.path)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not self.exists():
                raise

    # reading -------------------------------------------------------------------------------
    def head(self) -> bytes | None:
        if not self.exists():
            return None
        try:
            return self.repo.refs[BRANCH]
        except KeyError:
            return None

    def commit(self, sha: bytes) -> Commit:
        try:
            obj = self.repo.object_store[sha]
        except Exception as exc:
            raise LogError(f"commit {sha.decode()[:12]} is unreadable ({exc})") from None
        if not isinstance(obj, Commit):
            raise LogError(f"object {sha.decode()[:12]} is not a commit")
        return obj

    def files(self, commit: Commit) -> dict[str, bytes]:
        """Every file of the commit's tree (the event and the rendered config)."""
        out: dict[str, bytes] = {}
        self._walk(commit.tree, "", out, commit)
        return out

    def _walk(self, tree_id: bytes, prefix: str, out: dict[str, bytes], commit: Commit) -> None:
        try:
            tree = self.repo.object_store[tree_id]
            for entry in tree.iteritems():
                path = prefix + entry.path.decode()
                if entry.mode & 0o040000:
                    self._walk(entry.sha, path + "/", out, commit)
                else:
                    out[path] = self.repo.object_store[entry.sha].data
        except LogError:
            raise
        except Exception as exc:
            raise LogError(f"commit {commit.id.decode()[:12]}: unreadable tree ({exc})") from None

    def _read(self, commit: Commit, path: str, parse):
        """parse(file `path` of `commit`), every failure naming the commit."""
        data = self.files(commit).get(path)
        if data is None:
            raise LogError(f"commit {commit.id.decode()[:12]} holds no {path}")
        try:
            return parse(data)
        except LogError as exc:
            raise LogError(f"commit {commit.id.decode()[:12]}: {exc.message}") from None

    def event(self, commit: Commit) -> Event:
        return self._read(commit, EVENT_PATH, decode)

    def topology(self, sha: bytes | None) -> Topology:
        """The topology stored (as rendered config) in commit `sha`; empty before the first."""
        return EMPTY if sha is None else self._read(self.commit(sha), CONF_PATH, parse_conf)

    def rev(self, sha: bytes) -> int:
        """The revision number of commit `sha` (its position in the history)."""
        for key, value in self.commit(sha)._extra:
            # At most 18 digits: the number fits in 63 bits, whatever a crafted header says.
            if key == REV_HEADER and value.isdigit() and len(value) <= 18:
                return int(value)
        return len(self.chain(sha))

    def reader(self) -> ObjectReader:
        """A fast reader for whole-history scans; cheap to make, reflects the store as of now."""
        return ObjectReader(self.repo.object_store.path, self.repo.object_store)

    def chain(self, head: bytes | None = None,
              reader: ObjectReader | None = None) -> list[tuple[bytes, bytes]]:
        """(commit id, tree id) from the first commit to `head` (default HEAD)."""
        sha = self.head() if head is None else head
        if sha is None:
            return []
        own = reader is None
        reader, out = reader or self.reader(), []
        try:
            while sha is not None:
                kind, raw = reader.get_bin(bytes.fromhex(sha.decode()))
                if kind != b"commit":
                    raise LogError(f"object {sha.decode()[:12]} is not a commit")
                tree, parent = commit_links(raw)
                out.append((sha, tree))
                sha = parent
        except LogError:
            raise
        except Exception as exc:
            raise LogError(f"commit {sha.decode()[:12]} is unreadable ({exc})") from None
        finally:
            if own:
                reader.close()
        out.reverse()
        return out

    def history(self, head: bytes | None = None) -> list[bytes]:
        """Commit ids from the first to `head` (default HEAD); the history is linear."""
        return [sha for sha, _ in self.chain(head)]

    def walk_back(self, head: bytes | None = None) -> Iterator[Commit]:
        sha = self.head() if head is None else head
        while sha is not None:
            commit = self.commit(sha)
            yield commit
            sha = commit.parents[0] if commit.parents else None

    # writing -------------------------------------------------------------------------------
    def writer_lock(self):
        """Held by every ref update; a writer that lost a race holds it for its whole retry."""
        return fsutil.locked(os.path.join(self.path, "paxoslog.reflock"))

    def append(self, parent: bytes | None, event: Event, rev: int, files: dict[str, bytes],
               message: str, author: str, *, lock_held: bool = False) -> bytes | None:
        """Write a commit on `parent`; move the branch only if it still points at `parent`.

        Returns the new commit id, or None when another writer moved the branch first.
        """
        tree = {EVENT_PATH: encode(event), **files}
        # The objects' sync is left to the ref update, which makes them and the new ref's
        # bytes durable with one barrier before the ref is renamed into place.
        sha = self._store_commit(parent, tree, message, author, rev)
        return sha if self.move_branch(parent, sha, lock_held=lock_held,
                                       objects_synced=False) else None

    def write_commit(self, parent: bytes | None, tree_files: dict[str, bytes], message: str,
                     author: str, rev: int | None = None) -> bytes:
        """Store a commit of exactly `tree_files` (durably, when fsync is on); no ref moves."""
        sha = self._store_commit(parent, tree_files, message, author, rev)
        if fsutil.fsync_enabled():
            fsutil.syncfs(self.path)  # every object is on disk before any ref names it
        return sha

    def _store_commit(self, parent: bytes | None, tree_files: dict[str, bytes], message: str,
                      author: str, rev: int | None) -> bytes:
        """Write the commit's objects (loose, each renamed into place whole), not synced."""
        self.create()
        objects: list = []
        tree = _build_tree(tree_files, objects)
        commit = Commit()
        commit.tree = tree.id
        commit.parents = [parent] if parent is not None else []
        commit.author = commit.committer = author.encode()
        now = int(time.time())
        offset = time.localtime(now).tm_gmtoff
        commit.author_time = commit.commit_time = now
        commit.author_timezone = commit.commit_timezone = offset
        commit.encoding = b"UTF-8"
        commit.message = message.encode() + b"\n"
        if rev is not None:
            # The revision number rides in an extra commit header (git keeps and ignores it),
            # so HEAD's number is known without walking the history.
            commit._extra = [(REV_HEADER, str(rev).encode())]
        objects.append(commit)
        for obj in objects:
            _write_loose(self.repo.object_store.path, obj)
        return commit.id

    def move_branch(self, parent: bytes | None, new: bytes, *, lock_held: bool = False,
                    objects_synced: bool = True) -> bool:
        """Compare-and-swap of refs/heads/main from `parent` to `new`. `objects_synced=False`:
        the objects `new` names are not on disk yet; they are synced before the ref moves."""
        with contextlib.nullcontext() if lock_held else self.writer_lock():
            # Under our flock any dulwich ref lock left behind is a kill -9 leftover, and so
            # is a temp object whose writer is dead.
            stale = os.path.join(self.path, "refs", "heads", "main.lock")
            if os.path.exists(stale):
                os.unlink(stale)
            self.sweep_temp_objects()
            ok = self._swap_loose_ref(parent, new, sync_all=not objects_synced)
            if ok is None:  # the first commit, a packed ref, anything unusual: dulwich
                if not objects_synced and fsutil.fsync_enabled():
                    fsutil.syncfs(self.path)  # every object is on disk before the ref moves
                if parent is None:
                    ok = self.repo.refs.add_if_new(BRANCH, new)
                else:
                    ok = self.repo.refs.set_if_equals(BRANCH, parent, new)
            if ok and fsutil.fsync_enabled():
                fsutil.fsync_dir(os.path.join(self.path, "refs", "heads"))
            if ok:
                fsutil.crash_point("ref-moved")
        return ok


    def _swap_loose_ref(self, parent: bytes | None, new: bytes, *,
                        sync_all: bool) -> bool | None:
        """The compare-and-swap of a loose refs/heads/main, as dulwich does it (git's
        `main.lock`, written, synced, renamed) with one read of the ref instead of three and no
        sync when fsync is off. `sync_all`: one syncfs makes the new ref's bytes and the
        commit's objects durable together, before the rename names them. None when the ref is
        not a plain loose one. The caller holds the writer lock, which every ref update of
        this tool takes."""
        if parent is None:
            return None
        path = os.path.join(self.path, "refs", "heads", "main")
        try:
            with open(path, "rb") as f:
                current = f.read(128)
        except FileNotFoundError:
            return None
        current = current.rstrip(b"\n")
        if len(current) != 40:  # a symbolic ref or a damaged one: dulwich decides
            return None
        if current != parent:
            return False
        lock = path + ".lock"
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                fsutil.write_all(fd, new + b"\n")
                if fsutil.fsync_enabled():
                    # the objects and the ref's bytes are on disk before its name is
                    if sync_all:
                        fsutil.syncfs(self.path)
                    else:
                        os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(lock, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            raise
        return True

    # kill -9 leftovers -----------------------------------------------------------------------
    def stale_temp_objects(self, *, everywhere: bool = False) -> list[str]:
        """Paths (relative to the repository) of temp objects whose writer died. `everywhere`
        also scans the fan-out folders, where older builds wrote them (slow on a big loose
        store: for verify and replay, not for every append)."""
        objects = os.path.join(self.path, "objects")
        folders = [TMP_DIR]
        if everywhere:
            with contextlib.suppress(FileNotFoundError):
                folders += sorted(d for d in os.listdir(objects) if len(d) == 2)
        out = []
        for folder in folders:
            try:
                entries = list(os.scandir(os.path.join(objects, folder)))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                m = _TMP_OBJECT.match(entry.name)
                if m is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                    if fsutil.stale_temp(entry.name, mtime, pid=int(m.group(1))):
                        out.append(f"objects/{folder}/{entry.name}")
        return sorted(out)

    def sweep_temp_objects(self, *, everywhere: bool = False) -> list[str]:
        """Remove stale temp objects (hold the writer lock); returns what it removed."""
        removed = self.stale_temp_objects(everywhere=everywhere)
        for rel in removed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.path, rel))
        return removed


def nest(files: dict[str, bytes]) -> dict:
    """{"a/b": x} -> {"a": {"b": x}}: the directory structure of a tree."""
    root: dict = {}
    for path, data in files.items():
        node = root
        *dirs, name = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = data
    return root


def _build_tree(files: dict[str, bytes], objects: list) -> Tree:
    return _tree_of(nest(files), objects)


def _tree_of(node: dict, objects: list) -> Tree:
    tree = Tree()
    for name, value in node.items():
        if isinstance(value, dict):
            tree.add(name.encode(), 0o040000, _tree_of(value, objects).id)
        else:
            blob = Blob.from_string(value)
            objects.append(blob)
            tree.add(name.encode(), 0o100644, blob.id)
    objects.append(tree)
    return tree


def _write_loose(objects_dir: str, obj) -> None:
    # A unique temp name (not dulwich's fixed `.lock`) so an object left half-written by a
    # killed writer can never block the next writer of the same object; in a folder of its
    # own, which git fsck ignores and the next writer sweeps cheaply (pid in the name).
    hexsha = obj.id.decode()
    directory = os.path.join(objects_dir, hexsha[:2])
    path = os.path.join(directory, hexsha[2:])
    if os.path.exists(path):
        return
    raw = obj.as_raw_string()
    data = zlib.compress(obj.type_name + b" %d\0" % len(raw) + raw)
    tmp = os.path.join(objects_dir, TMP_DIR, f"{hexsha[2:]}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(tmp, flags, 0o444)
    except FileNotFoundError:  # the first object ever
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        fd = os.open(tmp, flags, 0o444)
    try:
        fsutil.write_all(fd, data)
    finally:
        os.close(fd)
    fsutil.crash_point("object-written")
    try:
        os.rename(tmp, path)
    except FileNotFoundError:  # first object of this fan-out directory
        os.makedirs(directory, exist_ok=True)
        os.rename(tmp, path)


def iso_time(commit: Commit) -> str:
    """Commit time as ISO 8601 with the commit's own UTC offset; `@<seconds>` when a crafted
    commit holds a time no calendar can show (the audit trail must still list it)."""
    offset = commit.commit_timezone
    try:
        t = time.gmtime(commit.commit_time + offset)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t)
    except (OverflowError, ValueError, OSError):
        return f"@{commit.commit_time}"
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return stamp + f"{sign}{hours:02d}:{minutes:02d}"
