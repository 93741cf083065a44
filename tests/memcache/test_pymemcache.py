"""pymemcache's API end to end through the proxy (an independent client, unchanged)."""

from __future__ import annotations

import pytest
from mc_procs import talk
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError, MemcacheServerError


@pytest.fixture
def mc(env):
    c = Client(("127.0.0.1", env.proxy.port), connect_timeout=5, timeout=10)
    yield c
    c.close()


def test_storage_and_retrieval(mc):
    assert mc.set("pm-a", b"1", expire=0, noreply=False)
    assert mc.get("pm-a") == b"1"
    assert mc.add("pm-a", b"2", noreply=False) is False
    assert mc.add("pm-b", b"2", noreply=False) is True
    assert mc.replace("pm-c", b"3", noreply=False) is False
    assert mc.replace("pm-b", b"3", noreply=False) is True
    assert mc.append("pm-b", b"4", noreply=False) and mc.prepend("pm-b", b"0", noreply=False)
    assert mc.get("pm-b") == b"034"
    assert mc.get_many(["pm-a", "pm-b", "pm-none"]) == {"pm-a": b"1", "pm-b": b"034"}
    assert mc.set_many({"pm-x": b"x", "pm-y": b"y"}, noreply=False) == []
    assert mc.get_many(["pm-x", "pm-y"]) == {"pm-x": b"x", "pm-y": b"y"}
    assert mc.delete("pm-a", noreply=False) is True
    assert mc.delete("pm-a", noreply=False) is False
    assert mc.get("pm-a") is None
    mc.set("pm-nr", b"v")  # noreply by default
    assert mc.get("pm-nr") == b"v"


def test_gets_cas(mc):
    mc.set("pm-cas", b"v1", noreply=False)
    v, cas = mc.gets("pm-cas")
    assert v == b"v1"
    assert mc.cas("pm-cas", b"v2", cas, noreply=False) is True
    assert mc.cas("pm-cas", b"v3", cas, noreply=False) is False  # EXISTS
    assert mc.cas("pm-nokey", b"v", 1, noreply=False) is None  # NOT_FOUND
    v2, cas2 = mc.gets("pm-cas")
    assert v2 == b"v2" and cas2 != cas
    assert mc.gets_many(["pm-cas"])["pm-cas"] == (b"v2", cas2)


def test_incr_decr_touch(mc):
    mc.set("pm-n", b"10", noreply=False)
    assert mc.incr("pm-n", 5, noreply=False) == 15
    assert mc.decr("pm-n", 20, noreply=False) == 0
    assert mc.incr("pm-missing", 1, noreply=False) is None
    assert mc.get("pm-n").strip() == b"0"
    assert mc.touch("pm-n", 100, noreply=False) is True
    assert mc.touch("pm-missing", 100, noreply=False) is False
    mc.set("pm-s", b"abc", noreply=False)
    with pytest.raises(MemcacheClientError):
        mc.incr("pm-s", 1, noreply=False)


def test_flags_expiry_and_big_values(mc, env):
    mc.set("pm-f", b"data", noreply=False, flags=42)
    assert talk(env.proxy.port, b"get pm-f\r\n", b"END\r\n") == b"VALUE pm-f 42 4\r\ndata\r\nEND\r\n"
    mc.set("pm-exp", b"gone", expire=-1, noreply=False)
    assert mc.get("pm-exp") is None
    big = bytes(range(256)) * 3000  # 768 KB, below item_size_max
    assert mc.set("pm-big", big, noreply=False)
    assert mc.get("pm-big") == big
    with pytest.raises(MemcacheServerError, match="too large"):
        mc.set("pm-huge", b"x" * (2 << 20), noreply=False)
    assert mc.get("pm-huge") is None


def test_misc_commands(mc):
    assert mc.version()
    assert b"paxos" not in mc.stats()  # backend stats pass through
    assert mc.stats()[b"pid"] > 0
    st = mc.stats("paxos")
    assert b"grants" in st and st[b"jeopardy"] == 0
    mc.set("pm-fl", b"v", noreply=False)
    assert mc.flush_all(noreply=False) is True
    assert mc.get("pm-fl") is None
    assert mc.set("pm-after", b"w", noreply=False) and mc.get("pm-after") == b"w"
