"""Several administrators on one PAXOS_HOME: compare-and-swap appends never lose an event."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paxoslog.store.gitlog import EventLog
from paxoslog.store.history import verify
from tests.conftest import PAXOS, Paxos, etc_snapshot, paxos_env
from tests.store.test_local_etc import dead_pid, head_files

ROOT = Path(__file__).resolve().parent.parent.parent


def _appender(home: Path, prefix: str, count: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.appender", str(home), prefix, str(count), *extra],
        cwd=ROOT, env=paxos_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def test_eight_writers_fifty_events_each(paxos_home: Path) -> None:
    start = time.time() + 2.0
    procs = [_appender(paxos_home, f"w{n}", 50, str(start)) for n in range(8)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.count("acked") == 50
    log = EventLog(str(paxos_home / "var" / "paxoslog.git"))
    assert len(log.history()) == 400
    assert verify(log).problems == []
    hosts = Paxos(paxos_home).ok("list", "host").split()
    assert sorted(hosts) == sorted(f"w{n}-{i}" for n in range(8) for i in range(50))
    # etc/ shows HEAD even though eight writers raced to render it
    conf = (paxos_home / "etc" / "paxos_memcache.conf").read_bytes()
    assert conf == log.files(log.commit(log.head()))["etc/paxos_memcache.conf"]


def test_kill_9_at_random_moments_loses_nothing_acknowledged(paxos_home: Path) -> None:
    rng = random.Random(1234)
    log = EventLog(str(paxos_home / "var" / "paxoslog.git"))
    kills = 0
    for round_ in range(60):
        proc = _appender(paxos_home, f"r{round_}", 1000)
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        kills += proc.returncode == -signal.SIGKILL
        acked = [int(line.split()[1]) for line in out.splitlines() if line.startswith("acked")]
        # the log always opens and replays cleanly
        result = verify(log)
        assert result.problems == [], result.problems
        head_rev = len(log.history())
        if acked:
            # every acknowledged event is there; at most the one in flight was added after it
            assert acked[-1] <= head_rev <= acked[-1] + 1
    assert kills >= 50
    # and the tool keeps working on the same home afterwards
    px = Paxos(paxos_home)
    px.ok("register", "host", "after-the-storm")
    assert px.ok("verify").endswith("status: ok\n")  # and no warning: leftovers were swept
    fsck = _fsck(paxos_home)
    assert (fsck.returncode, fsck.stderr) == (0, "")
    assert etc_snapshot(paxos_home) == head_files(paxos_home)
    assert _temp_files(paxos_home) == []


# kill -9 at a chosen moment (issue 7, item 10) ---------------------------------------------------

def _fsck(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", str(home / "var" / "paxoslog.git"), "fsck",
                           "--strict", "--no-dangling", "--no-progress"],
                          capture_output=True, text=True, timeout=60)


def _temp_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith(".tmp-")))


@pytest.mark.parametrize("point,leftover", [
    ("object-written", "stale temporary file var/paxoslog.git/objects/paxos-tmp/"),
    ("ref-moved", "etc/ differs from HEAD: etc/paxos_memcache.conf differs"),
    ("etc-temp-written", "stale temporary file etc/.tmp-"),
])
def test_the_next_writer_cleans_what_a_kill_9_left(seeded: Paxos, point: str,
                                                   leftover: str) -> None:
    home = seeded.home
    crashed = subprocess.run([PAXOS, "register", "host", "crashed"], capture_output=True,
                             env={**seeded.env, "PAXOS_TEST_CRASH_AT": point}, timeout=60)
    assert crashed.returncode == -signal.SIGKILL
    proc = seeded("verify")
    assert proc.returncode == 0 and "status: ok" in proc.stdout  # the log itself is sound
    assert leftover in proc.stdout and f"WARNING: {leftover}" in proc.stderr
    seeded.ok("register", "host", "next")
    fsck = _fsck(home)
    assert (fsck.returncode, fsck.stdout, fsck.stderr) == (0, "", "")
    assert etc_snapshot(home) == head_files(home)
    assert _temp_files(home) == []
    assert seeded.ok("verify").endswith("status: ok\n")
    hosts = seeded.ok("list", "host").split()
    assert "next" in hosts and ("crashed" in hosts) == (point != "object-written")


def test_replay_sweeps_temp_objects_an_older_build_left_in_the_store(seeded: Paxos) -> None:
    home = seeded.home
    pid = dead_pid()
    objects = home / "var" / "paxoslog.git" / "objects"
    legacy = objects / "ab" / f"{'c' * 38}.{pid}.tmp"
    legacy.parent.mkdir(exist_ok=True)
    legacy.write_bytes(b"half an object")
    assert "bad sha1 file" in _fsck(home).stderr
    proc = seeded("verify")
    assert proc.returncode == 0
    assert f"stale temporary file var/paxoslog.git/objects/ab/{legacy.name}" in proc.stdout
    assert f"var/paxoslog.git/objects/ab/{legacy.name}" in seeded.ok("replay")
    assert not legacy.exists()
    assert _fsck(home).returncode == 0 and _fsck(home).stderr == ""
