"""`~/log/paxos-node.log`: one line per mutating command, rotated at 10 MiB with 5 kept.

Several agents may write at once (different targets), so each append holds an flock on the
log file and rotation happens under it."""

from __future__ import annotations

import datetime
import fcntl
import os

MAX_BYTES = 10 << 20
KEEP = 5


def _field(value: object) -> str:
    text = "none" if value is None else str(value)
    text = "".join(c if c.isprintable() and c != " " else "_" for c in text)[:200]
    return text or '""'


def line(level: str, message: str, fields: dict[str, object]) -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    kv = " ".join(f"{k}={_field(v)}" for k, v in fields.items())
    msg = "".join(c if c.isprintable() else "?" for c in message)[:500]
    return f"{now} {level} paxos-node {msg} {kv}\n"


def append(log_dir: str, text: str, name: str = "paxos-node.log") -> None:
    path = os.path.join(log_dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size + len(text) > MAX_BYTES and os.path.exists(path):
            for i in range(KEEP - 1, 0, -1):
                if os.path.exists(f"{path}.{i}"):
                    os.replace(f"{path}.{i}", f"{path}.{i + 1}")
            os.replace(path, f"{path}.1")
            new = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                          | os.O_CLOEXEC, 0o600)
            os.close(fd)
            fd = new
        os.write(fd, text.encode("utf-8", "replace"))
    finally:
        os.close(fd)
