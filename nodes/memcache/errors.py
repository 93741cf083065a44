"""Errors of the proxy, under the nodes' one hierarchy (nodes.css.errors.CssError)."""

from __future__ import annotations

from nodes.css.errors import ConfigError, CssError


class ProxyError(CssError):
    """Base of the proxy's own errors."""


class ProxyConfigError(ConfigError):
    """Bad command line, option value or pair (exit 2)."""


class Reply(ProxyError):
    """A request that ends with one error line to the client (`SERVER_ERROR ...`)."""

    def __init__(self, line: bytes) -> None:
        super().__init__(line.decode("latin-1"))
        self.line = line


def server_error(text: str) -> Reply:
    return Reply(b"SERVER_ERROR " + text.encode() + b"\r\n")


BACKEND_DOWN = b"SERVER_ERROR backend unavailable\r\n"
CSS_DOWN = b"SERVER_ERROR css unavailable\r\n"
DELEGATION_TIMEOUT = b"SERVER_ERROR delegation timeout\r\n"
POISONED = b"SERVER_ERROR key poisoned\r\n"
COLLISION = b"SERVER_ERROR key collision\r\n"
