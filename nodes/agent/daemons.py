"""Starting a daemon in its own session with a readiness wait, and signalling one safely.

`paxos-css` prints `READY <pid>` on stdout once its sockets are bound, its recovery is done and
its pid file is locked; when it cannot start it prints `FAIL <code> <reason>` there instead and
exits with that code (and a `paxos-css: <reason>` line on stderr, which older daemons give
alone). Its stdout is our readiness pipe; its stderr goes to a file in ~/log whose new
part gives the FAIL reason. So failures are reported synchronously by the agent's exit code."""

from __future__ import annotations

import os
import select
import signal
import time
from typing import TYPE_CHECKING

from .errors import Failed

if TYPE_CHECKING:
    import subprocess

READY_TIMEOUT = 30.0
MAX_READY_LINE = 256
MAX_REASON = 4096
MAX_STDERR = 1 << 20


class Started:
    # a plain class, not a dataclass: `dataclasses` costs every agent call start-up time
    __slots__ = ("ok", "pid", "exit_code", "message", "timed_out")

    def __init__(self, ok: bool, pid: int | None = None, exit_code: int | None = None,
                 message: str = "", timed_out: bool = False) -> None:
        self.ok = ok
        self.pid = pid
        self.exit_code = exit_code  # the daemon's, when it failed
        self.message = message
        self.timed_out = timed_out

    def __repr__(self) -> str:
        return (f"Started(ok={self.ok!r}, pid={self.pid!r}, exit_code={self.exit_code!r}, "
                f"message={self.message!r}, timed_out={self.timed_out!r})")


def spawn(argv: list[str], env: dict[str, str], stderr_path: str, cwd: str,
          timeout: float = READY_TIMEOUT) -> Started:
    """Start `argv` with setsid and stdin /dev/null; wait for READY or its exit."""
    import subprocess  # only start needs it: status and stop stay light

    _rotate(stderr_path)
    try:
        err_fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise Failed(f"{stderr_path}: cannot open: {e.strerror}") from None
    offset = os.fstat(err_fd).st_size
    try:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err_fd, start_new_session=True,
                                close_fds=True)
    except OSError as e:
        raise Failed(f"cannot run {argv[0]}: {e.strerror}") from None
    finally:
        os.close(err_fd)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in buf and len(buf) <= MAX_READY_LINE:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(proc)
                return Started(False, proc.pid, None, f"not ready within {timeout:g} s; "
                               "stopped it", timed_out=True)
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not r:
                continue
            chunk = os.read(fd, 512)
            if not chunk:
                break
            buf += chunk
    finally:
        proc.stdout.close()
    line = buf.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    parts = line.split()
    if len(parts) == 2 and parts[0] == "READY" and parts[1].isdigit():
        # the daemon runs on in its own session; init (or a subreaper) reaps it later
        proc.returncode = 0  # keep Popen.__del__ from warning about a running child
        return Started(True, int(parts[1]))
    fail = _fail_line(line)
    if fail is not None:
        try:
            code: int | None = proc.wait(10)
        except subprocess.TimeoutExpired:
            _kill(proc)
            code = None
        return Started(False, proc.pid, fail[0] if code is None else code, fail[1])
    if b"\n" in buf or len(buf) > MAX_READY_LINE:
        _kill(proc)
        return Started(False, proc.pid, None, f"unexpected readiness line {line[:80]!r}")
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        _kill(proc)
        code = None
    return Started(False, proc.pid, code, _reason(stderr_path, offset) or
                   f"exited with code {code} before it was ready")


def _fail_line(line: str) -> tuple[int, str] | None:
    """(code, reason) of a `FAIL <code> <reason>` readiness line, else None."""
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "FAIL" or not parts[1].isdigit() or len(parts[1]) > 3:
        return None
    reason = "".join(c if c.isprintable() else "?" for c in (parts[2] if len(parts) > 2
                                                              else "").strip())
    return int(parts[1]), reason[:500] or f"failed with code {parts[1]}"


def _rotate(path: str) -> None:
    """The daemon's stderr file only grows by start failures and stray warnings; keep one
    older file once it passes 1 MiB."""
    try:
        if os.lstat(path).st_size > MAX_STDERR:
            os.replace(path, path + ".1")
    except OSError:
        pass


def _kill(proc: subprocess.Popen) -> None:
    import subprocess

    try:
        proc.kill()
        proc.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _reason(path: str, offset: int) -> str:
    """The last line the daemon wrote to stderr since `offset` (bounded, printable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        size = os.fstat(fd).st_size
        start = max(offset, size - MAX_REASON)
        data = os.pread(fd, MAX_REASON, start)
    finally:
        os.close(fd)
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    return "".join(c if c.isprintable() else "?" for c in lines[-1])[:500]


class Signaller:
    """Signals one process through a pidfd, opened while its pid file lock proved it alive, so
    a recycled pid can never receive the signal."""

    def __init__(self, pid: int) -> None:
        if pid <= 1:
            raise Failed(f"refusing to signal pid {pid}")
        try:
            self.fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self.fd = None

    def send(self, sig: int) -> bool:
        if self.fd is None:
            return False
        try:
            signal.pidfd_send_signal(self.fd, sig)
            return True
        except ProcessLookupError:
            return False

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
