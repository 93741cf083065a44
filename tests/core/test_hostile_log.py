"""A hostile or damaged event log (issue 7, items 1 and 6): every field of every event is
type- and range-checked when it is applied, and the snapshot (rendered conf, cache) when it is
read back, so a crafted name never becomes a path and a huge number never crashes a command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgpack
import pytest

from paxoslog.core.events import Event, apply, decode
from paxoslog.core.model import EMPTY, Cell, Host, Memcache, Server, Topology, to_plain
from paxoslog.core.render import parse_conf, render_conf
from paxoslog.errors import LogError
from paxoslog.store.gitlog import EventLog
from tests.conftest import Paxos
from tests.crafted import craft, event_blob, traversal

SERVERS = [{"no": i, "uaddr": f"10.0.0.{i}", "uport": 1, "taddr": f"10.0.0.{i}", "tport": 2}
           for i in range(3)]
HOST = {"hostname": "h", "user": "paxos", "port": None, "groups": [], "use_ssh_config": False}
MEMCACHE = {"id": 0, "css": "c0", "name_space": "space0", "max_cache_item": None,
            "checksum": None, "checksum_interval": None, "expire_interval": None, "worker": None}
PAIR = {"id": 0, "shost": "10.0.0.9", "sport": None, "chost": None, "cport": None}
CELL = Cell("c0", tuple(Server(**s) for s in SERVERS))
BASE = Topology(hosts=(Host("h"),), cells=(CELL,), memcaches=(Memcache(0, "c0"),),
                next_memcache_id=1)


def _with(base: dict, **changes) -> dict:
    return {**base, **changes}


def _servers(i: int, **changes) -> list[dict]:
    return [_with(s, **changes) if s["no"] == i else s for s in SERVERS]


def _restored(**changes) -> dict:
    plain = to_plain(BASE)
    plain.update(changes)
    return {"reason": "undo", "target_rev": 1, "target_commit": "0" * 40, "topology": plain}


BIG = 18446744073709551615  # 2**64 - 1: what `--id 18446744073709551615` stored

# (type, data, what the message must say)
BAD_EVENTS = [
    ("css_registered", {"name": "../../x", "servers": SERVERS, "hosts": []},
     "illegal css name '../../x'"),
    ("css_registered", {"name": "a/b", "servers": SERVERS}, "illegal css name"),
    ("css_registered", {"name": "ünï", "servers": SERVERS}, "illegal css name"),  # rule (C): ASCII
    ("css_registered", {"name": "", "servers": SERVERS}, "illegal css name"),
    ("css_registered", {"name": 7, "servers": SERVERS}, "illegal css name 7"),
    ("css_registered", {"name": "c1", "servers": SERVERS[:2]}, "has 2 servers, not 3"),
    ("css_registered", {"name": "c1", "servers": _servers(1, uport=0)}, "udp port 0 out of range"),
    ("css_registered", {"name": "c1", "servers": _servers(2, tport=65536)}, "tcp port 65536"),
    ("css_registered", {"name": "c1", "servers": _servers(0, tport="22")}, "is not an integer"),
    ("css_registered", {"name": "c1", "servers": _servers(0, uport=True)}, "is not an integer"),
    ("css_registered", {"name": "c1", "servers": _servers(0, uaddr="a b")}, "illegal udp address"),
    ("css_registered", {"name": "c1", "servers": _servers(0, no=1)}, "server number 1 where 0"),
    ("css_registered", {"name": "c1", "servers": SERVERS, "hosts": [_with(HOST, hostname="../h")]},
     "illegal host name '../h'"),
    ("host_registered", _with(HOST, hostname="a/b"), "illegal host name 'a/b'"),
    ("host_registered", _with(HOST, hostname=""), "illegal host name"),
    ("host_registered", _with(HOST, port=-1), "ssh port -1 out of range 1..65535"),
    ("host_registered", _with(HOST, port=BIG), f"ssh port {BIG} out of range"),
    ("host_registered", _with(HOST, groups=["a:b"]), "illegal group name 'a:b'"),
    ("host_registered", _with(HOST, groups="g"), "illegal groups"),
    ("host_registered", _with(HOST, use_ssh_config="yes"), "use_ssh_config 'yes'"),
    ("host_registered", _with(HOST, user=["root"]), "illegal user name"),
    ("host_registered", _with(HOST, shell="/bin/sh"), "unexpected field 'shell'"),
    ("host_unregistered", {"hostname": None}, "illegal host name None"),
    ("host_modified", {"hostname": "h", "port": 0}, "ssh port 0 out of range"),
    ("host_modified", {"hostname": "h", "hostname2": "x"}, "unexpected field"),
    ("memcache_registered", _with(MEMCACHE, id=-1), "memcache id -1 out of range"),
    ("memcache_registered", _with(MEMCACHE, id=BIG), f"memcache id {BIG} out of range"),
    ("memcache_registered", _with(MEMCACHE, id=2**63), "out of range 0..9223372036854775807"),
    ("memcache_registered", _with(MEMCACHE, css="../x"), "illegal css name '../x'"),
    ("memcache_registered", _with(MEMCACHE, name_space="a b"), "illegal name space 'a b'"),
    ("memcache_registered", _with(MEMCACHE, worker=0), "worker 0 out of range"),
    ("memcache_registered", _with(MEMCACHE, max_cache_item=BIG), "max_cache_item"),
    ("memcache_registered", _with(MEMCACHE, checksum=1), "checksum 1 is not a boolean"),
    ("memcache_registered", _with(MEMCACHE, pairs=[]), "unexpected field 'pairs'"),
    ("memcache_unregistered", {"id": "0"}, "memcache id '0' is not an integer"),
    ("memcache_modified", {"id": 0, "worker": 0}, "worker 0 out of range"),
    ("memcache_modified", {"id": 0, "css": ".."}, "illegal css name '..'"),
    ("pair_registered", _with(PAIR, shost="a b"), "illegal server address"),
    ("pair_registered", _with(PAIR, sport=0), "server port 0"),
    ("pair_unregistered", _with(PAIR, cport=-5), "client port -5"),
    ("pair_registered", _with(PAIR, id=-1), "memcache id -1"),
    ("css_member_replaced", {"name": "c0", "mode": "warm", **SERVERS[0]}, "replace mode 'warm'"),
    ("css_member_replaced", {"name": "c0", "mode": "hot", **SERVERS[0], "no": 3}, "server number 3"),
    ("css_member_replaced", {"name": "../c0", "mode": "hot", **SERVERS[0]}, "illegal css name"),
    ("css_unregistered", {"name": "../c0"}, "illegal css name '../c0'"),
    ("topology_restored", _with(_restored(), reason="redo"), "illegal restore reason 'redo'"),
    ("topology_restored", _with(_restored(), target_rev=-1), "target_rev -1 out of range"),
    ("topology_restored", _restored(cells=[{"name": "../x", "servers": SERVERS}]),
     "illegal css name '../x'"),
    ("topology_restored", _restored(hosts=[HOST, HOST]), "host 'h' appears twice"),
    ("topology_restored", _restored(next_memcache_id=BIG), "next_memcache_id"),
    ("topology_restored", _restored(memcaches=[_with(MEMCACHE, pairs=[{"shost": "a:b"}])]),
     "illegal server address 'a:b'"),
    ("topology_restored", _with(_restored(), topology=[]), "topology is not a mapping"),
]


@pytest.mark.parametrize("kind,data,expected", BAD_EVENTS,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_EVENTS)])
def test_bad_event_is_refused_when_decoded_and_when_applied(kind, data, expected) -> None:
    with pytest.raises(LogError) as err:
        decode(event_blob(kind, data))
    assert err.value.message.startswith(f"{kind}: ") and expected in err.value.message
    assert "\n" not in err.value.message
    # events that never went through decode (made by `decide`) are checked by apply itself
    with pytest.raises(LogError) as err:
        apply(BASE, Event(kind, data))
    assert expected in err.value.message


@pytest.mark.parametrize("kind,data", [
    ("host_registered", HOST),
    ("css_registered", {"name": "c0", "servers": SERVERS, "hosts": []}),
    ("memcache_registered", MEMCACHE),
])
def test_a_key_registered_twice_is_refused(kind, data) -> None:
    with pytest.raises(LogError, match="is already registered"):
        apply(BASE, decode(event_blob(kind, data)))


def test_values_beyond_64_bits_never_raise_anything_but_log_error() -> None:
    # msgpack cannot carry 2**70, but an event made in memory can, and a YAML snapshot can
    for data in (_with(MEMCACHE, id=2**70), _with(MEMCACHE, worker=-(2**70))):
        with pytest.raises(LogError, match="out of range"):
            apply(BASE, Event("memcache_registered", data))
    conf = render_conf(dataclasses.replace(BASE, next_memcache_id=2**70))
    with pytest.raises(LogError, match="^etc/paxos_memcache.conf: next_memcache_id .* out of range"):
        parse_conf(conf)


def test_the_largest_legal_values_replay_and_render() -> None:
    top = apply(BASE, decode(event_blob("memcache_registered",
                                        _with(MEMCACHE, id=2**63 - 1, worker=2**63 - 1))))
    assert top.next_memcache_id == 2**63
    assert parse_conf(render_conf(top)) == top


def test_conf_with_a_bad_cell_name_never_yields_a_topology() -> None:
    bad = dataclasses.replace(BASE, cells=(Cell("../../x", CELL.servers),))
    with pytest.raises(LogError, match="^etc/paxos_memcache.conf: illegal css name '../../x'$"):
        parse_conf(render_conf(bad))
    assert parse_conf(render_conf(BASE)) == BASE
    assert parse_conf(render_conf(EMPTY)) == EMPTY


# against a real log, through the real command ---------------------------------------------------

def _log(home: Path) -> EventLog:
    return EventLog(str(home / "var" / "paxoslog.git"))


def _outside(home: Path) -> list[Path]:
    return sorted(p for p in home.parent.rglob("*.conf") if home not in p.parents)


def test_crafted_cell_name_is_refused_by_verify_and_every_command(seeded: Paxos) -> None:
    bad = traversal(_log(seeded.home))
    proc = seeded("verify")
    assert proc.returncode == 1
    assert (f"rev 6 (commit {bad[:12]}): css_registered: illegal css name '../../../x'"
            in proc.stdout)
    assert seeded("replay").stdout == proc.stdout  # replay refuses to render it
    for args in (("register", "host", "h2"), ("show", "css")):
        proc = seeded(*args)
        assert proc.returncode == 1, args
        assert proc.stderr == (f"commit {bad[:12]}: etc/paxos_memcache.conf: "
                               "illegal css name '../../../x'\n"), args
    assert _outside(seeded.home) == []
    assert seeded("log", "-n", "1").returncode == 0  # the audit trail still reads


def test_crafted_snapshot_alone_is_refused(seeded: Paxos) -> None:
    """The event is harmless but the rendered conf of the commit names a bad cell."""
    log = _log(seeded.home)
    top = log.topology(log.head())
    evil = dataclasses.replace(top, cells=top.cells + (Cell("../../../x", CELL.servers),))
    bad = craft(log, event_blob("host_unregistered", {"hostname": "nobody"}),
                conf=render_conf(evil))
    proc = seeded("show", "css")
    assert proc.returncode == 1
    assert proc.stderr == (f"commit {bad[:12]}: etc/paxos_memcache.conf: "
                           "illegal css name '../../../x'\n")
    assert seeded("register", "host", "h2").returncode == 1
    assert _outside(seeded.home) == []


def test_crafted_cache_is_ignored(seeded: Paxos) -> None:
    seeded.ok("show", "css")  # the cache now names HEAD
    cache = seeded.home / "var" / "topology.cache"
    raw = msgpack.unpackb(cache.read_bytes())
    raw["topology"]["cells"][0]["name"] = "../../../x"
    cache.write_bytes(msgpack.packb(raw))
    assert seeded.ok("list", "css") == "css0\n"
    raw["rev"] = 2**64 - 1
    raw["topology"]["cells"][0]["name"] = "css0"
    cache.write_bytes(msgpack.packb(raw))
    seeded.ok("register", "host", "h2")
    assert seeded.log_count() == 6
    assert seeded.ok("verify").endswith("status: ok\n")


def test_huge_id_written_by_an_older_build_never_bricks_the_log(seeded: Paxos) -> None:
    """What `register memcache -c css0 --id 18446744073709551615` left behind: the commit was
    written, then every command failed with OverflowError."""
    log = _log(seeded.home)
    top = log.topology(log.head())
    after = dataclasses.replace(top, memcaches=top.memcaches + (Memcache(BIG, "css0"),),
                                next_memcache_id=BIG + 1)
    bad = craft(log, event_blob("memcache_registered", _with(MEMCACHE, id=BIG, css="css0")),
                after, message=f"register memcache -c css0 --id {BIG}")
    proc = seeded("log", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"register memcache -c css0 --id {BIG}" in proc.stdout and "rev: 6" in proc.stdout
    proc = seeded("verify")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (f"rev 6 (commit {bad[:12]}): memcache_registered: memcache id {BIG} out of range "
            "0..9223372036854775807") in proc.stdout
    for args in (("show", "memcache"), ("register", "host", "h2"), ("undo",)):
        proc = seeded(*args)
        assert proc.returncode == 1, args
        assert proc.stderr.startswith(f"commit {bad[:12]}: etc/paxos_memcache.conf: "), args
        assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert seeded.log_count() == 6


def test_out_of_range_port_in_an_event_is_named_by_verify(seeded: Paxos) -> None:
    log = _log(seeded.home)
    top = log.topology(log.head())
    after = dataclasses.replace(top, hosts=top.hosts + (Host("h9", port=-1),))
    bad = craft(log, event_blob("host_registered", _with(HOST, hostname="h9", port=-1)), after)
    proc = seeded("verify")
    assert proc.returncode == 1
    assert (f"rev 6 (commit {bad[:12]}): host_registered: ssh port -1 out of range 1..65535"
            in proc.stdout)
    proc = seeded("list", "host")
    assert proc.returncode == 1
    assert proc.stderr == (f"commit {bad[:12]}: etc/paxos_memcache.conf: "
                           "ssh port -1 out of range 1..65535\n")


def test_a_commit_time_beyond_the_calendar_still_lists(seeded: Paxos) -> None:
    log = _log(seeded.home)
    head = log.head()
    commit = log.commit(head)
    crafted = commit.copy()
    crafted.parents = [head]
    crafted.commit_time = crafted.author_time = 2**62
    crafted._extra = [(b"paxos-rev", b"999999999999999999999999")]  # and a rev beyond 63 bits
    log.repo.object_store.add_object(crafted)
    assert log.repo.refs.set_if_equals(b"refs/heads/main", head, crafted.id)
    proc = seeded("log", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"time: \"@{2**62}\"" in proc.stdout and "rev: 6" in proc.stdout
