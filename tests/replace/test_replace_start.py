"""`start css` after a cold replace (admin.md §6.6): the new member starts empty and catches up
from the others as a learner before voting, all through `paxos start css`."""

from __future__ import annotations

import json

from tests.replace.replace_site import CELL, TPORT, UPORT, ReplaceSite


def _long(site: ReplaceSite) -> list[dict]:
    p = site.paxos("--json", "status", "css", "--long")
    assert "Traceback" not in p.stderr and p.stdout, (p.stdout, p.stderr)
    (doc,) = json.loads(p.stdout)
    return doc["server"]


def _cold_replace_of_killed_member_0(site: ReplaceSite) -> None:
    site.cluster.kill(site.members[0].addr)  # kill -9 of the member and of its host
    for no in (1, 2):
        r = site.agent(site.members[no].addr, "stop", "css", CELL, str(no))
        assert r.ok, r
    p = site.paxos("replace", "-n", CELL, "-N", "0", "-a", f"{site.new.addr}:{UPORT}",
                   f"{site.new.addr}:{TPORT}", "--force")
    assert p.returncode == 0, p.stderr


def test_start_css_after_cold_replace_joins_the_new_member(site: ReplaceSite) -> None:
    _cold_replace_of_killed_member_0(site)
    seq = {no: site.status(site.members[no].addr, no)["next_sequence"] for no in (1, 2)}
    assert min(seq.values()) > 0, seq  # the survivors hold the cell's state

    p = site.paxos("start", "css")
    assert (p.returncode, p.stderr) == (0, ""), (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    # the learner was promoted: the join file is gone, its data directory holds a member
    assert not (site.new.home / "etc" / "cell" / f"{CELL}.join.conf").exists()
    assert (site.new.home / "data" / CELL / "0" / "MEMBER").is_file()

    def settled() -> list[dict] | None:
        servers = _long(site)
        running = [s for s in servers if s["status"] == "running"]
        seqs = {s["next_sequence"] for s in running}
        if len(running) == 3 and sum(s["master"] for s in running) == 1 and len(seqs) == 1:
            return servers
        return None
    servers = site.wait(settled, timeout=60, what="3 running, one leader, one position")
    assert servers[0]["address"] == site.new.addr
    assert servers[0]["next_sequence"] >= max(seq.values())
    # a second `start css` is a no-op
    p = site.paxos("start", "css")
    assert (p.returncode, p.stderr) == (0, "")


def test_an_empty_member_does_not_join_a_cell_without_quorum(site: ReplaceSite) -> None:
    _cold_replace_of_killed_member_0(site)
    bad = site.members[2]
    conf = bad.home / "etc" / "cell" / f"{CELL}.conf"
    conf.write_text("0 garbage\n")  # member 2 cannot start: 1 of 3 would run
    p = site.paxos("start", "css")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert f"ERROR: {site.new.addr}: {CELL}#0 has no data and cannot join: 1 of 3 members " \
           "run, 2 needed" in lines, lines
    # nothing was tried on the new host: no learner, no join file
    assert not (site.new.home / "data" / CELL / "0").exists()
    assert not (site.new.home / "etc" / "cell" / f"{CELL}.join.conf").exists()
    # repaired by a deploy (of that host: the old one is dead), the same command brings the
    # whole cell up
    site.ok("deploy", bad.addr)
    p = site.paxos("start", "css")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    site.wait(lambda: sum(s["status"] == "running" for s in _long(site)) == 3, timeout=60,
              what="3 running")
