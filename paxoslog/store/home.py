"""Local state under $PAXOS_HOME (§5.2): the log, HEAD's rendering in etc/, the snapshot cache."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass

import msgpack

from paxoslog import fsutil
from paxoslog.core.model import EMPTY, Topology, to_plain
from paxoslog.core.schema import ID_MAX, from_plain, integer

CACHE_VERSION = 1


@dataclass(frozen=True)
class Home:
    root: str

    @classmethod
    def from_env(cls) -> Home:
        return cls(os.environ.get("PAXOS_HOME") or os.path.expanduser("~"))

    @property
    def repo(self) -> str:
        return os.path.join(self.root, "var", "paxoslog.git")

    @property
    def lock(self) -> str:
        return os.path.join(self.root, "var", "paxoslog.lock")

    @property
    def cache(self) -> str:
        return os.path.join(self.root, "var", "topology.cache")

    @property
    def history(self) -> str:
        return os.path.join(self.root, ".paxos_history")

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)


def read_head_ref(home: Home) -> bytes | None:
    """HEAD's commit id read straight from the ref file: no dulwich import on the hot path."""
    try:
        with open(os.path.join(home.repo, "refs", "heads", "main"), "rb") as f:
            sha = f.read().strip()
        if len(sha) == 40:
            return sha
    except FileNotFoundError:
        pass
    if not os.path.isfile(os.path.join(home.repo, "HEAD")):
        return None
    from paxoslog.store.gitlog import EventLog  # packed refs or anything unusual: ask dulwich

    return EventLog(home.repo).head()


def head_state(home: Home) -> tuple[bytes | None, int, Topology]:
    """(HEAD commit, its rev, its topology), from the cache when it matches HEAD."""
    sha = read_head_ref(home)
    if sha is None:
        return None, 0, EMPTY
    cached = _read_cache(home, sha)
    if cached is not None:
        return sha, cached[0], cached[1]
    from paxoslog.store.gitlog import EventLog

    log = EventLog(home.repo)
    topology = log.topology(sha)
    rev = log.rev(sha)
    try:
        write_cache(home, sha, rev, topology)
    except OSError:
        pass  # only a speed-up: a read-only home still answers every read
    return sha, rev, topology


def _read_cache(home: Home, sha: bytes) -> tuple[int, Topology] | None:
    try:
        with open(home.cache, "rb") as f:
            raw = msgpack.unpackb(f.read(), raw=False)
        if raw.get("v") == CACHE_VERSION and raw.get("commit") == sha.decode():
            # Validated like the snapshot it copies: a bad cache is rebuilt from the log.
            return integer(raw["rev"], 1, ID_MAX, "rev"), from_plain(raw["topology"])
    except Exception:  # a damaged cache is only a cache: rebuild it from the log
        return None
    return None


def write_cache(home: Home, sha: bytes, rev: int, topology: Topology) -> None:
    data = msgpack.packb({"v": CACHE_VERSION, "commit": sha.decode(), "rev": rev,
                          "topology": to_plain(topology)}, use_bin_type=True)
    var = os.path.dirname(home.cache)
    try:  # the folder as the operator made it (it may be a link): not a confined write
        fd = os.open(var, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        os.makedirs(var, exist_ok=True)
        fd = os.open(var, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsutil.replace_cache_at(fd, os.path.basename(home.cache), data)
    finally:
        os.close(fd)


CONF_REL = "etc/paxos_memcache.conf"  # render.CONF_PATH, without importing render here
_CELL_FILE = re.compile(r"etc/cell/([A-Za-z0-9_]+\.conf)\Z", re.ASCII)  # rule (C) names


def _etc_files(files: dict[str, bytes]) -> tuple[bytes | None, dict[str, bytes]]:
    """(the conf, cell file name -> bytes) of a rendering; any other path under etc/ is
    refused (a name that is not one `render` makes)."""
    conf, cells = None, {}
    for rel, data in files.items():
        if not rel.startswith("etc/"):
            continue
        m = _CELL_FILE.match(rel)
        if m is not None:
            cells[m.group(1)] = data
        elif rel == CONF_REL:
            conf = data
        else:
            raise fsutil.UnsafePath(f"refusing to write {rel!r}: not a file of $PAXOS_HOME/etc")
    return conf, cells


def write_etc(home: Home, files: dict[str, bytes],
              prepared: dict[str, str] | None = None) -> list[str]:
    """Make $PAXOS_HOME/etc equal `files`: changed files rewritten atomically, stale cell
    files removed, temp files of killed writers swept. Returns the paths it changed.

    `prepared` (from `prepare_etc`, made durable since): path -> a temp file beside it that
    already holds that path's bytes; it is renamed into place instead of written again.

    Confined to $PAXOS_HOME/etc: every name is checked and every directory opened without
    following symbolic links before anything is written, so a refused write changes nothing.
    Callers hold the lock on `home.lock`."""
    conf, cells = _etc_files(files)
    prepared = dict(prepared or {})
    etc = fsutil.open_dir(home.root, ("etc",), create=True)
    try:
        cell = _open_cell(home, etc, create=bool(cells))
        try:
            changed, renamed = [], []
            if conf is not None and _put_or_rename(etc, "paxos_memcache.conf", conf,
                                                   prepared.pop(CONF_REL, None), renamed):
                changed.append(CONF_REL)
            for name, data in cells.items():
                rel = f"etc/cell/{name}"
                if _put_or_rename(cell, name, data, prepared.pop(rel, None), renamed):
                    changed.append(rel)
            if renamed and fsutil.fsync_enabled():
                for fd in set(renamed):
                    os.fsync(fd)  # the renames are on disk before the lock is released
            _drop(etc, cell, prepared)  # prepared for a file not rendered after all
            if cell is not None:
                changed += _remove_stale_cells(cell, cells)
                _sweep(cell)
            _sweep(etc)
        finally:
            if cell is not None:
                os.close(cell)
    finally:
        os.close(etc)
    sweep_var(home)
    return changed


def _put_or_rename(dir_fd: int | None, name: str, data: bytes, tmp: str | None,
                   renamed: list[int]) -> bool:
    if tmp is None:
        return _put(dir_fd, name, data)
    if fsutil.read_at(dir_fd, name) == data:  # written meanwhile (same HEAD, another writer)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        return False
    fsutil.crash_point("etc-temp-written")
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    renamed.append(dir_fd)
    return True


def prepare_etc(home: Home, files: dict[str, bytes]) -> dict[str, str]:
    """Before an append: the files of `files` that differ from etc/ now, written as temp files
    beside them and not synced; the append's one sync of the log (`EventLog.append`) makes them
    durable with the objects, so publishing them is a rename and one sync of the folder
    instead of a sync of every file as well. {} when that sync would not cover them: fsync
    off (nothing to save), or etc/ on another file system than the log. Returns path -> temp
    name; give it to `publish`, or to `discard_etc` when the append did not happen."""
    if not fsutil.fsync_enabled():
        return {}
    conf, cells = _etc_files(files)
    try:
        log_device = os.stat(home.repo).st_dev
    except FileNotFoundError:  # no log yet: the very first append takes the plain way
        return {}
    etc = fsutil.open_dir(home.root, ("etc",), create=True)
    try:
        if os.fstat(etc).st_dev != log_device:
            return {}
        cell = _open_cell(home, etc, create=bool(cells))
        out: dict[str, str] = {}
        try:
            todo = [(etc, "paxos_memcache.conf", CONF_REL, conf)] if conf is not None else []
            todo += [(cell, name, f"etc/cell/{name}", data) for name, data in cells.items()]
            for dir_fd, name, rel, data in todo:
                if fsutil.read_at(dir_fd, name) != data:
                    out[rel] = fsutil.write_temp_at(dir_fd, data)
        except BaseException:
            _drop(etc, cell, out)
            raise
        finally:
            if cell is not None:
                os.close(cell)
    finally:
        os.close(etc)
    return out


def discard_etc(home: Home, prepared: dict[str, str]) -> None:
    """Remove the temp files of a `prepare_etc` whose append did not happen."""
    if not prepared:
        return
    try:
        etc = fsutil.open_dir(home.root, ("etc",), create=False)
    except (FileNotFoundError, fsutil.UnsafePath):
        return
    try:
        cell = _open_cell(home, etc, create=False)
        try:
            _drop(etc, cell, prepared)
        finally:
            if cell is not None:
                os.close(cell)
    finally:
        os.close(etc)


def _drop(etc: int, cell: int | None, prepared: dict[str, str]) -> None:
    for rel, tmp in prepared.items():
        dir_fd = etc if rel == CONF_REL else cell
        if dir_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)


def check_etc(home: Home) -> None:
    """Raise UnsafePath if etc/ or etc/cell is a symbolic link (or not a folder). Writers call it
    before they append, so a command that could not publish its files is refused whole instead
    of leaving an event in the log and etc/ behind it."""
    try:
        etc = fsutil.open_dir(home.root, ("etc",), create=False)
    except FileNotFoundError:
        return
    try:
        cell = _open_cell(home, etc, create=False)
        if cell is not None:
            os.close(cell)
    finally:
        os.close(etc)


def _open_cell(home: Home, etc: int, create: bool) -> int | None:
    try:
        return fsutil.open_dir(etc, ("cell",), create=create, where=home.path("etc"))
    except FileNotFoundError:
        return None


def _put(dir_fd: int | None, name: str, data: bytes) -> bool:
    if fsutil.read_at(dir_fd, name) == data:
        return False
    fsutil.atomic_write_at(dir_fd, name, data)
    return True


def _remove_stale_cells(cell: int, keep: dict[str, bytes]) -> list[str]:
    changed = []
    for name in sorted(os.listdir(cell)):
        if name.endswith(".conf") and name not in keep:
            try:
                if stat.S_ISDIR(os.stat(name, dir_fd=cell, follow_symlinks=False).st_mode):
                    continue  # not ours to remove; a link is removed, never followed
                os.unlink(name, dir_fd=cell)
            except FileNotFoundError:
                continue
            changed.append(f"etc/cell/{name}")
    return changed


def _sweep(dir_fd: int) -> None:
    for name in fsutil.stale_temps_at(dir_fd):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)


def sweep_var(home: Home) -> None:
    """Remove the temp files a killed writer of the snapshot cache left in var/."""
    try:
        var = fsutil.open_dir(home.root, ("var",), create=False)
    except (FileNotFoundError, fsutil.UnsafePath):
        return
    try:
        _sweep(var)
    finally:
        os.close(var)


def stale_files(home: Home) -> list[str]:
    """Paths (relative to $PAXOS_HOME) of the temp files killed writers left in etc/ and var/."""
    out = []
    for parts in (("etc",), ("etc", "cell"), ("var",)):
        try:
            fd = fsutil.open_dir(home.root, parts, create=False)
        except (FileNotFoundError, NotADirectoryError, fsutil.UnsafePath):
            continue
        try:
            out += ["/".join((*parts, name)) for name in fsutil.stale_temps_at(fd)]
        finally:
            os.close(fd)
    return out


def etc_differences(home: Home, files: dict[str, bytes]) -> list[str]:
    """How $PAXOS_HOME/etc differs from `files` (HEAD's rendering): one line per path."""
    want = {rel: data for rel, data in files.items() if rel.startswith("etc/")}
    have: dict[str, bytes | None] = {}
    try:
        etc = fsutil.open_dir(home.root, ("etc",), create=False)
    except FileNotFoundError:
        etc = None
    except fsutil.UnsafePath as exc:
        return [exc.message]
    if etc is not None:
        try:
            have[CONF_REL] = fsutil.read_at(etc, "paxos_memcache.conf")
            try:
                cell = fsutil.open_dir(etc, ("cell",), create=False, where=home.path("etc"))
            except FileNotFoundError:
                cell = None
            except fsutil.UnsafePath as exc:
                return [exc.message]
            if cell is not None:
                try:
                    for name in os.listdir(cell):
                        if name.endswith(".conf"):
                            have[f"etc/cell/{name}"] = fsutil.read_at(cell, name)
                finally:
                    os.close(cell)
        finally:
            os.close(etc)
    out = []
    for rel in sorted(set(want) | {k for k, v in have.items() if v is not None}):
        got = have.get(rel)
        if got != want.get(rel):
            state = "missing" if got is None else "unexpected" if rel not in want else "differs"
            out.append(f"{rel} {state}")
    return out


def publish(home: Home, known: tuple[bytes, int, Topology, dict[str, bytes]] | None = None,
            *, cache: bool = True, prepared: dict[str, str] | None = None,
            ) -> tuple[list[str], tuple[bytes | None, int, Topology]]:
    """The one writer of "etc/ equals HEAD" (§5.2), used after an append, a fetch and a replay.

    Under the lock, HEAD is read again: if it is still the commit the caller knows (`known`:
    commit, rev, topology and its rendered files), those are written; if another administrator
    appended meanwhile, the newer head is rendered instead, so etc/ never goes back in time.
    `cache=False` leaves the snapshot cache to the caller (`LocalLog.save_cache`).
    `prepared`: `prepare_etc` of the known files, used if the known commit is still HEAD.
    Returns the etc/ paths changed and the head that was published."""
    from paxoslog.core.render import render  # only writers render

    with fsutil.locked(home.lock):
        sha = read_head_ref(home)
        if known is not None and known[0] == sha:
            sha, rev, topology, files = known
            if cache:
                write_cache(home, sha, rev, topology)
        else:
            discard_etc(home, prepared or {})
            prepared = None
            sha, rev, topology = head_state(home)  # refreshes the cache
            files = render(topology)
        changed = write_etc(home, files, prepared)
    return changed, (sha, rev, topology)


class LocalLog:
    """The event log and its rendering on this machine, and the one owner of what HEAD is.

    HEAD is read from the ref file on every `head()` (another administrator may append at any
    time), but its rev and topology are kept while it does not move, so a shell renders and
    validates against the same objects instead of re-reading the snapshot per command."""

    def __init__(self, home: Home, *, cache_on_exit: bool = False) -> None:
        self.home = home
        self._log = None
        self._head: tuple[bytes | None, int, Topology] | None = None
        # The shell appends many times and reads HEAD from memory: it writes the snapshot
        # cache (a file for other processes) once, when it ends, instead of per append (four
        # file-system operations that wait for the journal). A process that starts meanwhile
        # finds the cache behind HEAD and rebuilds it from HEAD's snapshot, as after a crash.
        self.cache_on_exit = cache_on_exit
        self._unsaved: tuple[bytes, int, Topology] | None = None

    @property
    def log(self):  # an EventLog; dulwich is imported only when the log is really read
        if self._log is None:
            from paxoslog.store.gitlog import EventLog

            self._log = EventLog(self.home.repo)
        return self._log

    def head(self) -> tuple[bytes | None, int, Topology]:
        sha = read_head_ref(self.home)
        if self._head is None or self._head[0] != sha:
            self._head = head_state(self.home)
        return self._head

    def forget(self) -> None:
        """The log was replaced behind our back (fetch): read everything again."""
        self._head = None

    def publish(self, known: tuple[bytes, int, Topology, dict[str, bytes]] | None = None,
                prepared: dict[str, str] | None = None) -> list[str]:
        changed, self._head = publish(self.home, known, cache=not self.cache_on_exit,
                                      prepared=prepared)
        if self.cache_on_exit and self._head[0] is not None:
            self._unsaved = self._head  # type: ignore[assignment]
        return changed

    def save_cache(self) -> None:
        """Write the cache `publish` left unwritten, unless HEAD has moved on since (then a
        newer writer's cache, or a rebuild, serves it)."""
        unsaved, self._unsaved = self._unsaved, None
        if unsaved is not None and read_head_ref(self.home) == unsaved[0]:
            write_cache(self.home, *unsaved)
