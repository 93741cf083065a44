"""The pure core: decide's rules and the facts it is given (no I/O here)."""

from __future__ import annotations

import pytest

from paxoslog.core.decide import NO_FACTS, Command, Facts, decide
from paxoslog.core.events import apply, fold
from paxoslog.core.model import EMPTY
from paxoslog.errors import Refused

CELL = ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.3:1"]


def run(t, command, facts=NO_FACTS, **opts):
    return fold(decide(t, Command(command, opts), facts), t)


def refused(t, command, facts=NO_FACTS, **opts) -> str:
    with pytest.raises(Refused) as exc:
        decide(t, Command(command, opts), facts)
    return exc.value.message


@pytest.fixture
def cell():
    return run(EMPTY, "register css", name="c0", endpoints=CELL)


def test_register_css_auto_registers_tcp_hosts_once(cell) -> None:
    assert [h.hostname for h in cell.hosts] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert all(h.groups == ("c0",) and h.user == "paxos" for h in cell.hosts)


def test_unregister_css_refused_while_any_member_runs(cell) -> None:
    mixed = Facts(cell_status={"c0": ("running", "stopped")})
    assert refused(cell, "unregister css", mixed, name="c0") == "this css is running."
    errors = Facts(cell_status={"c0": ("error", "stopped", "stopped")})
    assert run(cell, "unregister css", errors, name="c0").cells == ()


def test_unregister_memcache_refused_while_running_locally(cell) -> None:
    t = run(cell, "register memcache", css="c0")
    facts = Facts(local_memcache_running=frozenset({0}))
    assert refused(t, "unregister memcache", facts, id=0) == "this memcache is running."


def test_pair_equality_uses_resolved_names(cell) -> None:
    t = run(cell, "register memcache", css="c0")
    t = run(t, "register pair", id=0, server_address="10.0.0.9", client_address="localhost")
    facts = Facts(resolved={"localhost": "127.0.0.1"})
    assert refused(t, "register pair", facts, id=0, server_address="10.0.0.8",
                   client_address="127.0.0.1") == "address is duplicated"
    # unregistering names the stored pair exactly, so replay needs no resolution
    (event,) = decide(t, Command("unregister pair", {"id": 0, "server_address": "10.0.0.9",
                                                     "client_address": "127.0.0.1"}), facts)
    assert event.data["chost"] == "localhost"
    assert apply(t, event).memcache(0).pairs == ()


def test_restore_refuses_to_drop_a_running_cell(cell) -> None:
    facts = Facts(cell_status={"c0": ("running",)})
    cmd = {"reason": "undo", "target_rev": 1, "target_commit": "x", "topology": EMPTY}
    assert refused(cell, "restore", facts, **cmd) == "this css is running."


def test_restore_keeps_the_id_counter(cell) -> None:
    t = run(cell, "register memcache", css="c0", id=7)
    back = run(t, "restore", reason="undo", target_rev=2, target_commit="x", topology=cell)
    assert back.memcaches == () and back.next_memcache_id == 8


def test_noop_modify_produces_no_event(cell) -> None:
    assert decide(cell, Command("modify host", {"hostname": "10.0.0.1", "user": "paxos"})) == []


def test_modify_host_ssh_flags() -> None:
    t = run(EMPTY, "register host", hostname="h", use_ssh_config=True)
    assert t.host("h").user is None
    assert run(t, "modify host", hostname="h", port=22).host("h").use_ssh_config
    t = run(t, "modify host", hostname="h", not_use_ssh_config=True)
    assert (t.host("h").user, t.host("h").use_ssh_config) == ("paxos", False)


def test_checks_run_in_the_spec_order(cell) -> None:
    # duplicate name is reported before the bad name and the bad endpoints
    assert refused(cell, "register css", name="c0", endpoints=["x"] * 6) == "css already exists"
    bad = ["10.0.0.1:x"] + CELL[1:]
    assert refused(cell, "register css", name="c-1", endpoints=bad) == "illegal css name"
    assert refused(cell, "register css", name="c1", endpoints=CELL) == \
        "address is already used by css c0"
    # the id check comes before the name-space check, which comes before the ranges
    t = run(cell, "register memcache", css="c0")
    assert refused(t, "register memcache", css="c0", id=0, name_space=" ", worker=0) == \
        "memcache id is duplicated"
    assert refused(t, "register memcache", css="c0", name_space="a b", worker=0) == \
        "illegal name space"
    assert refused(t, "register memcache", css="c0", worker=0, expire_interval=0) == \
        "--expire-interval should be 1 or more"
