"""The one exception hierarchy of paxoslog.

Every failure a user can cause maps to one of these; the CLI turns them into a one-line message
and an exit code, never a traceback.
"""

from __future__ import annotations


class PaxosError(Exception):
    """A refused or failed command: message on stderr, exit code 1."""

    exit_code = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class Refused(PaxosError):
    """A validation rule of `decide` rejected the command; nothing was written."""


class NotFound(Refused):
    def __init__(self, key: object) -> None:
        super().__init__(f"not found: {key}")


class UsageError(PaxosError):
    """Bad command line: usage plus `error: ...`, exit code 2."""

    exit_code = 2


class LogError(PaxosError):
    """The event log cannot be read: corrupt object, unknown format version, bad revision."""


class ConcurrencyError(PaxosError):
    def __init__(self) -> None:
        super().__init__("the event log is being changed concurrently; try again")


class RemoteError(PaxosError):
    """A host could not be reached or refused an operation."""


class BadInput(UsageError):
    """A command line refused before parsing: too long, control characters, bytes that are not
    UTF-8, unbalanced quoting. Exit code 2, `paxos: error: <message>`."""


# errno values that only a write can meet: read-only file system, full disk, quota, file size
_WRITE_ERRNOS = frozenset({30, 28, 122, 27})


def describe_os_error(exc: OSError, where: str | None = None) -> str:
    """`cannot <read|write|access> <path>: <OS reason>`, the one line a local file problem gets.

    The operation is inferred from the error and the path's state, since an OSError does not say
    whether it came from a read or a write; `where` names the folder when the error has no path
    (a write(2) on a full disk)."""
    import errno as _errno
    import os

    path = exc.filename if isinstance(exc.filename, str) else where
    reason = exc.strerror or str(exc) or type(exc).__name__
    if path is None:
        return reason
    if exc.errno in _WRITE_ERRNOS:
        verb = "write"
    elif exc.errno in (_errno.EACCES, _errno.EPERM):
        if os.path.lexists(path):
            verb = "read" if not os.access(path, os.R_OK) else "write"
        else:
            # not visible: a folder above it cannot be searched (read), or the new entry's
            # folder is not writable (write)
            parent = os.path.dirname(path.rstrip("/")) or "."
            above = parent
            while above not in ("", "/") and not os.path.lexists(above):
                above = os.path.dirname(above)
            if not os.access(above, os.X_OK):
                verb = "read"
            elif above == parent and not os.access(parent, os.W_OK):
                verb = "write"
            else:
                verb = "access"
    else:
        verb = "access"
    return f"cannot {verb} {path}: {reason}"
