"""Durable file primitives: temp file + fsync + rename + fsync of the directory; directories
opened without following symbolic links; stale temporary files left by a killed writer."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager

from paxoslog.errors import PaxosError

_libc = None
TEMP_PREFIX = ".tmp-"  # then the writer's pid and '-': a killed writer's files are recognised
STALE_AFTER = 3600.0  # seconds: an older temp file is stale even if its pid was reused
_TEMP_PID = re.compile(r"\.tmp-([0-9]{1,10})-")


class UnsafePath(PaxosError):
    """A path that would leave its root: `..`, `/` or NUL in a name, or a symbolic link."""


def fsync_enabled() -> bool:
    # PAXOS_FSYNC=0 trades power-loss durability for speed (bulk imports, benchmarks); the
    # ordering that makes kill -9 safe is the same either way.
    return os.environ.get("PAXOS_FSYNC", "1") not in ("0", "off", "no", "false")


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: str) -> None:
    """One barrier for many files: cheaper than an fsync per file on slow disks."""
    global _libc
    if _libc is None:
        import ctypes  # only writers sync; readers never pay for the import

        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


_umask: int | None = None


def _masked(mode: int) -> bool:
    """Whether the process umask takes bits off `mode` (so a created file needs a chmod).
    Read from /proc, never by setting the umask, which would race with other threads."""
    global _umask
    if _umask is None:
        try:
            with open("/proc/self/status", "rb") as f:
                line = next(x for x in f if x.startswith(b"Umask:"))
            _umask = int(line.split()[1], 8)
        except (OSError, StopIteration, ValueError, IndexError):
            _umask = 0o777  # unknown: always chmod
    return bool(mode & _umask)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a regular file may take fewer in one call)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path: str, data: bytes, *, durable: bool | None = None, mode: int = 0o644) -> None:
    """Replace `path` with `data` so a reader sees the old or the new file, never a mix."""
    import tempfile  # here, not at the top: the node agent reads with this module on every call

    durable = fsync_enabled() if durable is None else durable
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(directory)


@contextmanager
def locked(path: str) -> Iterator[None]:
    """An advisory lock the kernel releases when the holder dies, so kill -9 never wedges it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# confined writes ---------------------------------------------------------------------------------

def _check_name(name: str, where: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise UnsafePath(f"refusing the file name {name!r} in {where}")


def open_dir(root: str | int, parts: tuple[str, ...], *, create: bool,
             where: str | None = None) -> int:
    """A file descriptor of root/parts..., each part opened with O_NOFOLLOW: a symbolic link
    (or anything but a directory) below `root` is refused, never followed. `root` (a path or
    an open directory, named `where` in messages) is the operator's choice and may be a link.
    The caller closes the descriptor."""
    if isinstance(root, int):
        fd = os.dup(root)
        where = where or "."
    else:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        where = where or root
    try:
        for part in parts:
            _check_name(part, where)
            where = os.path.join(where, part)
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
            try:
                sub = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with _ignored(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                sub = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(f"{where} is a symbolic link or not a directory: "
                                     "refusing to write through it") from None
                raise
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


class NotRegularFile(UnsafePath):
    """A path that names a directory, FIFO, device or (not followed) symbolic link."""


class FileTooLarge(UnsafePath):
    """A file over the size its reader accepts."""


def read_regular(path: str, limit: int, *, follow: bool = False) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them, read without blocking on
    a FIFO. FileNotFoundError when it is missing; NotRegularFile or FileTooLarge (both
    UnsafePath) when it is something else or too big; other OSErrors pass through. `follow`:
    whether a symbolic link at `path` itself may be followed (the operator's own files)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags if follow else flags | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow:
            raise NotRegularFile(f"{path}: a symbolic link, not followed") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{path}: not a regular file")
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            size += len(chunk)
            if size > limit:
                raise FileTooLarge(f"{path}: larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_at(dir_fd: int, name: str) -> bytes | None:
    """The file's bytes, or None when it is missing, a link or not a regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:  # raw reads: a file object would add five system calls to every publish
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, st.st_size + 1 if not chunks else 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_temp_at(dir_fd: int, data: bytes, *, durable: bool = False,
                  mode: int = 0o644) -> str:
    """A new `.tmp-<pid>-*` file holding `data` in an opened directory; returns its name."""
    tmp = f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode,
                     dir_fd=dir_fd)
    except OSError as e:
        raise _in_dir(e, dir_fd) from None
    try:
        try:
            if _masked(mode):  # a chmod is one more file-system operation: only when needed
                os.fchmod(fd, mode)
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as e:
        with _ignored(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        if isinstance(e, OSError):
            raise _in_dir(e, dir_fd) from None
        raise
    return tmp


def _in_dir(exc: OSError, dir_fd: int) -> OSError:
    """The error naming the opened directory: the temp file's own name, relative to a descriptor,
    would tell the operator nothing (`cannot write <dir>: No space left on device`)."""
    try:
        exc.filename = os.readlink(f"/proc/self/fd/{dir_fd}")
    except OSError:
        pass  # no /proc: the message keeps what the error had
    return exc


def atomic_write_at(dir_fd: int, name: str, data: bytes, *, durable: bool | None = None,
                    mode: int = 0o644) -> None:
    """`atomic_write` inside an opened directory: the rename replaces `name` itself (a link
    there is replaced, never followed)."""
    _check_name(name, "a confined directory")
    durable = fsync_enabled() if durable is None else durable
    tmp = write_temp_at(dir_fd, data, durable=durable, mode=mode)
    try:
        crash_point("etc-temp-written")
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with _ignored(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if durable:
        os.fsync(dir_fd)


def replace_cache_at(dir_fd: int, name: str, data: bytes, *, mode: int = 0o644,
                     point: str = "cache-temp-written") -> None:
    """Replace a cache file (not durable): a reader sees the old file, the new one or none,
    never a mix. The old one is unlinked before the rename because a rename over a file whose
    data is not synced makes ext4 flush that data first (auto_da_alloc, its guard for
    replace-by-rename without fsync): 0.2-1 ms on every append, for a file that is only a
    cache. So keep this for files whose absence only costs a rebuild."""
    _check_name(name, "a confined directory")
    tmp = write_temp_at(dir_fd, data, mode=mode)
    try:
        crash_point(point)
        with _ignored(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with _ignored(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def crash_point(name: str) -> None:
    """Tests only: `PAXOS_TEST_CRASH_AT=<name>` kills this process with SIGKILL here, so a
    crash test hits the moment it means to, not a random one. One environment lookup."""
    if os.environ.get("PAXOS_TEST_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# stale temporary files ----------------------------------------------------------------------------

def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's process: alive
    return True


def stale_temp(name: str, mtime: float, pid: int | None = None, now: float | None = None) -> bool:
    """Whether a temporary file was left by a writer that died: its pid (from the name, or
    given) is gone, or it is older than any write takes."""
    now = time.time() if now is None else now
    if now - mtime > STALE_AFTER:
        return True
    if pid is None:
        m = _TEMP_PID.match(name)
        if m is None:  # an older build's name without a pid: only its age tells
            return False
        pid = int(m.group(1))
    return not pid_alive(pid)


def stale_temps_at(dir_fd: int) -> list[str]:
    """Names of the stale `.tmp-<pid>-*` files of an opened directory."""
    out = []
    for entry in os.scandir(dir_fd):
        if entry.name.startswith(TEMP_PREFIX):
            with _ignored(FileNotFoundError):
                st = entry.stat(follow_symlinks=False)
                if stale_temp(entry.name, st.st_mtime):
                    out.append(entry.name)
    return sorted(out)


@contextmanager
def _ignored(*kinds: type[BaseException]) -> Iterator[None]:
    try:
        yield
    except kinds:
        pass
