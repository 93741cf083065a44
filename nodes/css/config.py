"""Cell configuration file (`~/etc/cell/<cell>.conf`) and host paths."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
from collections.abc import Callable

from .errors import ConfigError


def home() -> str:
    return os.path.expanduser("~")


def config_path(cell: str) -> str:
    return os.environ.get("PAXOS_CELL_CONFIG") or os.path.join(home(), "etc", "cell",
                                                                f"{cell}.conf")


def data_dir(cell: str, no: int) -> str:
    return os.path.join(home(), "data", cell, str(no))


def run_dir() -> str:
    return os.path.join(home(), "run")


def member_id(cell_id: str, no: int) -> str:
    """Genesis identity of member `no`: H(cell_id, no)."""
    return hashlib.blake2b(f"{cell_id}/{no}".encode(), digest_size=8).hexdigest()


def _port(text: str, path: str, ln: int) -> int:
    try:
        p = int(text)
    except ValueError:
        raise ConfigError(f"{path}:{ln}: port {text!r} is not a number") from None
    if not 1 <= p <= 65535:
        raise ConfigError(f"{path}:{ln}: port {p} out of range 1..65535")
    return p


def resolve_host(name: str) -> str:
    """The address of a host name (the admin's rule H allows names in a cell file): IPv4
    first, so a name like `localhost` meets members bound to 127.0.0.x. Raises OSError."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM)
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    if not infos:
        raise OSError(f"no address for {name}")
    return str(infos[0][4][0])


def _addr(text: str, path: str, ln: int, resolve: Callable[[str], str]) -> str:
    """An IP address as is; a host name (rule H) resolved once, here: members, replicated
    configuration and clients then all use the same address."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    if len(text) > 253 or not text.isprintable() or any(c in text for c in "@:/"):
        raise ConfigError(f"{path}:{ln}: {text!r} is neither an IP address nor a host name")
    try:
        addr = resolve(text)
        ipaddress.ip_address(addr)
    except (OSError, UnicodeError, ValueError) as e:
        raise ConfigError(f"{path}:{ln}: cannot resolve host {text!r}: "
                          f"{getattr(e, 'strerror', None) or e}") from None
    return addr


def parse_cell_config(text: str, path: str = "<config>",
                      resolve: Callable[[str], str] = resolve_host) -> dict[int, dict]:
    """Return {no: {"udp": [addr, port], "tcp": [addr, port]}} with host names resolved to
    addresses; ConfigError names file:line."""
    members: dict[int, dict] = {}
    seen: set[tuple[str, str, int]] = set()
    for ln, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        f = line.split()
        if len(f) != 5:
            raise ConfigError(f"{path}:{ln}: expected 5 fields '<no> <udp_addr> <udp_port> "
                              f"<tcp_addr> <tcp_port>', got {len(f)}")
        try:
            no = int(f[0])
        except ValueError:
            raise ConfigError(f"{path}:{ln}: member number {f[0]!r} is not a number") from None
        if no in members:
            raise ConfigError(f"{path}:{ln}: duplicate member number {no}")
        udp = [_addr(f[1], path, ln, resolve), _port(f[2], path, ln)]
        tcp = [_addr(f[3], path, ln, resolve), _port(f[4], path, ln)]
        for kind, ep in (("udp", udp), ("tcp", tcp)):
            if (kind, ep[0], ep[1]) in seen:
                raise ConfigError(f"{path}:{ln}: {kind} endpoint {ep[0]}:{ep[1]} used twice")
            seen.add((kind, ep[0], ep[1]))
        members[no] = {"udp": udp, "tcp": tcp}
    if sorted(members) != list(range(len(members))):
        raise ConfigError(f"{path}: member numbers must be 0..N-1 without gaps")
    if len(members) != 3:
        raise ConfigError(f"{path}: a cell has exactly 3 members in v1, found {len(members)}")
    return members


def load_cell_config(cell: str, path: str | None = None) -> dict[int, dict]:
    path = path or config_path(cell)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    return parse_cell_config(text, path)
