"""The shared validation rules of admin.md §3.1, as pure functions raising `Refused`."""

from __future__ import annotations

import re

from paxoslog.errors import Refused

_INT = re.compile(r"[+-]?[0-9]+\Z")
_CELL = re.compile(r"[A-Za-z0-9_]+\Z", re.ASCII)
_BAD_HOST = re.compile(r"[\s@:/]")
_BAD_USER = re.compile(r"[\s@:/]")

# Ids and counters are stored as msgpack integers and read back by other tools as signed 64-bit
# values: everything an event holds fits in 63 bits. The memcache id counter is one more than the
# highest id, so the highest id is one less than that.
MAX_INT = 2**63 - 1
MAX_ID = MAX_INT - 1
# More significant digits than this exceed every limit above; Python refuses int() of more than
# 4300 digits (ValueError), so such a number is stood in for by a value just as out of range.
_MAX_DIGITS = len(str(MAX_INT))


def parse_int(text: str) -> int | None:
    """The `int` rule: optional sign and decimal digits (no spaces, underscores or other digits).

    A number too long to convert comes back as +-10**19: above every range the rules check, so
    the range check names the limit, and no lookup can match it."""
    if not (_INT.match(text) and text.isascii()):
        return None
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0")  # leading zeros count against int()'s limit too
    if len(digits) > _MAX_DIGITS:
        return sign * 10**_MAX_DIGITS
    return sign * int(digits or "0")


def check_id(mid: int) -> None:
    """A memcache id given on the command line: 0 to MAX_ID."""
    if mid < 0:
        raise Refused("id should be 0 or more")
    if mid > MAX_ID:
        raise Refused(f"id should be {MAX_ID} or less")


def check_positive(option: str, value: int | None) -> None:
    """A count or interval option (-I, -C, -E, -W): 1 to MAX_INT. `None` passes."""
    if value is None:
        return
    if value < 1:
        raise Refused(f"{option} should be 1 or more")
    if value > MAX_INT:
        raise Refused(f"{option} should be {MAX_INT} or less")


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


def check_new_host(host: str | None) -> None:
    """Rule (H) for a name entering the registry, plus: a name the resolver accepts. Python
    encodes every name with IDNA before a lookup or a connection, which fails with a
    UnicodeError on an empty label (`a..b`), a label over 63 characters or a prohibited
    character; such a name can never be reached, so it is refused now, not at the next deploy.

    Separate from `check_host` so names already in a log keep the spec's rule."""
    check_host(host)
    if host is None:
        return
    try:
        host.encode("idna")
    except UnicodeError:
        raise Refused("illegal host name") from None


def parse_endpoint(text: str) -> tuple[str, int]:
    """Rule (A) then (H) and (P): `HOST:PORT` with exactly one colon and an integer port."""
    host, sep, port_text = text.partition(":")
    port = parse_int(port_text) if sep and ":" not in port_text else None
    if port is None:
        raise Refused("non-numeric value has been specified for the port number")
    check_new_host(host)
    check_port(port)
    return host, port


def parse_groups(text: str | None) -> tuple[str, ...]:
    """Rule (G): split on ':', drop empty and repeated names, keep order."""
    if not text:
        return ()
    return tuple(dict.fromkeys(g for g in text.split(":") if g))


def check_user(user: str | None) -> None:
    """Not in the original: an empty or spaced login name can only fail later, over SSH."""
    if user is not None and (not user or _BAD_USER.search(user)):
        raise Refused("illegal user name")


def check_cell_name(name: str) -> None:
    if not _CELL.match(name):
        raise Refused("illegal css name")


def check_name_space(space: str | None) -> None:
    if space is not None and (not space or any(c.isspace() for c in space)):
        raise Refused("illegal name space")


def check_fetch_target(text: str) -> None:
    """`fetch`'s `[user@]host[:port]` for a host that is not registered: the user and host obey
    the same rules as a registered host's fields, before any connection (an unencodable name
    would otherwise fail deep in the socket layer). The port is syntax, parsed with the other
    host specs by `app.fetch.target_spec` (a usage error)."""
    user, at, rest = text.rpartition("@")
    host = rest.partition(":")[0]
    if at:
        check_user(user)
    check_new_host(host)
