"""The agent's errors: each carries the exit code of spec nodes.md §4.1."""

from __future__ import annotations

OK, FAILED, USAGE, NOT_RUNNING, REFUSED, TIMED_OUT, BAD_ETC, LOCKED = range(8)


def clean(value: object, limit: int = 2000) -> str:
    """A string safe for one output or log line: printable characters only, bounded."""
    text = str(value)[:limit]
    return "".join(c if c.isprintable() else "?" for c in text)


class AgentError(Exception):
    """A command that cannot complete; `code` is its exit code, `kind` its name in the output."""

    exit_code = FAILED
    kind = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Failed(AgentError):
    exit_code, kind = FAILED, "failed"


class Usage(AgentError):
    exit_code, kind = USAGE, "usage"


class NotRunning(AgentError):
    exit_code, kind = NOT_RUNNING, "not_running"


class Refused(AgentError):
    exit_code, kind = REFUSED, "refused"


class TimedOut(AgentError):
    exit_code, kind = TIMED_OUT, "timeout"


class BadEtc(AgentError):
    exit_code, kind = BAD_ETC, "bad_etc"


class Locked(AgentError):
    exit_code, kind = LOCKED, "locked"
