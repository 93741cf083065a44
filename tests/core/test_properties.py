"""Property tests on random command sequences against a real git event log."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paxoslog.core.events import fold
from paxoslog.store.gitlog import EventLog
from paxoslog.store.history import verify
from tests.inproc import InProc

HOSTS = ["h1", "h2", "10.0.0.1", "localhost"]
CELLS = ["c1", "c2"]
ENDPOINTS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.1:2", "h1:5", "h2:5", "h1:6"]
ADDRS = ["127.0.0.1", "localhost", "10.0.0.9", "10.0.0.8"]

host_cmd = st.one_of(
    st.builds(lambda h, u, p, g: f"register host {u}{p}{g}{h}", st.sampled_from(HOSTS),
              st.sampled_from(["", "-u bob ", "--use-ssh-config "]),
              st.sampled_from(["", "-p 2022 ", "-p 0 "]), st.sampled_from(["", "-g a:b ", "-g c1 "])),
    st.builds(lambda h: f"unregister host {h}", st.sampled_from(HOSTS)),
    st.builds(lambda h, o: f"modify host {o}{h}", st.sampled_from(HOSTS),
              st.sampled_from(["-u alice ", "-p 22 ", "-g x ", "--use-ssh-config ",
                               "--not-use-ssh-config ", "-u paxos "])),
)
css_cmd = st.one_of(
    st.builds(lambda c, eps: f"register css -n {c} " + " ".join(eps), st.sampled_from(CELLS),
              st.lists(st.sampled_from(ENDPOINTS), min_size=6, max_size=6)),
    st.builds(lambda c: f"unregister css -n {c}", st.sampled_from(CELLS)),
)
memcache_cmd = st.one_of(
    st.builds(lambda c, i, o: f"register memcache -c {c} {i}{o}", st.sampled_from(CELLS),
              st.sampled_from(["", "-i 0 ", "-i 3 "]),
              st.sampled_from(["", "-N ns1 ", "-W 4 -S", "-I 10 -s -C 5 -E 6"])),
    st.builds(lambda i: f"unregister memcache -i {i}", st.integers(0, 4)),
    st.builds(lambda i, o: f"modify memcache -i {i} {o}", st.integers(0, 4),
              st.sampled_from(["-W 2", "-N ns2", "-c c1", "-c c2", "-S"])),
)
pair_cmd = st.builds(
    lambda verb, i, a, p, ca, cp: f"{verb} pair -i {i} -a {a}{p}{ca}{cp}",
    st.sampled_from(["register", "register", "unregister"]), st.integers(0, 3),
    st.sampled_from(ADDRS), st.sampled_from(["", " -p 11212"]),
    st.sampled_from(["", " -A localhost", " -A 10.0.0.7"]), st.sampled_from(["", " -P 11300"]),
)
command = st.one_of(host_cmd, css_cmd, memcache_cmd, pair_cmd, st.just("undo"))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def _fast_appends(monkeypatch: pytest.MonkeyPatch) -> None:
    # Power-loss durability is not what these properties are about; the append order is the same.
    monkeypatch.setenv("PAXOS_FSYNC", "0")


def _same(a, b) -> bool:
    return (a.hosts, a.cells, a.memcaches) == (b.hosts, b.cells, b.memcaches)


@SETTINGS
@given(st.lists(command, min_size=1, max_size=25))
def test_replay_rebuilds_every_commit(commands: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        px = InProc(Path(tmp))
        for line in commands:
            code, _, err = px.run(line)
            assert code in (0, 1), (line, err)
            assert "Traceback" not in err
        log = EventLog(px.session.home.repo)
        result = verify(log)
        assert result.problems == []
        events = []
        for sha in log.history():
            events.append(log.event(log.commit(sha)))
            assert fold(events) == log.topology(sha)
        assert fold(events) == px.head()[2]


@SETTINGS
@given(st.lists(command, min_size=1, max_size=20), st.data())
def test_undo_restores_the_previous_topology(commands: list[str], data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        px = InProc(Path(tmp))
        for line in commands:
            before = px.head()
            code, _, _ = px.run(line)
            after = px.head()
            if code != 0 or after[0] == before[0] or line == "undo":
                continue
            if data.draw(st.booleans()):
                code, out, err = px.run("undo")
                assert code == 0, err
                assert _same(px.head()[2], before[2])
                # the id counter never goes back, so an id is never reused
                assert px.head()[2].next_memcache_id >= after[2].next_memcache_id


@SETTINGS
@given(st.lists(command, min_size=1, max_size=20), st.data())
def test_revert_equals_the_topology_at_rev(commands: list[str], data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        px = InProc(Path(tmp))
        for line in commands:
            px.run(line)
        log = EventLog(px.session.home.repo)
        history = log.history() if log.exists() else []
        rev = data.draw(st.integers(0, len(history)))
        code, _, err = px.run(f"revert {rev}")
        assert code == 0, err
        target = log.topology(history[rev - 1]) if rev else None
        head = px.head()[2]
        if target is None:
            assert (head.hosts, head.cells, head.memcaches) == ((), (), ())
        else:
            assert _same(head, target)
        assert verify(log).problems == []
