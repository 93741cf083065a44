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


def _interrupt(rt, hung: str, args: list[str], env: dict, ready: list[bytes],
               wait: float) -> tuple[float, str]:
    """Run `paxos ARGS` with stderr on a terminal while host `hung` hangs (its sshd
    stopped), send Ctrl-C once every `ready` line was printed: (seconds from
    Ctrl-C to exit, terminal text)."""
    leader, follower = pty.openpty()
    with rt.cluster.hung(hung):
        proc = subprocess.Popen([PAXOS, *args], env=env, stdout=subprocess.PIPE,
                                stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        try:
            seen = _read_until(leader, ready, time.monotonic() + wait)
            start = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
            elapsed = time.monotonic() - start
            rest = _read_until(leader, [b"WARNING: interrupted!"], time.monotonic() + 5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(leader)
    text = (seen + rest).decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    assert proc.stdout.read() == b""
    return elapsed, text


@pytest.mark.parametrize("verb", ["status", "start", "stop"])
def test_ctrl_c_with_a_hung_member_host(rt, verb):
    rt.setup()
    a, b, c = (h.addr for h in rt.members)
    # the two live hosts answer the state round first
    elapsed, text = _interrupt(rt, b, [verb, "css"], rt.env,
                                      [f"{a}: ok".encode(), f"{c}: ok".encode()], 60)
    assert elapsed < 1.0, elapsed
    lines = text.replace("\r\n", "\n").splitlines()
    assert sorted(lines[:2]) == sorted([f"{a}: ok", f"{c}: ok"]), lines
    first, second = (line.split(":")[0] for line in lines[:2])
    assert lines[2:] == [f"interrupted: finished: {first} (ok), {second} (ok); "
                         f"not finished: {b}", "WARNING: interrupted!"]
    # nothing was started: the state round never ended
    assert all(rt.pid(i) is None for i in range(3))


def test_ctrl_c_of_install_with_a_hung_host(rt):
    rt.register()
    hung = rt.members[1].addr
    live = [h.addr for h in rt.hosts if h.addr != hung]
    # the hosts were installed by this build already (tests/agent_hosts.py)
    elapsed, text = _interrupt(rt, hung, ["install"], {**rt.env, "COLUMNS": "200"},
                                      [f"{h}: unchanged".encode() for h in live], 120)
    assert elapsed < 1.0, elapsed
    assert f"; not finished: {hung}\r\n" in text, text
    for h in live:
        assert f"{h} (unchanged)" in text
