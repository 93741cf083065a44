"""Command line and options of `paxos-memcache` (spec 3.1), and `~/etc/paxos_memcache.conf`.

Every flag has a default; a bad value is a `ProxyConfigError` (one line, exit 2) raised before
anything is touched. `--conf` takes options and pairs of this id from the admin's rendered
`paxos_memcache.conf`; flags given on the command line win over it.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field

from .errors import ProxyConfigError

DEFAULT_PORT = 11211
CONF_MAX = 4 << 20
_HOST = re.compile(r"^[A-Za-z0-9._:-]{1,253}$")

NAME_SPACE_MAX = 128  # bytes: percent-encoded (x3) it stays well inside a 512-byte CSS name


@dataclass(frozen=True)
class Pair:
    client: tuple[str, int]
    server: tuple[str, int]

    def key(self) -> str:
        return f"{self.client[0]}:{self.client[1]}"

    def plain(self) -> dict:
        return {"client": f"{self.client[0]}:{self.client[1]}",
                "server": f"{self.server[0]}:{self.server[1]}"}


@dataclass
class Options:
    id: int
    cell: str
    name_space: str
    max_cache_item: int = 2000
    checksum: bool = True
    checksum_interval: int = 5000  # ms
    expire_interval: int = 300  # s
    workers: int = 5
    pairs: list[Pair] = field(default_factory=list)
    write_back: bool = False
    session_timeout: float = 10.0
    css_wait: float = 5.0
    backend_timeout: float = 3.0
    drain_timeout: float = 5.0
    log: str = "file"
    cell_config: str | None = None
    foreground: bool = False

    def plain(self) -> dict:
        return {"max_cache_item": self.max_cache_item, "checksum": self.checksum,
                "checksum_interval": self.checksum_interval,
                "expire_interval": self.expire_interval, "worker": self.workers,
                "write_back": self.write_back, "session_timeout": self.session_timeout,
                "css_wait": self.css_wait, "backend_timeout": self.backend_timeout}


def endpoint(text: str, default_port: int | None = DEFAULT_PORT) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if not port:
        if default_port is None:
            raise ProxyConfigError(f"{text!r}: a port is required")
        port = str(default_port)
    if not _HOST.match(host):
        raise ProxyConfigError(f"{text!r}: bad host")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ProxyConfigError(f"{text!r}: port must be 1..65535")
    return host, int(port)


def parse_pair(text: str) -> Pair:
    c, sep, s = text.partition("=")
    if not sep or not c or not s:
        raise ProxyConfigError(f"--pair {text!r}: expected CHOST:CPORT=SHOST[:SPORT]")
    return Pair(endpoint(c, None), endpoint(s))


def _onoff(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"{text!r} is not on/off")
    return text == "on"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paxos-memcache", description="PAXOS memcache proxy")
    p.add_argument("id", type=int)
    p.add_argument("cell")
    p.add_argument("name_space")
    p.add_argument("-I", "--max-cache-item", type=int)
    p.add_argument("-s", "--checksum", type=_onoff)
    p.add_argument("-C", "--checksum-interval", type=int, help="milliseconds")
    p.add_argument("-E", "--expire-interval", type=int, help="seconds")
    p.add_argument("-W", "--workers", type=int)
    p.add_argument("--pair", action="append", default=[], help="CHOST:CPORT=SHOST[:SPORT]")
    p.add_argument("--write-back", action="store_true")
    p.add_argument("--session-timeout", type=float)
    p.add_argument("--css-wait", type=float)
    p.add_argument("--backend-timeout", type=float)
    p.add_argument("--drain-timeout", type=float)
    p.add_argument("--log", choices=["file", "syslog", "stderr"], default="file")
    p.add_argument("--config", help="cell file (default ~/etc/cell/<cell>.conf)")
    p.add_argument("--conf", nargs="?", const="", default=None,
                   help="take options and pairs from paxos_memcache.conf (default ~/etc/...)")
    p.add_argument("--foreground", action="store_true")
    return p


def _from_conf(path: str, mid: int) -> dict:
    # the one place that knows where the admin's renderer lives
    from paxoslog.core.render import parse_conf
    from paxoslog.errors import LogError

    try:
        with open(path, "rb") as f:
            text = f.read(CONF_MAX + 1)
    except OSError as e:
        raise ProxyConfigError(f"{path}: cannot read: {e.strerror}") from None
    if len(text) > CONF_MAX:
        raise ProxyConfigError(f"{path}: larger than {CONF_MAX} bytes")
    try:
        topo = parse_conf(text)
    except LogError as e:
        raise ProxyConfigError(f"{path}: {e}") from None
    m = topo.memcache(mid)
    if m is None:
        raise ProxyConfigError(f"{path}: no memcache with id {mid}")
    out: dict = {"pairs": [Pair(p.client(), p.server()) for p in m.pairs]}
    for key, attr in (("max_cache_item", "max_cache_item"), ("checksum", "checksum"),
                      ("checksum_interval", "checksum_interval"),
                      ("expire_interval", "expire_interval"), ("workers", "worker")):
        if getattr(m, attr) is not None:
            out[key] = getattr(m, attr)
    return out


def parse(argv: list[str] | None = None) -> Options:
    """Options from the command line; ProxyConfigError on any bad value."""
    p = build_parser()
    try:
        a = p.parse_args(argv)
    except SystemExit as e:  # argparse already printed its one-line usage error
        raise ProxyConfigError("") from e
    o = Options(a.id, a.cell, a.name_space, log=a.log, cell_config=a.config,
                foreground=a.foreground, write_back=a.write_back)
    if a.conf is not None:
        path = a.conf or os.path.join(os.path.expanduser("~"), "etc", "paxos_memcache.conf")
        for k, v in _from_conf(path, a.id).items():
            setattr(o, k, v)
    for k in ("max_cache_item", "checksum", "checksum_interval", "expire_interval", "workers",
              "session_timeout", "css_wait", "backend_timeout", "drain_timeout"):
        v = getattr(a, k)
        if v is not None:
            setattr(o, k, v)
    if a.pair:
        o.pairs = [parse_pair(t) for t in a.pair]
    check(o)
    return o


def check(o: Options) -> None:
    if o.id < 0:
        raise ProxyConfigError("id must be >= 0")
    if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", o.cell):
        raise ProxyConfigError(f"bad cell name {o.cell!r}")
    ns = o.name_space
    # the admin's rule (N): non-empty, no whitespace; the CSS names escape the rest
    if not ns or len(ns.encode("utf-8", "surrogatepass")) > NAME_SPACE_MAX or not \
            ns.isprintable() or any(c.isspace() for c in ns):
        raise ProxyConfigError(f"bad name space {ns!r}: 1..{NAME_SPACE_MAX} bytes, printable,"
                               " no whitespace")
    if not 1 <= o.max_cache_item <= 10_000_000:
        raise ProxyConfigError("--max-cache-item must be 1..10000000")
    if not 1 <= o.workers <= 256:
        raise ProxyConfigError("--workers must be 1..256")
    if not 0 < o.checksum_interval <= 86_400_000:
        raise ProxyConfigError("--checksum-interval must be 1..86400000 ms")
    if not 0 < o.expire_interval <= 86_400 * 365:
        raise ProxyConfigError("--expire-interval must be 1..31536000 s")
    if not 3 <= o.session_timeout <= 300:
        raise ProxyConfigError("--session-timeout must be 3..300 s (CSS clamps it)")
    for name in ("css_wait", "backend_timeout", "drain_timeout"):
        if not 0 < getattr(o, name) <= 600:
            raise ProxyConfigError(f"--{name.replace('_', '-')} must be in (0, 600] s")
    if o.backend_timeout * 2 >= o.session_timeout:
        raise ProxyConfigError("--backend-timeout must be below half the session timeout")
    seen = set()
    for pr in o.pairs:
        if pr.key() in seen:
            raise ProxyConfigError(f"pair listener {pr.key()} given twice")
        seen.add(pr.key())
