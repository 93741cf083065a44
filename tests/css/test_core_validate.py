"""The request schema in front of the replica: typed fields pass, anything else is BadRequest,
and whatever passes never makes a replica (or the members applying it) raise."""

from __future__ import annotations

import pytest
from css_fuzz import frames
from css_replsim import RSim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.css.core.types import Client
from nodes.css.core.validate import BadRequest, check_request


def test_reported_frames_are_refused() -> None:
    for msg in ({"v": 1, "t": "open", "tok": []}, {"v": 1, "t": "keepalive", "sid": {},
                                                   "tok": "x"},
                {"v": 1, "t": "write", "sid": 1, "tok": "t", "seq": 0, "name": "a"},
                {"v": 1, "t": "lock", "sid": 1, "tok": "t", "seq": 1, "name": "a",
                 "mode": "X"},
                {"v": 1, "t": "hello", "client": {"name": "n" * 256}},
                {"v": 1, "t": "counter_add", "sid": 1, "tok": "t", "seq": 1, "name": "c",
                 "delta": 1 << 63},
                {"v": 1, "t": "remove_learner", "member_id": "a", "no": 1}):
        with pytest.raises(BadRequest):
            check_request(msg)


def test_unknown_fields_are_not_carried() -> None:
    out = check_request({"v": 1, "t": "write", "id": 3, "sid": 5, "tok": "t", "seq": 2,
                         "name": "a", "data": b"x", "junk": b"y" * 1000})
    assert out == {"v": 1, "t": "write", "id": 3, "sid": 5, "tok": "t", "seq": 2, "name": "a",
                   "data": b"x"}
    assert check_request({"v": 1, "t": "frobnicate", "x": 1}) == {"v": 1, "t": "frobnicate",
                                                                   "id": None}


SIM: dict = {}


def _leader_sim() -> RSim:
    if "sim" not in SIM:
        sim = RSim(seed=11)
        sim.run_until(lambda: sim.leader() is not None, 10, "a leader")
        SIM["sim"] = sim
    return SIM["sim"]


@settings(max_examples=300, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(frames(), min_size=1, max_size=6))
def test_what_passes_never_breaks_a_replica(msgs: list[dict]) -> None:
    sim = _leader_sim()
    conn = type("Conn", (), {"replies": []})()
    for m in msgs:
        try:
            clean = check_request(m)
        except BadRequest:
            continue
        leader = sim.leader() or sim.live()[0]
        sim.feed(leader, Client(conn, clean))
    for _ in range(5):
        sim.step()
    assert all(n.exit is None for n in sim.nodes.values())
