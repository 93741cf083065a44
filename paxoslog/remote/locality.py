"""Rule (L) of §6.1: which registered hosts are this machine, without any DNS lookup."""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import struct
from functools import cache

from paxoslog.core.model import Host

_SIOCGIFADDR = 0x8915


@cache
def local_addresses() -> frozenset[str]:
    addresses = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR,
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:  # interface without an IPv4 address
                continue
            addresses.add(socket.inet_ntoa(packed[20:24]))
    return frozenset(addresses)


def login_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def is_local(host: Host) -> bool:
    if os.environ.get("PAXOS_ALWAYS_SSH") or host.use_ssh_config:
        return False
    names = {socket.gethostname()} | local_addresses()
    return host.hostname in names and host.user == login_user()
