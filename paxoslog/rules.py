"""The shared validation rules of admin.md §3.1, as pure functions raising `Refused`."""

from __future__ import annotations

import re

from .errors import Refused

_INT = re.compile(r"[+-]?[0-9]+\Z")
_CELL = re.compile(r"[A-Za-z0-9_]+\Z", re.ASCII)
_BAD_HOST = re.compile(r"[\s@:/]")


def parse_int(text: str) -> int | None:
    """The `int` rule: optional sign and decimal digits (no spaces, underscores or other digits)."""
    return int(text) if _INT.match(text) and text.isascii() else None


def check_port(port: int | None) -> None:
    """Rule (P). `None` means "not given" and passes."""
    if port is None:
        return
    if port > 65535:
        raise Refused("port number should be 65535 or less")
    if port < 1:
        raise Refused("port number should be 1 or more")


def check_host(host: str | None) -> None:
    """Rule (H). `None` means "not given" and passes."""
    if host is not None and (not host or _BAD_HOST.search(host)):
        raise Refused("illegal host name")


def parse_endpoint(text: str) -> tuple[str, int]:
    """Rule (A) then (H) and (P): `HOST:PORT` with exactly one colon and an integer port."""
    host, sep, port_text = text.partition(":")
    port = parse_int(port_text) if sep and ":" not in port_text else None
    if port is None:
        raise Refused("non-numeric value has been specified for the port number")
    check_host(host)
    check_port(port)
    return host, port


def parse_groups(text: str | None) -> tuple[str, ...]:
    """Rule (G): split on ':', drop empty and repeated names, keep order."""
    if not text:
        return ()
    return tuple(dict.fromkeys(g for g in text.split(":") if g))


def check_cell_name(name: str) -> None:
    if not _CELL.match(name):
        raise Refused("illegal css name")


def check_name_space(space: str | None) -> None:
    if space is not None and (not space or any(c.isspace() for c in space)):
        raise Refused("illegal name space")
