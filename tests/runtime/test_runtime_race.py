"""Two admins starting the same member at once (issue 9): the agent's per-target lock lets one
win; the other admin gets exit 7's message as one clear line naming the host and the member.
The race is made deterministic by holding that lock here, as the winning admin's agent does
while it starts the member (nodes/agent/locks.py: flock LOCK_EX on
~/run/paxos-node-css-<cell>-<no>.lock)."""

from __future__ import annotations

import fcntl
import os
import pwd

from tests.runtime.rt_hosts import CELL, RtCell


def hold_lock(rt: RtCell, no: int) -> int:
    """The other admin's agent, busy with member `no`: its lock file taken (owned by the
    service user, as the agent creates it)."""
    path = rt.members[no].home / "run" / f"paxos-node-css-{CELL}-{no}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    pw = pwd.getpwnam("paxos")
    os.fchown(fd, pw.pw_uid, pw.pw_gid)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_second_admin_gets_the_lock_message(rt):
    rt.setup()
    assert rt("start", "css").returncode == 0
    rt.wait_one_leader()
    assert rt("stop", "css").returncode == 0
    addr = rt.members[0].addr
    fd = hold_lock(rt, 0)
    try:
        p = rt("start", "css")
        assert p.returncode == 1
        assert p.stderr == (f"ERROR: {addr}: {CELL}#0 is busy: another paxos-node command "
                            "(another admin?) holds its lock; start not done, try again when "
                            "it is finished\n")
        assert rt.pid(0) is None  # the loser started nothing
        assert rt.pid(1) is not None and rt.pid(2) is not None  # the other members did start
        p = rt("stop", "css", "--force")
        assert p.returncode == 1
        assert f"WARNING: {addr}: {CELL}#0 is busy: " in p.stderr and "stop not done" in p.stderr
    finally:
        os.close(fd)
    # the lock released (the winner done): the same command goes through
    p = rt("start", "css")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    servers = rt.wait_one_leader()
    assert [s["status"] for s in servers] == ["running"] * 3
