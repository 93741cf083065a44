"""§3.8 checks 1-6 in `decide` (pure) and check 7's rule (`replace_mode`)."""

from __future__ import annotations

import pytest

from paxoslog.core.decide import Command, decide
from paxoslog.core.events import apply, fold
from paxoslog.core.model import EMPTY
from paxoslog.core.render import render
from paxoslog.core.replace import NOT_RUNNING_MESSAGE, replace_mode
from paxoslog.core.schema import check_event
from paxoslog.errors import Refused

CELL = ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.3:1"]


def _t():
    t = fold(decide(EMPTY, Command("register css", {"name": "c0", "endpoints": CELL})), EMPTY)
    t = fold(decide(t, Command("register css", {"name": "c1", "endpoints": [
        "10.0.1.1:1", "10.0.1.1:1", "10.0.1.2:1", "10.0.1.2:1", "10.0.1.3:1", "10.0.1.3:1"]})), t)
    return fold(decide(t, Command("register host", {"hostname": "10.0.0.9"})), t)


def _refused(t, **opts) -> str:
    base = {"name": "c0", "no": 0, "address": ["10.0.0.9:1", "10.0.0.9:1"], "force": False}
    with pytest.raises(Refused) as exc:
        decide(t, Command("replace", {**base, **opts}))
    return exc.value.message


def test_replace_event_swaps_member_and_renders_new_line() -> None:
    t = _t()
    (ev,) = decide(t, Command("replace", {"name": "c0", "no": 0, "force": False, "mode": "cold",
                                          "address": ["10.0.0.9:2", "10.0.0.9:3"]}))
    assert ev.type == "css_member_replaced"
    assert ev.data == {"name": "c0", "no": 0, "uaddr": "10.0.0.9", "uport": 2,
                       "taddr": "10.0.0.9", "tport": 3, "mode": "cold",
                       "grouped": ["10.0.0.9"]}
    check_event(ev.type, ev.data)  # what decide produces, the log accepts
    conf = render(apply(t, ev))["etc/cell/c0.conf"].decode().splitlines()
    assert conf[0] == "0 10.0.0.9 2 10.0.0.9 3"
    assert conf[1:] == ["1 10.0.0.2 1 10.0.0.2 1", "2 10.0.0.3 1 10.0.0.3 1"]


def test_replace_checks_in_spec_order() -> None:
    t = _t()
    assert _refused(t, name="nope", no=7, address=["x", "y"]) == "not found: nope"  # 1
    assert _refused(t, no=7, address=["x", "y"]) == \
        "non-numeric value has been specified for the port number"  # 2 (A)
    assert _refused(t, no=7, address=["10.0.0.9:0", "10.0.0.9:1"]) == \
        "port number should be 1 or more"  # 2 (P)
    assert _refused(t, no=7, address=["10.0.0.9:1", "10.0.0.9:70000"]) == \
        "port number should be 65535 or less"
    assert _refused(t, no=3) == "not found: server 3 of c0"  # 3, not a bare number
    assert _refused(t, no=-1) == "not found: server -1 of c0"


def test_replace_refuses_any_duplicate_member_endpoint() -> None:
    t = _t()
    msg = "the same address has been specified more than once"
    assert _refused(t, address=["10.0.0.1:1", "10.0.0.9:1"]) == msg  # NO's own UDP
    assert _refused(t, address=["10.0.0.9:1", "10.0.0.2:1"]) == msg  # another's TCP (Fixed)


def test_replace_refuses_endpoint_of_another_cell_and_unknown_host() -> None:
    t = _t()
    assert _refused(t, address=["10.0.1.2:1", "10.0.0.9:1"]) == \
        "address is already used by css c1"  # 5
    assert _refused(t, address=["10.0.0.9:1", "10.0.0.8:1"]) == "not found: 10.0.0.8"  # 6


@pytest.mark.parametrize("states,no,force,mode", [
    (["running"] * 3, 0, False, "hot"),
    (["stopped", "running", "running"], 0, False, "hot"),  # a dead member, hot
    (["error", "running", "running"], 0, True, "hot"),
    (["stopped"] * 3, 1, False, "cold"),
    (["error", "stopped", "stopped"], 0, True, "cold"),
    (["stopped", "error", "stopped"], 0, True, "cold"),
])
def test_replace_mode_rule_7(states, no, force, mode) -> None:
    assert replace_mode(states, no, force) == mode


@pytest.mark.parametrize("states,no,force", [
    (["error", "running", "running"], 0, False),  # NO in error needs --force
    (["running", "stopped", "running"], 0, False),
    (["running", "stopped", "running"], 0, True),  # one running: neither hot nor cold
    (["error", "stopped", "stopped"], 0, False),
    (["stopped", "error", "error"], 0, False),
])
def test_replace_mode_refusals(states, no, force) -> None:
    with pytest.raises(Refused) as exc:
        replace_mode(states, no, force)
    assert exc.value.message == NOT_RUNNING_MESSAGE
