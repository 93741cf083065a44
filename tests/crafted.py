"""Crafted event logs for the hostile-log tests: commits made the way an attacker would, with
dulwich directly, bypassing `decide` and every check of the tool.

The snapshot is rendered faithfully from the crafted topology, and laid out exactly as
`verify` computes tree ids (a cell name holding `/` is one tree entry), so that before the
schema checks such a log verified cleanly.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import msgpack
from dulwich.objects import Blob, Commit, Tree

from paxoslog.core.model import Cell, Server, Topology
from paxoslog.core.render import CELL_DIR, CONF_PATH, render
from paxoslog.store.gitlog import BRANCH, EVENT_PATH, REV_HEADER, EventLog

AUTHOR = b"Mallory <mallory@example.invalid>"


def event_blob(kind: str, data: dict[str, Any]) -> bytes:
    return msgpack.packb({"v": 1, "type": kind, "data": data}, use_bin_type=True)


def craft(log: EventLog, event: bytes, topology: Topology | None = None,
          conf: bytes | None = None, message: str = "crafted") -> str:
    """Append (compare-and-swap on HEAD) a commit holding `event` and the rendering of
    `topology` (HEAD's topology when None), `conf` replacing the rendered conf when given."""
    head = log.head()
    files = render(log.topology(head) if topology is None else topology)
    if conf is not None:
        files[CONF_PATH] = conf
    objects: list = []

    def blob(data: bytes) -> bytes:
        b = Blob.from_string(data)
        objects.append(b)
        return b.id

    etc, cells = Tree(), Tree()
    for path, data in files.items():
        if path == CONF_PATH:
            etc.add(b"paxos_memcache.conf", 0o100644, blob(data))
        else:
            cells.add(path[len(CELL_DIR) + 1:].encode(), 0o100644, blob(data))
    if len(cells):
        objects.append(cells)
        etc.add(b"cell", 0o040000, cells.id)
    objects.append(etc)
    root = Tree()
    root.add(b"etc", 0o040000, etc.id)
    root.add(EVENT_PATH.encode(), 0o100644, blob(event))
    objects.append(root)
    commit = Commit()
    commit.tree = root.id
    commit.parents = [head] if head else []
    commit.author = commit.committer = AUTHOR
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode() + b"\n"
    commit._extra = [(REV_HEADER, str(len(log.history(head)) + 1).encode())]
    objects.append(commit)
    for obj in objects:
        log.repo.object_store.add_object(obj)
    assert log.repo.refs.set_if_equals(BRANCH, head, commit.id)
    return commit.id.decode()


def traversal(log: EventLog, name: str = "../../../x") -> str:
    """A well-formed commit registering the cell `name`: rendered, its cell file is
    `etc/cell/<name>.conf`, which `../../../x` puts beside $PAXOS_HOME (or ~ on a host)."""
    top = log.topology(log.head())
    evil = Cell(name, tuple(Server(i, f"10.9.9.{i}", 1, f"10.9.9.{i}", 2) for i in range(3)))
    after = dataclasses.replace(top, cells=top.cells + (evil,))
    data = {"name": name, "servers": [dataclasses.asdict(s) for s in evil.servers], "hosts": []}
    return craft(log, event_blob("css_registered", data), after,
                 message=f"register css -n {name} ...")
