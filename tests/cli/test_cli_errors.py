"""Error paths of the registry and history commands (admin.md §2.4, §3.1-§3.5, §3.11).

Every refused command is checked for its exit code, its stderr message line (bare in one-shot
mode), an empty stdout, an unchanged event log head and an unchanged `$PAXOS_HOME/etc`.
"""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.conftest import SEED_CELL, Paxos, check_refused, etc_snapshot, git_head, run_concurrently


@pytest.fixture(scope="module")
def reg(tmp_path_factory, seeded_template) -> Paxos:
    """A shared seeded home (rev 5) for commands that must change nothing."""
    home = tmp_path_factory.mktemp("errors") / "home"
    shutil.copytree(seeded_template, home, symlinks=True)
    return Paxos(home)


def cell(**override: str) -> list[str]:
    """Six valid endpoints for a second cell (css1); override u0/t0/u1/t1/u2/t2."""
    eps = {"u0": "192.168.1.103:24111", "t0": "192.168.1.103:24111",
           "u1": "192.168.1.104:24111", "t1": "192.168.1.104:24111",
           "u2": "192.168.1.105:24111", "t2": "192.168.1.105:24111"}
    eps.update(override)
    return [eps[k] for k in ("u0", "t0", "u1", "t1", "u2", "t2")]


# --- refused with exit 1: (args, message) -------------------------------------------------------
REFUSED = [
    # register host: (1) exists, (2) rule H, (3) rule P -- in this order
    (["register", "host", "192.168.1.10"], "host already exists"),
    (["register", "host", "-p", "0", "192.168.1.10"], "host already exists"),
    (["register", "host", "192.168.1.100"], "host already exists"),  # auto-registered
    (["register", "host", "a@b"], "illegal host name"),
    (["register", "host", "a:b"], "illegal host name"),
    (["register", "host", "a/b"], "illegal host name"),
    (["register", "host", "a b"], "illegal host name"),
    (["register", "host", "a\tb"], "illegal host name"),
    (["register", "host", ""], "illegal host name"),
    (["register", "host", "-p", "0", "a@b"], "illegal host name"),
    (["register", "host", "-p", "0", "newhost"], "port number should be 1 or more"),
    (["register", "host", "-p", "-1", "newhost"], "port number should be 1 or more"),
    (["register", "host", "-p", "65536", "newhost"], "port number should be 65535 or less"),
    # unregister host
    (["unregister", "host", "192.168.1.99"], "not found: 192.168.1.99"),
    (["unregister", "host", "192.168.1.100"], "this host is in use."),
    # modify host: (1) not found, (2) rule P
    (["modify", "host", "-u", "x", "192.168.1.99"], "not found: 192.168.1.99"),
    (["modify", "host", "-p", "0", "192.168.1.99"], "not found: 192.168.1.99"),
    (["modify", "host", "-p", "0", "192.168.1.10"], "port number should be 1 or more"),
    (["modify", "host", "-p", "65536", "192.168.1.10"], "port number should be 65535 or less"),
    # register css: (1) exists, (2) rule C, (3) per server UDP then TCP: A then P, (4), (5)
    (["register", "css", "-n", "css0", *cell(u0="x:y")], "css already exists"),
    (["register", "css", "-n", "css0", *SEED_CELL], "css already exists"),
    (["register", "css", "-n", "css-1", *cell(u0="x:y")], "illegal css name"),
    (["register", "css", "-n", "cssé", *cell()], "illegal css name"),
    (["register", "css", "-n", "css１", *cell()], "illegal css name"),
    (["register", "css", "-n", "", *cell()], "illegal css name"),
    (["register", "css", "-n", "css1", *cell(u0="192.168.1.103:2411x")],
     "non-numeric value has been specified for the port number"),
    (["register", "css", "-n", "css1", *cell(u0="192.168.1.103")],
     "non-numeric value has been specified for the port number"),
    (["register", "css", "-n", "css1", *cell(u0="192.168.1.103:1:2")],
     "non-numeric value has been specified for the port number"),
    (["register", "css", "-n", "css1", *cell(t2="192.168.1.105:x")],
     "non-numeric value has been specified for the port number"),
    (["register", "css", "-n", "css1", *cell(u0="a@b:24111")], "illegal host name"),
    (["register", "css", "-n", "css1", *cell(t1=":24111")], "illegal host name"),
    (["register", "css", "-n", "css1", *cell(u0="192.168.1.103:70000")],
     "port number should be 65535 or less"),
    (["register", "css", "-n", "css1", *cell(u1="192.168.1.104:0")],
     "port number should be 1 or more"),
    (["register", "css", "-n", "css1", *cell(t2="192.168.1.105:-3")],
     "port number should be 1 or more"),
    # first failure wins: server 0 UDP (port range) before server 0 TCP (non-numeric)
    (["register", "css", "-n", "css1", *cell(u0="192.168.1.103:70000", t0="192.168.1.103:x")],
     "port number should be 65535 or less"),
    # UDP of server 0 before TCP of server 0: rule A of TCP after rule P of UDP
    (["register", "css", "-n", "css1", *cell(t0="192.168.1.103:x", u1="192.168.1.104:0")],
     "non-numeric value has been specified for the port number"),
    # server 0's TCP (rule H) before server 1's UDP (rule A)
    (["register", "css", "-n", "css1", *cell(t0="a/b:1", u1="x")], "illegal host name"),
    # endpoint checks come before the duplicate checks
    (["register", "css", "-n", "css1", *cell(u1="192.168.1.103:24111", t2="192.168.1.105:0")],
     "port number should be 1 or more"),
    (["register", "css", "-n", "css1", *cell(u1="192.168.1.103:24111")],
     "the same address has been specified more than once"),
    (["register", "css", "-n", "css1", *cell(t2="192.168.1.103:24111")],
     "the same address has been specified more than once"),
    (["register", "css", "-n", "css1", *cell(u2="192.168.1.103:024111")],
     "the same address has been specified more than once"),
    # duplicates within the cell before duplicates with other cells
    (["register", "css", "-n", "css1",
      *cell(u0="192.168.1.100:24111", u1="192.168.1.105:24111")],
     "the same address has been specified more than once"),
    (["register", "css", "-n", "css1", *cell(u0="192.168.1.100:24111")],
     "address is already used by css css0"),
    (["register", "css", "-n", "css1", *cell(t2="192.168.1.102:24111")],
     "address is already used by css css0"),
    (["register", "css", "-n", "css1", *cell(u1="192.168.1.101:024111")],
     "address is already used by css css0"),
    (["register", "css", "-n", "css1", *cell(t1="192.168.1.101:+24111")],
     "address is already used by css css0"),
    # unregister css
    (["unregister", "css", "-n", "css9"], "not found: css9"),
    (["unregister", "css", "--name", "css0"], "this css is in use."),
    # register memcache: (1) cell, (2) id, (3) rule N, (4) ranges -I, -C, -E, -W
    (["register", "memcache", "-c", "css9"], "not found: css9"),
    (["register", "memcache", "-c", "css9", "-i", "-1", "-N", "", "-W", "0"], "not found: css9"),
    (["register", "memcache", "-c", "css0", "-i", "-1"], "id should be 0 or more"),
    (["register", "memcache", "-c", "css0", "-i", "-1", "-N", "a b"], "id should be 0 or more"),
    (["register", "memcache", "-c", "css0", "-i", "0"], "memcache id is duplicated"),
    (["register", "memcache", "-c", "css0", "--id", "0", "-N", ""], "memcache id is duplicated"),
    (["register", "memcache", "-c", "css0", "-N", ""], "illegal name space"),
    (["register", "memcache", "-c", "css0", "-N", "a b"], "illegal name space"),
    (["register", "memcache", "-c", "css0", "-N", "a\tb", "-W", "0"], "illegal name space"),
    (["register", "memcache", "-c", "css0", "-I", "0"], "--max-cache-item should be 1 or more"),
    (["register", "memcache", "-c", "css0", "-C", "0"],
     "--checksum-interval should be 1 or more"),
    (["register", "memcache", "-c", "css0", "-E", "-1"], "--expire-interval should be 1 or more"),
    (["register", "memcache", "-c", "css0", "-W", "0"], "--worker should be 1 or more"),
    (["register", "memcache", "-c", "css0", "-W", "0", "-E", "0", "-C", "0", "-I", "0"],
     "--max-cache-item should be 1 or more"),
    (["register", "memcache", "-c", "css0", "-W", "0", "-E", "0", "-C", "0"],
     "--checksum-interval should be 1 or more"),
    (["register", "memcache", "-c", "css0", "-W", "0", "-E", "0"],
     "--expire-interval should be 1 or more"),
    # unregister memcache
    (["unregister", "memcache", "-i", "7"], "not found: 7"),
    (["unregister", "memcache", "--id", "-1"], "not found: -1"),
    # modify memcache: (1) --css, (2) id, (3) rule N, (4) ranges
    (["modify", "memcache", "-i", "9", "-c", "css9"], "not found: css9"),
    (["modify", "memcache", "-i", "9", "-W", "0"], "not found: 9"),
    (["modify", "memcache", "-i", "9", "-c", "css0"], "not found: 9"),
    (["modify", "memcache", "-i", "0", "-N", "", "-W", "0"], "illegal name space"),
    (["modify", "memcache", "-i", "0", "-N", "x y"], "illegal name space"),
    (["modify", "memcache", "-i", "0", "-I", "0"], "--max-cache-item should be 1 or more"),
    (["modify", "memcache", "-i", "0", "-C", "0"], "--checksum-interval should be 1 or more"),
    (["modify", "memcache", "-i", "0", "-E", "0"], "--expire-interval should be 1 or more"),
    (["modify", "memcache", "-i", "0", "--worker", "0"], "--worker should be 1 or more"),
    # register pair: (1) id, (2) rules H and P, (3) rule E duplicates
    (["register", "pair", "-i", "9", "-a", "192.168.1.201"], "not found: 9"),
    (["register", "pair", "-i", "9", "-a", "a@b", "-p", "0"], "not found: 9"),
    (["register", "pair", "-i", "0", "-a", "a@b"], "illegal host name"),
    (["register", "pair", "-i", "0", "-a", ""], "illegal host name"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "127.0.0.1:1"],
     "illegal host name"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "a b"], "illegal host name"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-p", "0"],
     "port number should be 1 or more"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-p", "65536"],
     "port number should be 65535 or less"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "127.0.0.2", "-P", "0"],
     "port number should be 1 or more"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "127.0.0.2", "-P", "70000"],
     "port number should be 65535 or less"),
    # same server endpoint (defaults substituted), other client endpoint
    (["register", "pair", "-i", "0", "-a", "192.168.1.200", "-A", "127.0.0.2"],
     "address is duplicated"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.200", "-p", "11211", "-P", "11212"],
     "address is duplicated"),
    # same client endpoint (defaults; localhost equals 127.0.0.1), other server endpoint
    (["register", "pair", "-i", "0", "-a", "192.168.1.201"], "address is duplicated"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "localhost"],
     "address is duplicated"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "localhost", "-P", "11211"],
     "address is duplicated"),
    # unregister pair: (1) id, (2) not found pair
    (["unregister", "pair", "-i", "9", "-a", "192.168.1.200"], "not found: 9"),
    (["unregister", "pair", "-i", "0", "-a", "192.168.1.201"], "not found pair"),
    (["unregister", "pair", "-i", "0", "-a", "192.168.1.200", "-p", "11212"], "not found pair"),
    (["unregister", "pair", "-i", "0", "-a", "192.168.1.200", "-A", "127.0.0.2"],
     "not found pair"),
    (["unregister", "pair", "-i", "0", "-a", "192.168.1.200", "-P", "11212"], "not found pair"),
    # history: unknown revisions (rev 5 is HEAD)
    (["diff", "6"], "unknown revision: 6"),
    (["diff", "0", "99"], "unknown revision: 99"),
    (["diff", "HEAD~5", "HEAD~6"], "unknown revision: HEAD~6"),
    (["diff", "xyz"], "unknown revision: xyz"),
    (["diff", "1234567"], "unknown revision: 1234567"),
    (["diff", "-1"], "unknown revision: -1"),
    (["diff", "HEAD~"], "unknown revision: HEAD~"),
    (["diff", "0000000000000000000000000000000000000000"],
     "unknown revision: 0000000000000000000000000000000000000000"),
    (["show", "host", "--at", "6"], "unknown revision: 6"),
    (["show", "css", "--at", "deadbeefcafe"], "unknown revision: deadbeefcafe"),
    (["show", "memcache", "--at", "HEAD~9"], "unknown revision: HEAD~9"),
    (["list", "host", "--at", "nope"], "unknown revision: nope"),
    (["list", "css", "--at", "1000000"], "unknown revision: 1000000"),
    (["list", "memcache", "--at", "HEAD-1"], "unknown revision: HEAD-1"),
    (["revert", "6"], "unknown revision: 6"),
    (["list", "host", "--at", "0000001"], "unknown revision: 0000001"),
    (["show", "host", "--at", "+1"], "unknown revision: +1"),
    (["show", "host", "--at", "HEAD~-1"], "unknown revision: HEAD~-1"),
    # issue 7 item 6: every integer range-checked before an event exists (63 bits; the id
    # counter, one more than the highest id, must fit too)
    (["register", "memcache", "-c", "css0", "--id", "18446744073709551615"],
     "id should be 9223372036854775806 or less"),
    (["register", "memcache", "-c", "css0", "--id", "9223372036854775807"],
     "id should be 9223372036854775806 or less"),
    (["register", "memcache", "-c", "css0", "--id", "-" + "9" * 5000], "id should be 0 or more"),
    (["register", "memcache", "-c", "css0", "-W", "9" * 24],
     "--worker should be 9223372036854775807 or less"),
    (["register", "memcache", "-c", "css0", "-I", "9223372036854775808"],
     "--max-cache-item should be 9223372036854775807 or less"),
    (["register", "memcache", "-c", "css0", "-C", "1" + "0" * 30],
     "--checksum-interval should be 9223372036854775807 or less"),
    (["modify", "memcache", "-i", "0", "-E", "9" * 5000],
     "--expire-interval should be 9223372036854775807 or less"),
    (["modify", "memcache", "-i", "0", "-W", "9" * 24],
     "--worker should be 9223372036854775807 or less"),
    (["register", "host", "-p", "9" * 5000, "newhost"], "port number should be 65535 or less"),
    (["register", "css", "-n", "css1", *cell(u0="192.168.1.103:" + "9" * 5000)],
     "port number should be 65535 or less"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-P", "9" * 30],
     "port number should be 65535 or less"),
    (["diff", "HEAD~" + "9" * 5000], "unknown revision: HEAD~" + "9" * 5000),
    # issue 7 item 7: names the resolver cannot encode (IDNA) are illegal host names, refused
    # before any lookup or connection
    (["register", "host", "a..b"], "illegal host name"),
    (["register", "host", "a" * 64 + ".example"], "illegal host name"),
    (["register", "host", "."], "illegal host name"),
    (["register", "pair", "-i", "0", "-a", "a..b"], "illegal host name"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "é" * 64], "illegal host name"),
    (["register", "css", "-n", "css1", *cell(t1="a..b:24111")], "illegal host name"),
    (["unregister", "pair", "-i", "0", "-a", "a..b"], "not found pair"),
    (["unregister", "pair", "-i", "0", "-a", "192.168.1.200", "-A", "x" * 64],
     "not found pair"),
    (["fetch", "a..b"], "illegal host name"),
    (["fetch", "paxos@" + "a" * 64], "illegal host name"),
    (["fetch", "@somehost"], "illegal user name"),
]


@pytest.fixture(scope="module")
def table(tmp_path_factory, seeded_template):
    """REFUSED and USAGE, all run up front in parallel on private seeded copies (rev 5)."""
    commands = [list(a) for a, _ in REFUSED] + [list(a) for a, _ in USAGE]
    return run_concurrently(seeded_template, tmp_path_factory.mktemp("table"), commands)


@pytest.mark.parametrize("index", range(len(REFUSED)),
                         ids=[" ".join(a)[:70] for a, _ in REFUSED])
def test_refused(table, index):
    check_refused(table[index], message=REFUSED[index][1])


# --- usage errors, exit 2 ----------------------------------------------------------------------
USAGE = [
    (["frob"], None),
    (["frob", "host"], None),
    (["register"], None),
    (["register", "frob"], None),
    (["show", "frob"], None),
    (["list"], None),
    (["history"], None),  # shell only (§3.11)
    (["register", "host"], None),
    (["register", "host", "a", "b"], None),
    (["register", "host", "-p", "xxx", "newhost"], "invalid int value: 'xxx'"),
    (["register", "host", "-p", "1_0", "newhost"], "invalid int value"),
    (["register", "host", "-p", " 12", "newhost"], "invalid int value"),
    (["register", "host", "-p", "1.5", "newhost"], "invalid int value"),
    (["register", "host", "-p", "0x10", "newhost"], "invalid int value"),
    (["register", "host", "-p", "١٢", "newhost"], "invalid int value"),
    (["register", "host", "--frob", "newhost"], None),
    (["modify", "host", "--use-ssh-config", "--not-use-ssh-config", "192.168.1.10"],
     "not allowed with argument"),
    (["modify", "host", "192.168.1.10", "192.168.1.11"], None),
    (["register", "css", *SEED_CELL], "-n/--name"),
    (["register", "css", "-n", "css1", *cell()[:5]], None),
    (["register", "css", "-n", "css1", *cell(), "192.168.1.106:1"], None),
    (["register", "css", "-n", "css1"], None),
    (["unregister", "css", "-n", "css0", "extra"], None),
    (["register", "memcache"], "-c/--css"),
    (["register", "memcache", "-c", "css0", "-s", "-S"], "not allowed with argument"),
    (["register", "memcache", "-c", "css0", "-i", "x"], "invalid int value: 'x'"),
    (["register", "memcache", "-c", "css0", "-I", "1e3"], "invalid int value"),
    (["unregister", "memcache"], "-i/--id"),
    (["modify", "memcache", "-W", "3"], "-i/--id"),
    (["modify", "memcache", "-i", "0", "--disable-checksum", "--enable-checksum"],
     "not allowed with argument"),
    (["modify", "memcache", "-i", "0", "-C", "abc"], "invalid int value: 'abc'"),
    (["register", "pair", "-a", "192.168.1.201"], "-i/--id"),
    (["register", "pair", "-i", "0"], "-a/--server-address"),
    (["register", "pair", "-i", "0", "-a", "192.168.1.201", "-P", "x"], "invalid int value"),
    (["unregister", "pair", "-i", "0"], "-a/--server-address"),
    (["show", "memcache", "-i", "x"], "invalid int value"),
    (["show", "host", "-p", "x"], "invalid int value"),
    (["show", "host", "--at"], None),
    (["log", "-n", "x"], "invalid int value"),
    (["diff"], None),
    (["diff", "1", "2", "3"], None),
    (["revert"], None),
    (["verify", "extra"], None),
    (["-o", "xml", "show", "host"], None),
    (["show", "host", "-o", "xml"], None),
    # issue 7 items 7-9: refused whole before parsing; the argument is counted after `paxos`
    (["register", "host", "a\udcffb"], "paxos: error: argument 3 is not valid UTF-8"),
    (["show", "host", "\udcff\udcfe"], "paxos: error: argument 3 is not valid UTF-8"),
    (["--json", "show", "host", "-g", "g\udc80"], "argument 5 is not valid UTF-8"),
    (["register", "host", "a\x01b"],
     "paxos: error: argument 3 contains a control character (U+0001)"),
    (["register", "host", "-u", "a\x1b[31m", "newhost"], "control character (U+001B)"),
    (["register", "host", "a\nb"], "control character (U+000A)"),
    (["register", "host", "a\rb"], "control character (U+000D)"),
    (["register", "host", "a\x7fb"], "control character (U+007F)"),
    (["register", "host", "a\x85b"], "control character (U+0085)"),
    (["register", "memcache", "-c", "css0", "-N", "ns\x9b"], "control character (U+009B)"),
    (["register", "host", "a" * 65536], "paxos: error: command too long: 65550 bytes "
     "(the limit is 65536)"),
    (["show", "host", *["h" * 1000] * 66], "command too long"),
    (["show", "host", "é" * 40000], "command too long: 80010 bytes"),
    # issue 13 item 3: a port outside 1-65535 is a usage error wherever a host spec is parsed
    (["fetch", "somehost:99999"], "argument hostname: port number should be 65535 or less"),
    (["fetch", "somehost:0"], "argument hostname: port number should be 1 or more"),
    (["fetch", "somehost:\u0663"],
     "argument hostname: non-numeric value has been specified for the port number"),
]


@pytest.mark.parametrize("index", range(len(USAGE)), ids=[" ".join(a)[:70] for a, _ in USAGE])
def test_usage_error(table, index):
    check_refused(table[len(REFUSED) + index], code=2, message=USAGE[index][1])


def test_usage_error_message_names_the_command(reg):
    proc = reg("register", "host", "-p", "xxx", "newhost")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "paxos register host: error: argument -p/--port: invalid int value: 'xxx'")
    assert proc.stderr.startswith("usage: ")
    proc = reg("modify", "host", "--use-ssh-config", "--not-use-ssh-config", "192.168.1.10")
    assert proc.stderr.strip().splitlines()[-1] == (
        "paxos modify host: error: argument --not-use-ssh-config: not allowed with argument "
        "--use-ssh-config")


def test_help_exits_0(reg):
    for args in (["--help"], ["-h"], ["register", "--help"], ["register", "host", "-h"]):
        proc = reg(*args)
        assert proc.returncode == 0, args
        assert "usage:" in proc.stdout, args
    assert "--port" in reg.ok("register", "host", "--help")


# --- boundary values and successful checks --------------------------------------------------------

def test_port_boundaries_accepted(seeded_copy):
    px = seeded_copy
    px.ok("register", "host", "-p", "1", "h1")
    px.ok("register", "host", "--port", "65535", "h65535")
    px.ok("register", "host", "-p", "+22", "hplus")
    px.ok("register", "host", "-p", "022", "hzero")
    docs = list(yaml.safe_load_all(px.ok("show", "host", "h1", "h65535", "hplus", "hzero")))
    assert [d["port"] for d in docs] == [1, 65535, 22, 22]
    px.ok("modify", "host", "-p", "65535", "192.168.1.10")
    px.ok("modify", "host", "-p", "1", "192.168.1.11")
    assert [d.get("port") for d in yaml.safe_load_all(
        px.ok("show", "host", "192.168.1.10", "192.168.1.11"))] == [65535, 1]
    px.ok("register", "pair", "-i", "0", "-a", "192.168.1.201", "-p", "1", "-A", "127.0.0.2",
          "-P", "65535")
    px.ok("register", "css", "-n", "edge", "192.168.1.110:1", "192.168.1.110:65535",
          "192.168.1.111:1", "192.168.1.111:65535", "192.168.1.112:1", "192.168.1.112:65535")
    assert px.log_count() == 5 + 8


def test_css_endpoint_sharing_that_is_allowed(seeded_copy):
    px = seeded_copy
    # one server may use the same endpoint for UDP and TCP; server 2's UDP may equal server 1's
    # TCP; names are compared literally within a cell (localhost is not 127.0.0.1 here)
    px.ok("register", "css", "-n", "css_A1", "127.0.0.1:30000", "127.0.0.1:30000",
          "localhost:30000", "127.0.0.1:30001", "127.0.0.1:30001", "localhost:30003")
    # another cell may use css_A1's TCP endpoint as a UDP endpoint (UDP vs TCP is no clash)
    px.ok("register", "css", "-n", "B", "localhost:30003", "127.0.0.1:31000",
          "127.0.0.9:30000", "127.0.0.2:31001", "127.0.0.3:30000", "127.0.0.3:31002")
    assert px.ok("list", "css").splitlines() == ["css0", "css_A1", "B"]
    assert (px.home / "etc" / "cell" / "B.conf").read_text() == (
        "0 localhost 30003 127.0.0.1 31000\n"
        "1 127.0.0.9 30000 127.0.0.2 31001\n"
        "2 127.0.0.3 30000 127.0.0.3 31002\n")
    # only TCP hosts are auto-registered, once, in server order, into the first cell's group;
    # a TCP host registered before (127.0.0.1, by css_A1) joins the later cell's group too
    assert px.ok("list", "host").splitlines() == [
        "192.168.1.10", "192.168.1.11", "192.168.1.100", "192.168.1.101", "192.168.1.102",
        "127.0.0.1", "localhost", "127.0.0.2", "127.0.0.3"]
    assert px.ok("list", "host", "-g", "B").splitlines() == ["127.0.0.1", "127.0.0.2",
                                                             "127.0.0.3"]


def test_unregister_host_used_only_as_udp_address(seeded_copy, refused):
    px = seeded_copy
    px.ok("register", "host", "192.168.1.120")
    px.ok("register", "css", "-n", "css1", "192.168.1.120:24111", "192.168.1.121:24111",
          "192.168.1.120:24112", "192.168.1.122:24111", "192.168.1.120:24113",
          "192.168.1.123:24111")
    refused(px, "unregister", "host", "192.168.1.121", message="this host is in use.")
    px.ok("unregister", "host", "192.168.1.120")
    assert "192.168.1.120" not in px.ok("list", "host").splitlines()


def test_unregister_css_in_use_then_free(seeded_copy, refused):
    px = seeded_copy
    px.ok("unregister", "memcache", "-i", "0")
    px.ok("unregister", "css", "-n", "css0")
    assert px.ok("list", "css") == ""
    assert not (px.home / "etc" / "cell" / "css0.conf").exists()
    # auto-registered hosts stay
    assert px.ok("list", "host", "-g", "css0").splitlines() == [
        "192.168.1.100", "192.168.1.101", "192.168.1.102"]
    px.ok("unregister", "host", "192.168.1.100")
    refused(px, "unregister", "css", "-n", "css0", message="not found: css0")


def test_unregister_css_with_local_file_missing(seeded_copy):
    px = seeded_copy
    px.ok("register", "css", "-n", "css1", *cell())
    conf = px.home / "etc" / "cell" / "css1.conf"
    assert conf.exists()
    conf.unlink()
    proc = px("unregister", "css", "-n", "css1")
    assert proc.returncode == 0, proc.stderr
    assert not conf.exists()
    assert px.ok("list", "css") == "css0\n"
    assert px.log_count() == 7


def test_pairs_of_other_instances_are_not_compared(seeded_copy):
    px = seeded_copy
    px.ok("register", "memcache", "-c", "css0")
    px.ok("register", "pair", "-i", "1", "-a", "192.168.1.200")
    px.ok("register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "127.0.0.2")
    px.ok("register", "pair", "-i", "0", "-a", "192.168.1.201", "-p", "11212", "-A", "127.0.0.1",
          "-P", "11212")
    assert px.log_count() == 9


def test_unregister_pair_by_rule_e(seeded_copy, refused):
    px = seeded_copy
    # stored with defaults left none; named with explicit defaults and `localhost`
    px.ok("unregister", "pair", "-i", "0", "-a", "192.168.1.200", "-p", "11211", "-A",
          "localhost", "-P", "11211")
    assert px.ok("show", "memcache", "-i", "0").endswith("pair:\n")
    refused(px, "unregister", "pair", "-i", "0", "-a", "192.168.1.200", message="not found pair")
    assert px.log_count() == 6


def test_register_pair_localhost_client_equals_default(seeded_copy, refused):
    px = seeded_copy
    px.ok("register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "127.0.0.2")
    # the client endpoint 127.0.0.2:11211 is taken now; the server endpoint 192.168.1.201 too
    refused(px, "register", "pair", "-i", "0", "-a", "192.168.1.202", "-A", "127.0.0.2",
            "-P", "11211", message="address is duplicated")
    refused(px, "register", "pair", "-i", "0", "-a", "192.168.1.201", "-A", "127.0.0.3",
            message="address is duplicated")
    px.ok("register", "pair", "-i", "0", "-a", "localhost", "-A", "127.0.0.4")
    refused(px, "register", "pair", "-i", "0", "-a", "127.0.0.1", "-A", "127.0.0.5",
            message="address is duplicated")


def test_memcache_checks_with_new_cell(seeded_copy, refused):
    px = seeded_copy
    px.ok("register", "css", "-n", "css1", *cell())
    px.ok("register", "memcache", "-c", "css1", "-i", "5")
    refused(px, "register", "memcache", "-c", "css1", "-i", "5", message="memcache id is duplicated")
    refused(px, "modify", "memcache", "-i", "5", "-c", "nope", message="not found: nope")
    px.ok("modify", "memcache", "-i", "5", "-c", "css0")
    refused(px, "unregister", "css", "-n", "css0", message="this css is in use.")
    px.ok("unregister", "css", "-n", "css1")


# --- history ------------------------------------------------------------------------------------

def test_nothing_to_undo_on_empty_home(paxos, refused):
    refused(paxos, "undo", message="nothing to undo")
    assert git_head(paxos.home) is None


def test_undo_walks_back_to_nothing(paxos, refused):
    paxos.ok("register", "host", "h1")
    paxos.ok("register", "host", "h2")
    assert list(yaml.safe_load_all(paxos.ok("undo")))[0]["undone"] == 2
    assert list(yaml.safe_load_all(paxos.ok("undo")))[0]["undone"] == 1
    refused(paxos, "undo", message="nothing to undo")
    assert paxos.ok("list", "host") == ""
    assert paxos.log_count() == 4


def test_unknown_revision_on_empty_home(paxos, refused):
    refused(paxos, "diff", "1", message="unknown revision: 1")
    refused(paxos, "show", "host", "--at", "HEAD~1", message="unknown revision: HEAD~1")


def test_revert_to_head_appends_nothing(seeded_copy):
    px = seeded_copy
    head, etc = git_head(px.home), etc_snapshot(px.home)
    for rev in ("HEAD", "5", head[:7], head):
        proc = px("revert", rev)
        assert proc.returncode == 0, (rev, proc.stderr)
        assert proc.stdout == ""
        assert proc.stderr.strip() == "WARNING: nothing to revert"
        assert git_head(px.home) == head
        assert etc_snapshot(px.home) == etc
    assert px.log_count() == 5


def test_revert_to_an_equal_older_topology_appends_nothing(seeded_copy):
    px = seeded_copy
    px.ok("register", "host", "h9")
    px.ok("unregister", "host", "h9")
    head = git_head(px.home)
    proc = px("revert", "5")
    assert proc.returncode == 0
    assert proc.stderr.strip() == "WARNING: nothing to revert"
    assert git_head(px.home) == head


NOOP = [
    ["modify", "host", "-u", "paxos", "192.168.1.10"],
    ["modify", "host", "-g", "css0", "192.168.1.100"],
    ["modify", "host", "--not-use-ssh-config", "192.168.1.10"],
    ["modify", "host", "192.168.1.10"],
    ["modify", "memcache", "-i", "0", "-N", "space0"],
    ["modify", "memcache", "-i", "0", "-c", "css0"],
    ["modify", "memcache", "-i", "0"],
]


@pytest.mark.parametrize("args", NOOP, ids=[" ".join(a) for a in NOOP])
def test_noop_modify_appends_nothing(reg, args):
    head, etc = git_head(reg.home), etc_snapshot(reg.home)
    proc = reg(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert git_head(reg.home) == head
    assert etc_snapshot(reg.home) == etc


def test_shared_homes_still_at_rev_5(reg, table):
    """None of the refused commands or no-op modifies above appended anything."""
    assert reg.log_count() == 5
    homes = sorted({out.home for out in table})
    assert len(homes) == 4
    for home in homes:
        assert Paxos(home).log_count() == 5
