"""`status css`, `start css` and `stop css` speak per host like deploy (on a terminal: a line as
each agent call finishes) and Ctrl-C returns at once with exit 130, saying which hosts finished,
even while one host hangs (its sshd stopped: the kernel accepts, nothing answers)."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import time

import pytest

from tests.conftest import PAXOS


def _read_until(fd: int, want: list[bytes], deadline: float) -> bytes:
    raw = b""
    while not all(w in raw for w in want):
        assert time.monotonic() < deadline, raw
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the writer closed the terminal
            break
        if not chunk:
            break
        raw += chunk
    return raw


@pytest.mark.parametrize("verb", ["status", "start", "stop"])
def test_ctrl_c_with_a_hung_member_host(rt, verb):
    rt.setup()
    a, b, c = (h.addr for h in rt.members)
    pid = int((rt.cluster.host(b).confdir / "sshd.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([PAXOS, verb, "css"], env=rt.env, stdout=subprocess.PIPE,
                                stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        # the two live hosts answer the state round first
        seen = _read_until(leader, [f"{a}: ok".encode(), f"{c}: ok".encode()],
                           time.monotonic() + 60)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        elapsed = time.monotonic() - start
        rest = _read_until(leader, [b"WARNING: interrupted!"], time.monotonic() + 5)
    finally:
        os.kill(pid, signal.SIGCONT)
        os.close(leader)
    assert proc.returncode == 130, (seen + rest).decode()
    assert elapsed < 1.0, elapsed
    text = (seen + rest).decode().replace("\r\n", "\n")
    assert "Traceback" not in text
    lines = text.splitlines()
    assert sorted(lines[:2]) == sorted([f"{a}: ok", f"{c}: ok"]), lines
    first, second = (line.split(":")[0] for line in lines[:2])
    assert lines[2:] == [f"interrupted: finished: {first} (ok), {second} (ok); "
                         f"not finished: {b}", "WARNING: interrupted!"]
    assert proc.stdout.read() == b""
    # nothing was started: the state round never ended
    assert all(rt.pid(i) is None for i in range(3))


def test_ctrl_c_of_install_with_a_hung_host(rt):
    rt.register()
    hosts = [h.addr for h in rt.hosts]
    hung = rt.members[1].addr
    pid = int((rt.cluster.host(hung).confdir / "sshd.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    leader, follower = pty.openpty()
    live = [h for h in hosts if h != hung]
    try:
        proc = subprocess.Popen([PAXOS, "install"], env={**rt.env, "COLUMNS": "200"},
                                stdout=subprocess.PIPE, stderr=follower,
                                stdin=subprocess.DEVNULL)
        os.close(follower)
        # the hosts were installed by this build already (tests/agent_hosts.py)
        seen = _read_until(leader, [f"{h}: unchanged".encode() for h in live],
                           time.monotonic() + 120)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        elapsed = time.monotonic() - start
        rest = _read_until(leader, [b"WARNING: interrupted!"], time.monotonic() + 5)
    finally:
        os.kill(pid, signal.SIGCONT)
        os.close(leader)
    assert proc.returncode == 130
    assert elapsed < 1.0, elapsed
    text = (seen + rest).decode()
    assert "Traceback" not in text
    assert f"; not finished: {hung}\r\n" in text, text
    for h in live:
        assert f"{h} (unchanged)" in text
    assert proc.stdout.read() == b""
