"""A cell's member hosts are all in the cell's group, also those registered before the cell."""

from __future__ import annotations

import pytest

from paxoslog.core.decide import NO_FACTS, Command, decide
from paxoslog.core.events import Event, apply, decode, encode, fold
from paxoslog.core.model import EMPTY
from paxoslog.errors import LogError

CELL = ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.3:1"]


def run(t, command, **opts):
    return fold(decide(t, Command(command, opts), NO_FACTS), t)


def test_hosts_registered_before_the_cell_join_its_group() -> None:
    t = run(EMPTY, "register host", hostname="10.0.0.2", user="me", port=None,
            group="web", use_ssh_config=False)
    t = run(t, "register css", name="c0", endpoints=CELL)
    assert {h.hostname: h.groups for h in t.hosts} == {
        "10.0.0.2": ("web", "c0"), "10.0.0.1": ("c0",), "10.0.0.3": ("c0",)}
    # the pre-existing host keeps its own settings and its place
    assert t.hosts[0].hostname == "10.0.0.2" and t.hosts[0].user == "me"


def test_the_event_names_the_hosts_it_groups_and_survives_encoding() -> None:
    t = run(EMPTY, "register host", hostname="10.0.0.2", user=None, port=None,
            group="c0", use_ssh_config=False)
    t = run(t, "register host", hostname="10.0.0.3", user=None, port=None, group=None,
            use_ssh_config=False)
    (event,) = decide(t, Command("register css", {"name": "c0", "endpoints": CELL}), NO_FACTS)
    # 10.0.0.2 is in the group already: nothing to record for it
    assert event.data["grouped"] == ["10.0.0.3"]
    assert apply(t, decode(encode(event))) == apply(t, event)


def test_no_grouped_field_when_every_member_is_new() -> None:
    (event,) = decide(EMPTY, Command("register css", {"name": "c0", "endpoints": CELL}),
                      NO_FACTS)
    assert "grouped" not in event.data  # events of logs written before stay byte-identical


@pytest.mark.parametrize("grouped, problem", [
    (["10.0.0.9"], "not registered"),
    ("10.0.0.2", "not a list"),
    ([1], "illegal"),
])
def test_a_hostile_grouped_field_is_a_log_error(grouped, problem) -> None:
    t = run(EMPTY, "register host", hostname="10.0.0.2", user=None, port=None, group=None,
            use_ssh_config=False)
    (event,) = decide(t, Command("register css", {"name": "c0", "endpoints": CELL}), NO_FACTS)
    bad = Event(event.type, {**event.data, "grouped": grouped})
    with pytest.raises(LogError, match=problem):
        apply(t, decode(encode(bad)))


def test_undo_of_the_cell_restores_the_groups(tmp_path) -> None:
    from tests.conftest import Paxos

    home = tmp_path / "h"
    home.mkdir()
    px = Paxos(home)
    px.ok("register", "host", "-g", "web", "10.0.0.2")
    px.ok("register", "css", "--name", "c0", *CELL)
    assert px.ok("list", "host", "-g", "c0").split() == ["10.0.0.2", "10.0.0.1", "10.0.0.3"]
    px.ok("undo")
    assert px.ok("list", "host").split() == ["10.0.0.2"]
    assert "c0" not in px.ok("show", "host", "10.0.0.2")
    px.ok("verify")
