"""What the agent reads is hostile: a pid file or control socket that lies, and its own log
rotation under size pressure."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading

import msgpack
import pytest
from agent_env import agent

from nodes.agent import log


def serve_control(path: str, sends: list) -> socket.socket:  # type: ignore[type-arg]
    """A control socket at `path` that reads one request per connection and answers it with
    the next of `sends` (each called with the connection), in a thread; stop it by closing
    the returned socket."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen()

    def serve() -> None:
        for send in sends:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    send(conn)
                except OSError:
                    pass
    threading.Thread(target=serve, daemon=True).start()
    return srv


def _fake_member(home: str, replies: list[bytes]) -> tuple[int, socket.socket]:
    """A 'daemon' that holds the pid file lock (this test process) and answers the control
    socket with the given raw frames, one per connection."""
    run = os.path.join(home, "run")
    os.makedirs(run, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(run, "paxos-css-cell0-0.pid"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\n".encode())
    srv = serve_control(os.path.join(run, "paxos-css-cell0-0.sock"),
                        [lambda conn, raw=raw: conn.sendall(raw) for raw in replies])
    return fd, srv


def _frame(obj: object) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize("raw", [
    b"\x00\x00",  # short frame, then EOF
    struct.pack(">I", 1 << 30),  # an oversized length
    _frame([1, 2, 3]),  # not a map
    _frame({"v": 99, "t": "reply", "ok": True}),  # a future protocol
    _frame({"v": 1, "t": "reply", "ok": True, "res": "nope"}),
    _frame({"v": 1, "t": "reply", "ok": False, "err": "\x1b[31m" * 1000}),
])
def test_agent_status_of_a_lying_member_is_error(acell, raw):
    home = acell.homes[0]
    fd, srv = _fake_member(home, [raw])
    try:
        code, doc = agent(home, "status", "css", "cell0", "0")
        assert code == 0, doc
        e = doc["result"]["members"][0]
        assert e["status"] == "error" and e["pid"] == os.getpid()
        assert len(e["error"]) < 600 and "\x1b" not in e["error"]
        code, doc = agent(home, "status", "css", "cell0", "0", "--check")
        assert code == 3, doc
    finally:
        srv.close()
        os.close(fd)


def test_agent_status_with_garbage_fields(acell):
    home = acell.homes[0]
    res = {"role": ["x"], "next_seq": "7", "commit": True, "connected": [0, "1", 2, None],
           "clients": [{"host": "h" * 5000, "pid": 1, "address": [1]}, "junk"],
           "config": "v", "members": "m", "leader": 2.5, "member_id": {"a": 1}}
    fd, srv = _fake_member(home, [_frame({"v": 1, "t": "reply", "ok": True, "res": res})] * 2)
    try:
        code, doc = agent(home, "status", "css", "cell0", "0")
        assert code == 0, doc
        e = doc["result"]["members"][0]
        assert e["status"] == "running" and e["role"] is None and e["next_sequence"] is None
        assert e["commit"] is None and e["connected"] == [2] and e["master"] is False
        assert e["leader"] is None and e["config_version"] is None and e["member_id"] is None
        assert all(len(a) <= 255 for a in e["client_list"])
        code, doc = agent(home, "status", "css", "cell0", "0", "--check")
        assert code == 3
    finally:
        srv.close()
        os.close(fd)


def test_agent_pid_file_symlink_refused(acell, tmp_path):
    home = acell.homes[0]
    os.makedirs(os.path.join(home, "run"), mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_text("1\n")
    os.symlink(target, os.path.join(home, "run", "paxos-css-cell0-0.pid"))
    code, doc = agent(home, "stop", "css", "cell0", "0")
    assert code == 1 and "pid file" in doc["error"]["message"], doc
    assert target.read_text() == "1\n"


def test_agent_log_rotates_at_10_mib(tmp_path):
    d = str(tmp_path)
    with open(os.path.join(d, "paxos-node.log"), "wb") as f:
        f.write(b"x" * (log.MAX_BYTES - 10))
    for i in range(log.KEEP + 2):
        log.append(d, log.line("INFO", f"cmd {i}", {"exit": 0}))
        with open(os.path.join(d, "paxos-node.log"), "ab") as f:
            f.write(b"y" * log.MAX_BYTES)  # force the next append to rotate
    names = sorted(os.listdir(d))
    assert names == ["paxos-node.log"] + [f"paxos-node.log.{i}" for i in range(1, log.KEEP + 1)]
    # each append found the file full: it rotated first, so its line starts the new file
    with open(os.path.join(d, "paxos-node.log"), "rb") as f:
        assert f.readline().split()[3:5] == [b"cmd", str(log.KEEP + 1).encode()]
    with open(os.path.join(d, "paxos-node.log.1"), "rb") as f:
        assert f.readline().split()[3:5] == [b"cmd", str(log.KEEP).encode()]
    ln = log.line("INFO", "a\nb", {"k": "v w\x00", "n": None})
    assert ln.count("\n") == 1 and "k=v_w_" in ln and "n=none" in ln


def test_agent_stop_accepted_but_no_exit_times_out_5(acell):
    """A member that accepts the shutdown but keeps its lock: exit 5 after --timeout, and
    nothing is signalled without --force (the 'daemon' here is this test process)."""
    home = acell.homes[0]
    ok = _frame({"v": 1, "t": "reply", "ok": True, "res": {"role": "follower", "leader": None}})
    fd, srv = _fake_member(home, [ok, ok])
    try:
        code, doc = agent(home, "stop", "css", "cell0", "0", "--timeout", "1")
        assert code == 5 and doc["error"]["code"] == "timeout", doc
        assert "still running after 1 s" in doc["error"]["message"]
        assert os.path.exists(os.path.join(home, "run", "paxos-css-cell0-0.pid"))
    finally:
        srv.close()
        os.close(fd)
