"""`paxos replace` end to end on real sshd hosts and real paxos-css members (admin.md §6.6):
hot replace under a continuous writer, rollback at every step before promote, failures after
it and the operator's recovery, cold replace of a killed member, an unreachable new host."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nodes.css.client import CssClient
from nodes.css.errors import CssError
from paxoslog.app.replace import Request, run
from paxoslog.app.session import Session
from paxoslog.store.home import Home
from tests.replace.replace_site import CELL, TPORT, UPORT, ReplaceSite, chown_paxos


def _address(site: ReplaceSite) -> list[str]:
    return [f"{site.new.addr}:{UPORT}", f"{site.new.addr}:{TPORT}"]


def _conf(host) -> bytes:
    return (host.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()


def _learner_gone(site: ReplaceSite) -> None:
    """The new host after a rollback: no daemon, no data directory, no join file."""
    home = site.new.home
    assert not (home / "data" / CELL / "0").exists()
    assert not (home / "etc" / "cell" / f"{CELL}.join.conf").exists()
    st = site.status(site.new.addr, 0)
    assert st is None or st["status"] != "running", st


def _cell_untouched(site: ReplaceSite, events: int, conf: bytes) -> None:
    assert site.log_count() == events
    assert (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes() == conf
    # the survivors still see a cell with no pending change and member 0 connected
    r = site.agent(site.members[1].addr, "replace", "css", CELL, "0", "--step", "check")
    assert r.ok, r
    assert r.result["replaced_connected"] is True


class Writer:
    """One client writing distinct keys without pause; every acknowledged write is kept."""

    def __init__(self, addrs: list[tuple[str, int]]) -> None:
        self.addrs, self.acked, self.failed = addrs, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with CssClient(self.addrs, request_timeout=20.0) as cl:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    await cl.write(f"k{i}", f"v{i}".encode())
                    self.acked.append(i)
                except (CssError, OSError) as e:
                    self.failed.append(f"{type(e).__name__}: {e}")

    def read_all(self) -> list[int]:
        async def go() -> list[int]:
            missing = []
            async with CssClient(self.addrs, request_timeout=20.0) as cl:
                for i in self.acked:
                    got = await cl.read(f"k{i}")
                    if got["data"] != f"v{i}".encode():
                        missing.append(i)
            return missing
        return asyncio.run(go())


def test_hot_replace_under_continuous_writes(site: ReplaceSite) -> None:
    addrs = [(h.addr, TPORT) for h in (*site.members, site.new)]
    w = Writer(addrs)
    w.thread.start()
    site.wait(lambda: len(w.acked) > 20, what="writes before the replace")
    old_id = site.status(site.members[0].addr, 0)["member_id"]
    events = site.log_count()
    p = site.paxos("replace", "-n", CELL, "-N", "0", "-a", *_address(site))
    during = len(w.acked)
    site.wait(lambda: len(w.acked) > during + 20, what="writes after the replace")
    w.stop.set()
    w.thread.join(60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert w.failed == [] and w.read_all() == []  # 0 failed, 0 lost
    assert site.log_count() == events + 1
    # the old member is retired: stopped, its data set aside under its identity
    old_home = site.members[0].home
    assert (old_home / "data" / CELL / f"0.retired-{old_id}").is_dir()
    assert not (old_home / "data" / CELL / "0").exists()
    # the new member votes and holds the full state (its log position reaches the survivors')
    where = {0: site.new.addr, 1: site.members[1].addr, 2: site.members[2].addr}
    site.wait(lambda: site.leader(where) is not None, what="one leader after the replace")

    def caught_up():
        st = {no: site.status(addr, no) for no, addr in where.items()}
        seqs = {no: e["next_sequence"] for no, e in st.items() if e}
        return len(seqs) == 3 and len(set(seqs.values())) == 1 and \
            st[0]["member_id"] != old_id and st[0]["status"] == "running" and seqs
    site.wait(caught_up, what="the new member at the survivors' position")
    # every member host and the old host hold HEAD's cell file, naming the new member
    head = (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()
    assert head.splitlines()[0] == f"0 {site.new.addr} {UPORT} {site.new.addr} {TPORT}".encode()
    for h in (*site.members, site.new):
        assert _conf(h) == head, h.addr


def test_hot_replace_of_the_leader(site: ReplaceSite) -> None:
    """The known trap: the member being replaced leads, and its address is only in the cell
    file; promote must still reach it."""
    where = {i: h.addr for i, h in enumerate(site.members)}
    # wrapped in a tuple: member 0 leading is a falsy 0
    (leader,) = site.wait(lambda: (lambda n: (n,) if n is not None else None)(
        site.leader(where)), what="a leader")
    where[leader] = site.new.addr
    p = site.paxos("replace", "-n", CELL, "-N", str(leader), "-a", *_address(site))
    assert p.returncode == 0, (p.stdout, p.stderr)
    new = site.wait(lambda: site.leader(where) is not None and site.status(
        site.new.addr, leader), what="a leader after replacing the old one")
    assert new["status"] == "running"
    head = (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()
    for h in (*site.members, site.new):
        assert _conf(h) == head


@pytest.mark.parametrize("inject", [{"ship": "after"}, {"join": "after"},
                                    {"join": "interrupt"}, {"promote": "before"}])
def test_failure_before_promote_rolls_back(site: ReplaceSite, inject) -> None:
    events = site.log_count()
    conf = (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()
    session = Session(Home(str(site.home)))
    req = Request(CELL, 0, tuple(_address(site)), False, "replace")
    report = run(session, site.ssh, req, inject=inject)
    ((step, when),) = inject.items()
    reason = "interrupted" if when == "interrupt" else "injected failure"
    assert report.exit_code == 1 and report.mode == "hot"
    assert report.message == f"{site.new.addr}: {step} failed: {reason}"
    _learner_gone(site)
    _cell_untouched(site, events, conf)
    # the operator simply runs it again, and it goes through
    report = run(session, site.ssh, req)
    assert report.exit_code == 0 and report.errors == (), report
    assert site.log_count() == events + 1


def test_failures_after_promote_are_reported_and_deploy_recovers(site: ReplaceSite) -> None:
    events = site.log_count()
    session = Session(Home(str(site.home)))
    req = Request(CELL, 0, tuple(_address(site)), False, "replace")
    report = run(session, site.ssh, req, inject={"retire": "before", "deploy": "before"})
    assert report.exit_code == 1 and report.message is None
    assert report.errors == (f"{site.members[0].addr}: retire failed: injected failure",
                             f"{CELL}: deploy failed: injected failure")
    assert site.log_count() == events + 1  # the event stands: the cell has changed
    head = (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()
    assert _conf(site.members[1]) != head
    # the operator's recovery: retire on the old host, then deploy
    r = site.agent(site.members[0].addr, "replace", "css", CELL, "0", "--step", "retire")
    assert r.ok and r.result["changed"] is True, r
    site.ok("deploy")
    for h in (*site.members, site.new):
        assert _conf(h) == head


def test_replace_to_unreachable_host_is_refused(site: ReplaceSite) -> None:
    events = site.log_count()
    conf = (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()
    site.cluster.kill(site.new.addr)
    p = site.paxos("replace", "-n", CELL, "-N", "0", "-a", *_address(site))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and site.new.addr in p.stderr, p.stderr
    _cell_untouched(site, events, conf)


def test_replace_refusals_change_nothing(site: ReplaceSite) -> None:
    events = site.log_count()
    for args, msg in [
        (["-n", "nope", "-N", "0", "-a", *_address(site)], "not found: nope"),
        (["-n", CELL, "-N", "3", "-a", *_address(site)], f"not found: server 3 of {CELL}"),
        (["-n", CELL, "-N", "0", "-a", f"{site.members[1].addr}:{UPORT}",
          f"{site.new.addr}:{TPORT}"], "the same address has been specified more than once"),
        (["-n", CELL, "-N", "0", "-a", "10.9.9.9:1", "10.9.9.9:2"], "not found: 10.9.9.9"),
        (["-n", CELL, "-N", "0", "-a", f"{site.members[0].addr}:1",
          f"{site.members[0].addr}:2"], f"member 0 of {CELL} cannot be replaced on its own "
         "host while the cell runs; stop the cell for a cold replace"),
    ]:
        p = site.paxos("replace", *args)
        assert (p.returncode, p.stderr) == (1, msg + "\n")
    # one member stopped (not NO): neither hot nor cold
    r = site.agent(site.members[2].addr, "stop", "css", CELL, "2")
    assert r.ok, r
    p = site.paxos("replace", "-n", CELL, "-N", "0", "-a", *_address(site))
    assert (p.returncode, p.stderr) == (
        1, "cannot be members change because not running servers\n")
    assert site.log_count() == events


def test_cold_replace_of_a_killed_member(site: ReplaceSite) -> None:
    events = site.log_count()
    dead = site.members[0]
    site.cluster.kill(dead.addr)  # kill -9 of the member and of its host
    for no in (1, 2):
        r = site.agent(site.members[no].addr, "stop", "css", CELL, str(no))
        assert r.ok, r
    p = site.paxos("replace", "-n", CELL, "-N", "0", "-a", *_address(site))
    assert p.returncode == 1  # member 0 is in error: only --force goes cold
    p = site.paxos("replace", "-n", CELL, "-N", "0", "-a", *_address(site), "--force")
    assert p.returncode == 0, p.stderr
    assert f"WARNING: {dead.addr}: not reachable" in p.stderr
    assert site.log_count() == events + 1
    import json
    last = json.loads(site.ok("--json", "log", "-n", "1"))[0]
    assert "replace" in json.dumps(last)
    head = (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()
    for h in (site.members[1], site.members[2], site.new):
        assert _conf(h) == head
    # the old host comes back: its member's data is set aside by a second wipe-free deploy
    site.cluster.revive(dead.addr)
    site.ok("deploy")
    assert _conf(dead) == head


def test_cold_replace_sets_old_data_aside_when_reachable(site: ReplaceSite) -> None:
    for no, h in enumerate(site.members):
        r = site.agent(h.addr, "stop", "css", CELL, str(no))
        assert r.ok, r
    p = site.paxos("replace", "-n", CELL, "-N", "0", "-a", *_address(site))
    assert p.returncode == 0, p.stderr
    data = site.members[0].home / "data" / CELL
    assert not (data / "0").exists()
    assert any(n.name.startswith("0.") for n in data.iterdir())
    head = (site.home / "etc" / "cell" / f"{CELL}.conf").read_bytes()
    for h in (*site.members, site.new):
        assert _conf(h) == head
    # the cell comes back with the new member: the survivors start from their data, the new
    # member joins as a learner and is promoted (what `start css` does for a member without
    # data in a cell that has some)
    for no in (1, 2):
        r = site.agent(site.members[no].addr, "start", "css", CELL, str(no))
        assert r.ok, r
    join = site.new.home / "etc" / "cell" / f"{CELL}.join.conf"
    join.write_bytes(head)
    chown_paxos(join)
    step = ("replace", "css", CELL, "0", "--step")
    site.wait(lambda: site.agent(site.members[1].addr, *step, "check").ok,
              what="a leader among the survivors")
    r = site.agent(site.new.addr, *step, "join", "--timeout", "60", timeout=120)
    assert r.ok, r
    r = site.agent(site.new.addr, *step, "promote", "--expect-cfg",
                   str(r.result["config_version"]), "--timeout", "30", timeout=90)
    assert r.ok, r
    where = {0: site.new.addr, 1: site.members[1].addr, 2: site.members[2].addr}
    site.wait(lambda: site.leader(where) is not None, what="one leader with the new member")
