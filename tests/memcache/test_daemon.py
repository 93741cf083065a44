"""The daemon: options, pid file and its lock, control socket, clean stop."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from mc_procs import ProxyProc, free_port, talk

from nodes.css.wire import frame, read_frame, unpack


def run_cli(home: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodes.memcache.main", *args],
                          env={**os.environ, "HOME": home}, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("args,code,msg", [
    (["1", "cell0", "space0", "--workers", "0"], 2, "--workers must be 1..256"),
    (["1", "cell0", "space0", "--pair", "nonsense"], 2, "expected CHOST:CPORT=SHOST"),
    (["1", "cell0", "space0", "--pair", "127.0.0.1:99999=127.0.0.1"], 2, "port must be"),
    (["1", "cell0", "space0", "-s", "maybe"], 2, "is not on/off"),
    (["1", "cell0", "bad space"], 2, "bad name space"),
    (["1", "cell0", "bad\x1b[2J"], 2, "bad name space"),
    (["1", "cell0", "n" * 129], 2, "bad name space"),
    (["1", "nocell", "space0"], 6, "nocell.conf: cannot read"),
])
def test_bad_options_one_line_no_traceback(tmp_path, args, code, msg):
    r = run_cli(str(tmp_path), *args)
    assert r.returncode == code
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()  # nothing touched


async def ctl(path: str, t: str, **args) -> dict:
    r, w = await asyncio.open_unix_connection(path)
    try:
        w.write(frame({"t": t, **args}))
        return unpack(await read_frame(r))
    finally:
        w.close()


def test_pid_file_control_socket_and_clean_stop(fenv):
    p = fenv.proxy
    run = os.path.join(fenv.home, "run")
    pidfile, sock = (os.path.join(run, f"paxos-memcache-{p.id}.{x}") for x in ("pid", "sock"))
    assert open(pidfile).read().strip() == str(p.proc.pid)
    fd = os.open(pidfile, os.O_RDONLY)
    with pytest.raises(BlockingIOError):  # held while running
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    dup = run_cli(fenv.home, str(p.id), "cell0", "space0")
    assert dup.returncode == 1 and "already running" in dup.stderr

    assert asyncio.run(ctl(sock, "ping"))["res"] == "pong"
    st = asyncio.run(ctl(sock, "status"))["res"]
    assert st["id"] == p.id and st["session"]["valid"] and st["name_space"] == "space0"
    assert st["pairs"][0]["backend"] == "up"
    port = free_port()
    pair = {"client": f"127.0.0.1:{port}", "server": f"127.0.0.1:{fenv.mc.port}"}
    assert asyncio.run(ctl(sock, "add_pair", **pair))["ok"]
    assert asyncio.run(ctl(sock, "add_pair", **pair))["err"] == "EEXIST"
    assert talk(port, b"set cp 0 0 1\r\nx\r\nget cp\r\n", b"END\r\n").endswith(b"x\r\nEND\r\n")
    assert len(asyncio.run(ctl(sock, "list_pairs"))["res"]) == 2
    assert asyncio.run(ctl(sock, "del_pair", **pair))["ok"]
    assert asyncio.run(ctl(sock, "del_pair", **pair))["err"] == "ENOENT"
    with pytest.raises(ConnectionRefusedError):  # listener closed
        talk(port, b"get cp\r\n")
    assert asyncio.run(ctl(sock, "bogus"))["err"] == "EINVAL"

    # W held by p: a clean stop writes the metadata first, so another proxy sees the value
    assert talk(p.port, b"set kept 0 0 4\r\nkept\r\n", b"\r\n") == b"STORED\r\n"
    assert asyncio.run(ctl(sock, "stop"))["ok"]
    assert p.proc.wait(30) == 0
    assert not os.path.exists(pidfile) and not os.path.exists(sock)
    q = ProxyProc(fenv.home, 9, "cell0", fenv.mc.port).start()
    try:
        assert talk(q.port, b"get kept\r\n", b"END\r\n") == b"VALUE kept 0 4\r\nkept\r\nEND\r\n"
    finally:
        q.kill()


def test_sigterm_stops_cleanly(fenv):
    assert fenv.proxy.stop() == 0
    assert "stopped" in fenv.proxy.log()


def test_any_rule_n_name_space_is_served_and_kept_apart(fenv):
    """Rule (N) allows any non-blank name space; `a/b` and `.` were refused by the proxy
    (start memcache failed three times). Their CSS objects are escaped, so `a/b` and `a`
    never share one."""
    from nodes.css.client import CssClient

    p, q = (ProxyProc(fenv.home, i, "cell0", fenv.mc.port, ns=ns).start()
            for i, ns in ((7, "a/b"), (8, ".")))
    try:
        for proxy in (p, q):
            assert talk(proxy.port, b"set nk 0 0 2\r\nhi\r\n", b"\r\n") == b"STORED\r\n"
            assert talk(proxy.port, b"gets nk\r\n", b"END\r\n").startswith(b"VALUE nk 0 2 ")

        async def names() -> list[str]:
            async with CssClient(fenv.cell.addrs()) as c:
                return [n for n, _v in (await c.list("PaxosMemcache/"))["names"]]
        found = asyncio.run(names())
        assert any(n.startswith("PaxosMemcache/a%2Fb/") for n in found), found
        assert any(n.startswith("PaxosMemcache/%2E/") for n in found), found
        assert not any(n.startswith(("PaxosMemcache/a/", "PaxosMemcache/./")) for n in found)
    finally:
        p.kill()
        q.kill()


def test_a_connection_burst_while_busy_is_served_at_once(fenv):
    """300 clients connect while the proxy's loop is busy (stopped for 0.15 s): the kernel
    queues every handshake, so each is answered right after the loop resumes, not after
    TCP's 1 s retry of a handshake dropped from a full listen queue (asyncio's backlog 100)."""
    port, pid = fenv.proxy.port, fenv.proxy.proc.pid

    async def one() -> float:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        try:
            w.write(b"version\r\n")
            line = await asyncio.wait_for(r.readline(), 10)
            assert line.startswith(b"VERSION "), line
            return time.monotonic()
        finally:
            w.close()

    async def go() -> list[float]:
        os.kill(pid, signal.SIGSTOP)
        try:
            tasks = [asyncio.create_task(one()) for _ in range(300)]
            await asyncio.sleep(0.15)
        finally:
            os.kill(pid, signal.SIGCONT)
        t_resume = time.monotonic()
        return [t - t_resume for t in await asyncio.gather(*tasks)]

    late = sorted(asyncio.run(go()))
    assert late[-1] < 0.6, f"slowest answer {late[-1]:.2f} s after the proxy resumed"
