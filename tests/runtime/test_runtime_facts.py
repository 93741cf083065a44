"""Running-state facts of `unregister css`, `undo` and `revert` (admin.md §3.3, §3.11): the
agents are asked only about cells that may run (they have a secret), so registry-only homes
never connect anywhere, and a member whose state is unknown does not block (with a warning)."""

from __future__ import annotations

import os
import time

from paxoslog.app.cellkeys import KEY_BYTES, write_key
from paxoslog.store.home import Home
from tests.conftest import Paxos

# loopback addresses where nothing listens on port 22 (tests/ADDRESSES.md: registry data)
CELL = ["127.0.0.2:24111", "127.0.0.2:24111", "127.0.0.3:24111", "127.0.0.3:24111",
        "127.0.0.4:24111", "127.0.0.4:24111"]


def registered(px: Paxos) -> Paxos:
    px.env["PAXOS_NODE_CMD"] = "/nonexistent/paxos-node"
    px.ok("register", "css", "--name", "css0", *CELL)
    return px


def test_registry_only_cell_is_never_asked(paxos):
    px = registered(paxos)
    # each of these removes or restores the cell: with a secret, the agents would be asked
    for args in (["unregister", "css", "--name", "css0"], ["undo"], ["revert", "0"], ["undo"]):
        p = px(*args)
        assert (p.returncode, p.stderr) == (0, ""), (args, p.stderr)
    assert px.ok("list", "css") == "css0\n"


def test_cell_with_a_secret_is_asked_and_unknown_state_does_not_block(paxos):
    px = registered(paxos)
    write_key(Home(str(px.home)), "css0", os.urandom(KEY_BYTES))
    t0 = time.monotonic()
    p = px("unregister", "css", "--name", "css0")
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 3, p.stderr
    for i, line in enumerate(lines):
        assert line.startswith(f"WARNING: 127.0.0.{i + 2}: state of css0#{i} unknown (")
        assert line.endswith("); counted as not running")
    assert time.monotonic() - t0 < 30
    # an undo that changes no cell asks nobody
    px.ok("register", "host", "127.0.0.5")
    p = px("undo")
    assert (p.returncode, p.stderr) == (0, "")
