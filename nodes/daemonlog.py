"""Logging of the node daemons (nodes.md §4.1), one set-up for `paxos-css` and `paxos-memcache`.

`~/log/<name>.log` rotated at 10 MiB with 5 files kept, or syslog under `tag`, or stderr; the
line is ISO time, level, component, message. Repeated lines are rate-limited so a flood of one
event cannot flood the disk.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from nodes.css.shell.guard import RepeatFilter


def setup_logging(kind: str, name: str, tag: str) -> None:
    """`kind`: `stderr`, `syslog` or a file (anything else); `name`: the log file's stem, e.g.
    `paxos-css-cell0-1`; `tag`: the syslog tag, e.g. `paxos-css-cell0#1`."""
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    if kind == "stderr":
        h: logging.Handler = logging.StreamHandler(sys.stderr)
    elif kind == "syslog":
        h = logging.handlers.SysLogHandler(address="/dev/log")
        fmt = f"{tag}: %(levelname)s %(name)s %(message)s"
    else:
        d = os.path.join(os.path.expanduser("~"), "log")
        os.makedirs(d, exist_ok=True)
        h = logging.handlers.RotatingFileHandler(os.path.join(d, f"{name}.log"),
                                                 maxBytes=10 << 20, backupCount=5)
    h.setFormatter(logging.Formatter(fmt))
    h.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.addHandler(h)
    root.setLevel(logging.INFO)
