"""Builds a large event log fast, for benchmarks: the real decide/apply/render produce every
commit, but objects go into packs (100,000 commits as loose objects would be 700,000 files)."""

from __future__ import annotations

import sys
import time

from dulwich.objects import Commit

from paxoslog.core.decide import Command, decide
from paxoslog.core.events import apply, encode
from paxoslog.core.model import EMPTY
from paxoslog.core.render import render
from paxoslog.store.gitlog import BRANCH, EVENT_PATH, REV_HEADER, EventLog, _build_tree
from paxoslog.store.home import Home, write_cache, write_etc

CELL = ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.3:1"]


def commands(n: int):
    yield Command("register css", {"name": "css0", "endpoints": CELL})
    yield Command("register memcache", {"css": "css0"})
    for i in range(n - 2):
        k = i % 30
        # a bounded topology: fifteen hosts come, then go again
        if k < 15:
            yield Command("register host", {"hostname": f"h{i // 30}-{k}", "group": "g"})
        else:
            yield Command("unregister host", {"hostname": f"h{i // 30}-{k - 15}"})


def build(root: str, n: int, chunk: int = 20000) -> None:
    home = Home(root)
    log = EventLog(home.repo)
    log.create()
    store = log.repo.object_store
    topology, parent, pending = EMPTY, None, []
    now = int(time.time())
    for rev, command in enumerate(commands(n), 1):
        (event,) = decide(topology, command)
        topology = apply(topology, event)
        objects: list = []
        tree = _build_tree({EVENT_PATH: encode(event), **render(topology)}, objects)
        commit = Commit()
        commit.tree, commit.parents = tree.id, [parent] if parent else []
        commit.author = commit.committer = b"bench <bench@localhost>"
        commit.author_time = commit.commit_time = now
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"bench\n"
        commit._extra = [(REV_HEADER, str(rev).encode())]
        objects.append(commit)
        pending.extend(objects)
        parent = commit.id
        if len(pending) >= chunk * 7 or rev == n:
            unique = {o.id: o for o in pending}
            store.add_objects([(o, None) for o in unique.values()])
            pending = []
    log.repo.refs[BRANCH] = parent
    write_cache(home, parent, n, topology)
    write_etc(home, render(topology))


if __name__ == "__main__":
    build(sys.argv[1], int(sys.argv[2]))
