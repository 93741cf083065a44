"""Known trap of issue #9: `leader_request` must follow the ENOT_LEADER hint, so a promote
sent to the survivors alone still reaches a leader that is the member being replaced."""

from __future__ import annotations

import asyncio

import pytest

from nodes.css.errors import RequestError
from nodes.css.probe import leader_request
from tests.css.css_cell import Cell


@pytest.fixture
def cell(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PAXOS_CELL_CONFIG", raising=False)
    c = Cell(str(tmp_path))
    try:
        yield c
    finally:
        c.close()


def test_leader_request_follows_the_hint_to_a_leader_it_was_not_given(cell) -> None:
    cell.start_all(init=True)
    leader = asyncio.run(cell.wait_leader(timeout=20))
    follower = (leader + 1) % 3

    async def ask() -> None:
        # an admin request only the leader answers; only the follower's address is given
        await leader_request([cell.tcp(follower)], {"t": "remove_learner",
                                                    "member_id": "feedfacefeedface"}, 5.0)

    with pytest.raises(RequestError) as exc:
        asyncio.run(ask())
    assert exc.value.code == "ENOT_LEARNER"  # the leader's answer, not a timeout


@pytest.mark.parametrize("hint", [None, "x", {"tcp": "h"}, {"tcp": ["h", "p"]},
                                  {"tcp": ["h", 0]}, {"tcp": [1, 2]}, {"tcp": ["h", 1, 2]}])
def test_a_hostile_hint_is_ignored(hint) -> None:
    from nodes.css.probe import _hint

    assert _hint(RequestError("ENOT_LEADER", info={"leader": hint})) is None


def test_agent_finds_a_leader_its_files_do_not_list(cell) -> None:
    """The old host's files predate the replace until the final deploy: its retire must find
    the leader through the peers the members report (the new member may lead by then)."""
    from nodes.agent.replace import _leader_status

    cell.start_all(init=True)
    leader = asyncio.run(cell.wait_leader(timeout=20))
    follower = (leader + 1) % 3
    st = _leader_status([cell.tcp(follower)])
    assert st["role"] == "leader" and st["members"][0]["tcp"]
    assert tuple(st["members"][[m["no"] for m in st["members"]].index(leader)]["tcp"]) == \
        cell.tcp(leader)
