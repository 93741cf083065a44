"""Resource limits of the client port, and a rate limit on repeated log lines.

A member must keep serving (and keep answering `status`) while hostile or broken clients hold
connections open, send frames slowly or send half of a large frame: connections are capped in
total and per client address, a started frame must complete within `frame_timeout`, the bytes
held for large frames in progress are capped, and each connection's unsent replies are capped
(a client that never reads is cut off).
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass

RESERVED_FDS = 128  # WAL, snapshots, control socket, peer links, logs
BIG_FRAME = 64 << 10  # frames above this count against max_pending_bytes
# asyncio's default (100) overflows in a reconnect burst while the loop is busy for a moment;
# Linux then drops the handshake's last ACK and the client waits 1 s or more for a retry.
# memcached's default (-b) is the same 1024.
LISTEN_BACKLOG = 1024


@dataclass
class Limits:
    max_conns: int = 2048
    max_conns_per_addr: int = 512
    frame_timeout: float = 10.0
    max_pending_bytes: int = 64 << 20
    max_write_buffer: int = 16 << 20

    def check(self) -> None:
        if self.max_conns < 1 or self.max_conns_per_addr < 1:
            raise ValueError("limits: --max-conns and --max-conns-per-addr must be positive")
        if self.frame_timeout <= 0:
            raise ValueError("limits: --frame-timeout must be positive")
        if self.max_pending_bytes < (1 << 20):
            raise ValueError("limits: --max-pending-bytes must be at least one frame (1 MiB)")


def fd_budget(want: int) -> int:
    """Raise the soft descriptor limit to the hard one; cap `want` so that accepting never
    meets EMFILE (which made asyncio log an error for every retried accept)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and hard != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return max(1, min(want, soft - RESERVED_FDS))


class Guard:
    """Book-keeping of client connections and of bytes held for frames in progress."""

    def __init__(self, limits: Limits) -> None:
        self.lim = limits
        self.max_conns = fd_budget(limits.max_conns)
        self.conns = 0
        self.by_addr: dict[str, int] = {}
        self.pending_bytes = 0
        self.refused = {"conns": 0, "per_addr": 0, "frame_timeout": 0, "pending_bytes": 0,
                        "write_buffer": 0}

    def admit(self, host: str) -> str | None:
        """Count a new connection from `host`; the reason when it must be refused."""
        if self.conns >= self.max_conns:
            self.refused["conns"] += 1
            return f"too many connections ({self.max_conns})"
        if self.by_addr.get(host, 0) >= self.lim.max_conns_per_addr:
            self.refused["per_addr"] += 1
            return f"too many connections from {host} ({self.lim.max_conns_per_addr})"
        self.conns += 1
        self.by_addr[host] = self.by_addr.get(host, 0) + 1
        return None

    def release(self, host: str) -> None:
        self.conns -= 1
        n = self.by_addr.get(host, 0) - 1
        if n > 0:
            self.by_addr[host] = n
        else:
            self.by_addr.pop(host, None)

    def reserve(self, n: int) -> bool:
        if n <= BIG_FRAME:
            return True
        if self.pending_bytes + n > self.lim.max_pending_bytes:
            self.refused["pending_bytes"] += 1
            return False
        self.pending_bytes += n
        return True

    def unreserve(self, n: int) -> None:
        if n > BIG_FRAME:
            self.pending_bytes -= n

    def status(self) -> dict:
        return {"client_conns": self.conns, "refused": dict(self.refused),
                "limits": {"max_conns": self.max_conns,
                           "max_conns_per_addr": self.lim.max_conns_per_addr,
                           "frame_timeout": self.lim.frame_timeout,
                           "max_pending_bytes": self.lim.max_pending_bytes}}


class RepeatFilter(logging.Filter):
    """Let at most `burst` records of one message template through per `window` seconds;
    the first record after a window reports how many were suppressed."""

    def __init__(self, burst: int = 10, window: float = 10.0) -> None:
        super().__init__()
        self.burst, self.window = burst, window
        self.seen: dict[tuple[str, str], list] = {}  # key -> [window start, count]

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (record.name, str(record.msg))
        ent = self.seen.get(key)
        if ent is None or now - ent[0] >= self.window:
            dropped = 0 if ent is None else max(0, ent[1] - self.burst)
            if len(self.seen) > 1000:
                self.seen.clear()
            self.seen[key] = [now, 1]
            if dropped:
                record.msg = f"{record.msg} [{dropped} similar lines suppressed]"
            return True
        ent[1] += 1
        return ent[1] <= self.burst
