"""fastread after `git gc`: scan a log as `verify` does (every commit, tree and blob, newest
first) through `fastread.ObjectReader` and through dulwich's `get_raw`, on the log as the
tool writes it (no deltas) and after `git gc --aggressive` (deep delta chains).

    .venv/bin/python scripts/bench/bench_fastread.py [COMMITS]   (default 20000)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import genlog  # noqa: E402
from dulwich.repo import Repo  # noqa: E402

from paxoslog.store import fastread  # noqa: E402
from paxoslog.store.fastread import ObjectReader, commit_links, tree_entries  # noqa: E402


def scan(get, head: bytes) -> int:
    sha, n = head, 0
    while sha:
        _, raw = get(sha)
        tree, sha = commit_links(raw)
        stack = [tree]
        while stack:
            _, traw = get(stack.pop())
            for mode, child in tree_entries(traw).values():
                if mode == 0o40000:
                    stack.append(child)
                else:
                    get(child)
                    n += 1
    return n


def measure(path: str) -> tuple[float, float, float]:
    repo = Repo(path)
    head = repo.refs[b"refs/heads/main"]
    store = repo.object_store
    t = time.perf_counter()
    scan(store.get_raw, head)
    dulwich = time.perf_counter() - t
    reader = ObjectReader(store.path, store)
    t = time.perf_counter()
    scan(reader.get, head)
    fast = time.perf_counter() - t
    reader.close()
    # before issue 12: every delta applied by the Python loop
    saved, fastread._c_apply_delta = fastread._c_apply_delta, None
    try:
        reader = ObjectReader(store.path, store)
        t = time.perf_counter()
        scan(reader.get, head)
        loop = time.perf_counter() - t
        reader.close()
    finally:
        fastread._c_apply_delta = saved
    repo.close()
    return dulwich, fast, loop


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    root = tempfile.mkdtemp(prefix="bench-fastread-")
    try:
        genlog.build(os.path.join(root, "plain"), n)
        shutil.copytree(os.path.join(root, "plain"), os.path.join(root, "gc"))
        git = os.path.join(root, "gc", "var", "paxoslog.git")
        subprocess.run(["git", "--git-dir", git, "gc", "-q", "--aggressive"], check=True)
        for name in ("plain", "gc"):
            d, f, p = measure(os.path.join(root, name, "var", "paxoslog.git"))
            print(f"{n} commits, {name:5}: dulwich get_raw {d:6.2f}s  fastread {f:6.2f}s  "
                  f"(Python delta loop {p:6.2f}s)")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
