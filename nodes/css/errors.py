"""One error hierarchy for the CSS server, client and tools."""

from __future__ import annotations

# Wire error codes (spec 2.9); kept as plain strings because they travel in msgpack replies.
CODES = (
    "ENOT_LEADER", "ESESSION_EXPIRED", "ESTALE_SEQ", "ENOENT", "EEXIST", "ECONFLICT", "EBUSY",
    "ETIMEDOUT", "ENOSPC", "ETOOBIG", "ETYPE", "EINVAL", "ESTOPPING", "EPROTO", "EFRAME",
    "ECONFIG_CHANGED", "ENOT_CAUGHT_UP", "EQUORUM_AT_RISK", "ENOT_LEARNER",
)


class CssError(Exception):
    """Base of every error raised by the CSS package."""


class ConfigError(CssError):
    """Bad command line or cell configuration (exit code 2 or 6)."""


class ProtocolError(CssError):
    """A message or file that does not decode, or carries an unknown version."""


class StorageError(CssError):
    """Durable storage failed or is corrupt; the member must not go on."""

    def __init__(self, message: str, exit_code: int = 10) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class FrameError(ProtocolError):
    """A client frame is oversized or malformed."""


class RequestError(CssError):
    """The server answered a request with an error code (one of CODES)."""

    def __init__(self, code: str, message: str = "", info: dict | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.info = info or {}


class Unavailable(CssError):
    """No member answered as leader within the request timeout."""
