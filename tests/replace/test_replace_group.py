"""`replace` puts the new member's host in the cell's group, as `register css` does for its
members (`-g <cell>` selects every member's host); undo restores the groups exactly."""

from __future__ import annotations

import pytest

from paxoslog.core.decide import Command, decide
from paxoslog.core.events import Event, apply, decode, encode, fold
from paxoslog.core.model import EMPTY
from paxoslog.core.schema import check_event
from paxoslog.errors import LogError

CELL = ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.3:1"]


def _t(group: str | None = None):
    t = fold(decide(EMPTY, Command("register css", {"name": "c0", "endpoints": CELL})), EMPTY)
    return fold(decide(t, Command("register host", {"hostname": "10.0.0.9", "group": group})),
                t)


def _replace(t, mode: str = "hot"):
    (ev,) = decide(t, Command("replace", {"name": "c0", "no": 0, "force": False, "mode": mode,
                                          "address": ["10.0.0.9:2", "10.0.0.9:3"]}))
    return ev


def test_new_member_host_joins_the_cell_group() -> None:
    t = _t("web")
    ev = _replace(t)
    assert ev.data["grouped"] == ["10.0.0.9"]
    check_event(ev.type, ev.data)
    after = apply(t, decode(encode(ev)))
    assert after == apply(t, ev)
    assert after.host("10.0.0.9").groups == ("web", "c0")
    # the old host keeps its group: it may still hold the retired member's data
    assert after.host("10.0.0.1").groups == ("c0",)


def test_no_grouped_field_when_the_host_is_in_the_group() -> None:
    ev = _replace(_t("c0"))
    assert "grouped" not in ev.data  # events of older logs stay byte-identical
    assert apply(_t("c0"), ev).host("10.0.0.9").groups == ("c0",)


@pytest.mark.parametrize("grouped, problem", [
    (["10.0.0.8"], "not registered"),
    ("10.0.0.9", "not a list"),
    ([1], "illegal"),
])
def test_a_hostile_grouped_field_is_a_log_error(grouped, problem) -> None:
    t = _t()
    ev = _replace(t)
    bad = Event(ev.type, {**ev.data, "grouped": grouped})
    with pytest.raises(LogError, match=problem):
        apply(t, decode(encode(bad)))


def test_undo_of_a_replace_restores_the_groups(tmp_path) -> None:
    from tests.conftest import Paxos

    home = tmp_path / "h"
    home.mkdir()
    px = Paxos(home)
    px.ok("register", "css", "--name", "c0", *CELL)
    px.ok("register", "host", "-g", "web", "10.0.0.9")
    before = px.ok("show", "host", "10.0.0.9")
    # the registry side of a cold replace, as the driver records it
    from paxoslog.app.session import Session, append
    from paxoslog.store.home import Home

    session = Session(Home(str(home)))
    append(session, Command("replace", {"name": "c0", "no": 0, "force": True, "mode": "cold",
                                        "address": ["10.0.0.9:2", "10.0.0.9:3"]}), "replace")
    assert px.ok("list", "host", "-g", "c0").split() == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"]
    px.ok("undo")
    assert px.ok("show", "host", "10.0.0.9") == before
    assert px.ok("list", "host", "-g", "c0").split() == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    px.ok("verify")
