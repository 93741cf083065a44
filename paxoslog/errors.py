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
