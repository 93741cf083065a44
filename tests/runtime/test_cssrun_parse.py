"""The pure parts of `app.cssrun` and `cli.cssreport`: agent replies are hostile, orders and
reports follow admin.md §4.5 and §6.3."""

from __future__ import annotations

import json

import pytest
import yaml

from paxoslog.app.cssrun import (
    Member,
    _fill_birth,
    member_from,
    start_failure,
    start_order,
    stop_order,
)
from paxoslog.cli.cssreport import render
from paxoslog.core.model import Host, Server
from paxoslog.remote.agentcall import AgentReply, parse_reply


def member(no: int, **kw) -> Member:
    m = Member("css0", Server(no, f"127.0.0.{no + 2}", 24111, f"127.0.0.{no + 2}", 24111),
               Host(f"127.0.0.{no + 2}"))
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def reply(entry, code: int = 0) -> AgentReply:
    doc = {"ok": code == 0, "result": {"cell": "css0", "members": [entry]}}
    return parse_reply("h", code, json.dumps(doc).encode(), b"")


RUNNING = {"No.": 1, "status": "running", "master": True, "birth": 1458000000,
           "next_sequence": 42, "connected": [0, 1, 2], "pid": 4242,
           "client_list": ["192.168.1.10"], "leader": 1}


def test_a_running_entry_is_taken_field_by_field():
    m = member_from(member(1), reply(RUNNING))
    assert (m.status, m.master, m.birth, m.next_sequence, m.pid) == \
        ("running", True, 1458000000, 42, 4242)
    assert m.connected == [0, 2]  # the other members only
    assert m.client_list == ["192.168.1.10"]


@pytest.mark.parametrize("bad", [
    {**RUNNING, "No.": 2},  # another member
    {**RUNNING, "status": "weird"},
    {**RUNNING, "status": None},
    "not a map",
])
def test_an_entry_off_shape_makes_the_member_error(bad):
    m = member_from(member(1), reply(bad))
    assert m.status == "error" and m.reason


@pytest.mark.parametrize("field,value,want", [
    ("pid", "4242", None), ("pid", -1, None), ("pid", True, None),
    ("birth", 1.5, None), ("next_sequence", 1 << 70, None),
    ("connected", [0, "2", 2, 2, -1, 5000], [0, 2]),
    ("client_list", ["ok", 7, "bad\nline", "x" * 1000], ["ok"]),
    ("master", "yes", False),
])
def test_hostile_field_values_are_dropped(field, value, want):
    m = member_from(member(1), reply({**RUNNING, field: value}))
    assert m.status == "running"
    assert getattr(m, field) == want


def test_failures_become_error_with_the_agents_reason():
    m = member_from(member(0), parse_reply("127.0.0.2", 127, b"", b"bash: not found"))
    assert (m.status, m.reason) == ("error", "paxos-node not found on 127.0.0.2")
    assert start_failure(m, None, ["start"]) == \
        "127.0.0.2: start operation to this host was not accepted " \
        "(paxos-node not found on 127.0.0.2)"
    doc = {"ok": False, "error": {"code": "bad_etc", "message": "/x/css0.conf:1: bad line"}}
    m = member_from(member(0), parse_reply("127.0.0.2", 6, json.dumps(doc).encode(), b""))
    assert start_failure(m, None, ["start"]) == \
        "configuration file to 127.0.0.2 has not been deployed (/x/css0.conf:1: bad line)"
    m = member_from(member(0), AgentReply("127.0.0.2", -1, reason="timeout: x",
                                          timed_out=True))
    assert start_failure(m, None, ["start", "css", "css0", "0"]) == \
        "timeout: start css css0 0"


def test_start_order_most_up_to_date_first_and_stop_order_master_last():
    ms = [member(0, status="stopped", next_sequence=None),
          member(1, status="stopped", next_sequence=7),
          member(2, status="stopped", next_sequence=7),
          member(3, status="running"), member(4, status="error"),
          member(5, status="stopped", next_sequence=0)]
    assert [m.no for m in start_order(ms)] == [1, 2, 5, 0]
    ms = [member(0, master=False), member(1, master=True), member(2, master=False)]
    assert [m.no for m in stop_order(ms)] == [0, 2, 1]


def test_birth_is_the_same_on_every_member_that_follows_the_leader():
    ms = [member(0, status="running", leader=1), member(1, status="running", master=True,
                                                          leader=1, started=1700000000),
          member(2, status="stopped")]
    _fill_birth(ms)
    assert [m.birth for m in ms] == [1700000000, 1700000000, None]


def test_reports_in_every_mode():
    cells = [[member(0, status="running", master=True, birth=5, next_sequence=9, pid=10),
              member(1, status="stopped", next_sequence=None),
              member(2, status="error", reason="connection timed out")]]
    normal = render(cells, "normal", False)
    assert yaml.safe_load(normal) == {"name": "css0", "server": [
        {"No.": i, "address": f"127.0.0.{i + 2}", "status": s, "port": 24111}
        for i, s in enumerate(["running", "stopped", "error"])]}
    long = render(cells, "long", False)
    assert '    reason: "connection timed out"\n' in long
    assert "    next_sequence: null\n" in long and "    client_list: []\n" in long
    assert json.loads(render(cells, "long", True)) == list(yaml.safe_load_all(long))
    assert render(cells, "short", False) == "css0: [running, stopped, error]\n"
    assert json.loads(render(cells, "short", True)) == {"css0": ["running", "stopped", "error"]}
    assert render(cells, "quiet", False) == ""
