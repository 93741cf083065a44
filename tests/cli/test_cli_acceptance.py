"""Acceptance examples of admin.md §7 (A1-A4, A10, A11, A14, A15) through the console script."""

from __future__ import annotations

import json

import yaml

from tests.conftest import SEED_CELL, etc_snapshot, git_head

A2_SHOW_HOST = """\
---
hostname: "192.168.1.10"
user: "paxos"
---
hostname: "192.168.1.11"
user: "paxos"
"""

SHOW_CSS0 = """\
---
name: css0
server:
  -
    No.: 0
    address_udp: 192.168.1.100
    port_udp: 24111
    address_tcp: 192.168.1.100
    port_tcp: 24111
  -
    No.: 1
    address_udp: 192.168.1.101
    port_udp: 24111
    address_tcp: 192.168.1.101
    port_tcp: 24111
  -
    No.: 2
    address_udp: 192.168.1.102
    port_udp: 24111
    address_tcp: 192.168.1.102
    port_tcp: 24111
"""

CSS0_CONF = """\
0 192.168.1.100 24111 192.168.1.100 24111
1 192.168.1.101 24111 192.168.1.101 24111
2 192.168.1.102 24111 192.168.1.102 24111
"""

A4_SHOW_MEMCACHE = """\
---
id: 0
css: css0
name space: space0
pair:
    - ["127.0.0.1", 11211, "192.168.1.200", 11211]
"""

PAIR_CMD = "register pair --id 0 --server-address 192.168.1.200"


def test_a1_json_show_host(paxos):
    paxos.ok("register", "host", "--user", "paxos", "192.168.1.10")
    paxos.ok("register", "host", "192.168.1.11")
    out = paxos.ok("--json", "show", "host", "192.168.1.10")
    assert out.endswith("\n")
    assert json.loads(out) == [{"hostname": "192.168.1.10", "user": "paxos"}]


def test_a2_hosts(paxos):
    assert paxos("register", "host", "--user", "paxos", "192.168.1.10", check=True).stdout == ""
    assert paxos("register", "host", "192.168.1.11", check=True).stdout == ""
    assert paxos.ok("show", "host") == A2_SHOW_HOST
    assert paxos.log_count() == 2


def test_a3_cell_and_auto_registered_hosts(paxos):
    paxos.ok("register", "host", "--user", "paxos", "192.168.1.10")
    paxos.ok("register", "host", "192.168.1.11")
    proc = paxos("register", "css", "--name", "css0", *SEED_CELL, check=True)
    assert proc.stdout == ""
    assert paxos.ok("show", "css") == SHOW_CSS0
    assert (paxos.home / "etc" / "cell" / "css0.conf").read_text() == CSS0_CONF
    assert paxos.ok("show", "host", "-g", "css0") == "".join(
        f'---\nhostname: "192.168.1.{n}"\nuser: "paxos"\ngroup: [css0]\n' for n in (100, 101, 102))
    # the auto-registered hosts follow the two registered first, in server order
    assert paxos.ok("list", "host").splitlines() == [
        "192.168.1.10", "192.168.1.11", "192.168.1.100", "192.168.1.101", "192.168.1.102"]
    assert paxos.log_count() == 3


def test_a4_memcache_and_pair(paxos):
    paxos.ok("register", "host", "--user", "paxos", "192.168.1.10")
    paxos.ok("register", "host", "192.168.1.11")
    paxos.ok("register", "css", "--name", "css0", *SEED_CELL)
    assert paxos("register", "memcache", "--css", "css0", check=True).stdout == ""
    assert paxos.ok("show", "memcache") == "---\nid: 0\ncss: css0\nname space: space0\npair:\n"
    assert paxos("register", "pair", "--id", "0", "--server-address", "192.168.1.200",
                 check=True).stdout == ""
    assert paxos.ok("show", "memcache") == A4_SHOW_MEMCACHE
    docs = list(yaml.safe_load_all(paxos.ok("log", "-n", "1")))
    assert len(docs) == 1
    assert docs[0]["rev"] == 5
    assert docs[0]["command"] == PAIR_CMD
    assert paxos.log_count() == 5


def test_seeded_fixture_is_rev_5(seeded):
    docs = list(yaml.safe_load_all(seeded.ok("log")))
    assert [d["rev"] for d in docs] == [5, 4, 3, 2, 1]
    assert [d["command"] for d in docs] == [
        PAIR_CMD,
        "register memcache --css css0",
        "register css --name css0 " + " ".join(SEED_CELL),
        "register host 192.168.1.11",
        "register host --user paxos 192.168.1.10",
    ]


def test_a10_duplicate_host(seeded_copy, refused):
    refused(seeded_copy, "register", "host", "192.168.1.10", message="host already exists")
    assert seeded_copy.log_count() == 5


def test_a10_duplicate_host_from_empty(paxos, refused):
    paxos.ok("register", "host", "192.168.1.10")
    refused(paxos, "register", "host", "192.168.1.10", message="host already exists")
    refused(paxos, "register", "host", "-u", "other", "-p", "22", "192.168.1.10",
            message="host already exists")
    assert paxos.log_count() == 1


def _cell(first: str) -> list[str]:
    return [first, "192.168.1.100:24112", "192.168.1.101:24112", "192.168.1.101:24112",
            "192.168.1.102:24112", "192.168.1.102:24112"]


def test_a11_bad_cell_arguments(seeded_copy, refused):
    px = seeded_copy
    refused(px, "register", "css", "-n", "css1", *_cell("192.168.1.100:2411x"),
            message="non-numeric value has been specified for the port number")
    refused(px, "register", "css", "-n", "css1", *_cell("192.168.1.100:70000"),
            message="port number should be 65535 or less")
    refused(px, "register", "css", "-n", "css1", *_cell("192.168.1.100:24112")[:5], code=2)
    refused(px, "register", "css", "-n", "css-1", *_cell("192.168.1.100:24112"),
            message="illegal css name")
    assert px.log_count() == 5
    assert px.ok("list", "css") == "css0\n"


def test_a11_from_empty_home_creates_nothing(paxos, refused):
    refused(paxos, "register", "css", "-n", "css1", *_cell("192.168.1.100:2411x"),
            message="non-numeric value has been specified for the port number")
    assert git_head(paxos.home) is None
    assert etc_snapshot(paxos.home) == {}
    assert paxos.log_count() == 0


def test_a14_modify_keeps_name_space(seeded_copy):
    px = seeded_copy
    px.ok("register", "memcache", "-c", "css0", "-N", "spaceB")
    px.ok("modify", "memcache", "-i", "1", "-W", "4")
    out = px.ok("show", "memcache", "-i", "1")
    assert out == "---\nid: 1\ncss: css0\nworker: 4\nname space: spaceB\npair:\n"
    assert px.log_count() == 7


def test_a15_undo_and_verify(seeded_copy):
    px = seeded_copy
    out = px.ok("undo")
    assert out == f'---\nrev: 6\nundone: 5\ncommand: "{PAIR_CMD}"\n'
    assert px.ok("show", "memcache").endswith("name space: space0\npair:\n")
    assert px.ok("show", "memcache") == "---\nid: 0\ncss: css0\nname space: space0\npair:\n"
    second = list(yaml.safe_load_all(px.ok("undo")))
    assert second == [{"rev": 7, "undone": 4, "command": "register memcache --css css0"}]
    assert px.ok("show", "memcache") == ""
    assert px.ok("list", "memcache") == ""
    proc = px("diff", "4", "6", check=True)
    assert proc.stdout == ""
    verify = px("verify", check=True)
    docs = list(yaml.safe_load_all(verify.stdout))
    assert len(docs) == 1
    assert docs[0]["status"] == "ok"
    assert docs[0]["head"] == 7
    assert "problems" not in docs[0]
    assert "status: ok\n" in verify.stdout
    assert px.log_count() == 7
    # the undo commits carry the command as typed
    log = list(yaml.safe_load_all(px.ok("log", "-n", "2")))
    assert [d["command"] for d in log] == ["undo", "undo"]
