"""`apply pair` (admin.md §6.5): adds before removes, live, without touching the pairs that
stay: a client connected to an untouched pair keeps working through the apply."""

from __future__ import annotations

import socket
import threading
import time

from nodes.agent.memcache import plan
from tests.mcadmin.mcadmin_world import free_port, refused, talk, wait_serving


def test_plan_adds_first_then_moves_then_removes():
    # the spec's example: registered {11211 -> .200, 11212 -> .201}, running {11211 -> .200,
    # 11300 -> .250}: add 11212 first, then delete 11300
    want = [("127.0.0.1:11211", "192.168.1.200:11211"), ("127.0.0.1:11212", "192.168.1.201:11211")]
    have = {"127.0.0.1:11211": ("127.0.0.1:11211", "192.168.1.200:11211", "192.168.1.200:11211"),
            "127.0.0.1:11300": ("127.0.0.1:11300", "192.168.1.250:11211", "192.168.1.250:11211")}
    assert plan(want, have) == [("add", "127.0.0.1:11212", "192.168.1.201:11211"),
                                ("del", "127.0.0.1:11300", "192.168.1.250:11211")]
    # a listener whose backend changed is replaced (one listen address holds one pair), after
    # the adds and before the removals
    want2 = [("127.0.0.1:11211", "192.168.1.209:11211"), ("127.0.0.1:11213", "10.0.0.1:11211")]
    assert plan(want2, have) == [
        ("add", "127.0.0.1:11213", "10.0.0.1:11211"),
        ("del", "127.0.0.1:11211", "192.168.1.200:11211"),
        ("add", "127.0.0.1:11211", "192.168.1.209:11211"),
        ("del", "127.0.0.1:11300", "192.168.1.250:11211")]
    assert plan(want, {k: have[k] for k in ["127.0.0.1:11211"]}) == [
        ("add", "127.0.0.1:11212", "192.168.1.201:11211")]
    assert plan([], {}) == []


class Load:
    """One client on one persistent connection: set then get, again and again; every reply
    is checked and nothing may fail."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.settimeout(10)
        self.file = self.sock.makefile("rb")
        self.ok = 0
        self.errors: list[str] = []
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        n = 0
        try:
            while not self.halt.is_set():
                n += 1
                val = b"v%d" % n
                self.sock.sendall(b"set load 0 0 %d\r\n%s\r\nget load\r\n" % (len(val), val))
                got = [self.file.readline() for _ in range(4)]
                want = [b"STORED\r\n", b"VALUE load 0 %d\r\n" % len(val), val + b"\r\n",
                        b"END\r\n"]
                if got != want:
                    self.errors.append(repr(got))
                    return
                self.ok += 1
        except OSError as e:
            self.errors.append(f"{e.__class__.__name__}: {e}")

    def wait_ok(self, more: int, timeout: float = 20.0) -> None:
        target = self.ok + more
        deadline = time.monotonic() + timeout
        while self.ok < target and not self.errors:
            assert time.monotonic() < deadline, "the load makes no progress"
            time.sleep(0.02)

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(30)
        self.file.close()
        self.sock.close()


def test_apply_pair_under_load_drops_no_request_on_untouched_pairs(world):
    # one memcached per pair: two pairs of one instance never share a server (§3.5)
    mc1, mc2, mc3 = world.memcached(), world.memcached(), world.memcached()
    a, b, c = free_port(), free_port(), free_port()
    world.register(0, (a, mc1.port), (b, mc3.port))
    assert world.px("start", "memcache").returncode == 0
    wait_serving(a)
    wait_serving(b)
    world.add_pair(0, c, mc2.port)  # registered, not yet live
    world.del_pair(0, b, mc3.port)  # live, no longer registered
    load = Load(a)
    load.thread.start()
    try:
        load.wait_ok(20)
        r = world.px("apply", "pair")
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
        load.wait_ok(20)  # the same connection goes on after the apply
    finally:
        load.stop()
    assert load.errors == [] and load.ok >= 40
    wait_serving(c)
    assert talk(c, b"set k2 0 0 1\r\nx\r\nget k2\r\n", b"END\r\n") == \
        b"STORED\r\nVALUE k2 0 1\r\nx\r\nEND\r\n"
    assert refused(b)
    assert world.px("status", "memcache").stdout == f"""\
---
status: running
id: 0
css: cell0
name space: space0
pair:
    - ["127.0.0.1", {a}, "127.0.0.1", {mc1.port}]
    - ["127.0.0.1", {c}, "127.0.0.1", {mc2.port}]
"""
    r = world.px("apply", "pair", "--id", "0")  # in line already: nothing to do
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_apply_pair_skips_stopped_instances_and_reports_failed_adds(world):
    mc, mc2 = world.memcached(), world.memcached()
    world.register(0, (free_port(), mc.port))
    r = world.px("apply", "pair")  # not running: skipped silently
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert world.pid(0) is None
    assert world.px("start", "memcache").returncode == 0
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        world.add_pair(0, busy.getsockname()[1], mc2.port)
        r = world.px("apply", "pair")
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == "WARNING: not be able to add a pair (id=0)\n"
    finally:
        busy.close()
