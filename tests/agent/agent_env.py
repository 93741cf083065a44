"""Agent test homes: one simulated host per home (etc/cell/<cell>.conf and key), the agent run
as a real process, and cleanup of every daemon it started (found by its locked pid file)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid

from nodes.css.shell.auth import generate_key
from tests.css.css_cell import free_port_pair

ENV_ARGS = "--drain-timeout 2 --recall-repeat 0.3"


def free_base() -> int:
    """A base port such that base (UDP) and base+100 (TCP) are free on 127.0.0.1-4 (the
    fourth address is the new host of a replace)."""
    return free_port_pair(4)


class AgentCell:
    """A 3-member cell whose members live in three homes (three simulated hosts)."""

    def __init__(self, root: str, cell: str = "cell0") -> None:
        self.cell = cell
        self.cell_id = uuid.uuid4().hex[:12]
        self.base = free_base()
        self.homes = [os.path.join(root, f"host{i}") for i in range(4)]
        self.conf = "".join(f"{i} 127.0.0.{i + 1} {self.base} 127.0.0.{i + 1} {self.base + 100}\n"
                            for i in range(3))
        key = os.path.join(root, "cell.key")
        generate_key(key)
        with open(key, "rb") as f:
            secret = f.read()
        self.secret = secret
        for h in self.homes:  # host3 is a spare: the new host of a replace
            d = os.path.join(h, "etc", "cell")
            os.makedirs(d)
            with open(os.path.join(d, f"{cell}.conf"), "w") as f:
                f.write(self.conf)
            fd = os.open(os.path.join(d, f"{cell}.key"), os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, secret)
            os.close(fd)

    def write_join_conf(self, home: int, no: int, host: str) -> None:
        """The admin's provisional join file: HEAD's lines with line `no` on the new host."""
        lines = self.conf.splitlines()
        lines[no] = f"{no} {host} {self.base} {host} {self.base + 100}"
        with open(os.path.join(self.homes[home], "etc", "cell", f"{self.cell}.join.conf"),
                  "w") as f:
            f.write("\n".join(lines) + "\n")

    def agent(self, no: int, *args: str, **kw: object) -> tuple[int, dict]:
        return agent(self.homes[no], *args, **kw)

    def start(self, no: int, init: bool = False) -> tuple[int, dict]:
        extra = ["--init", "--cell-id", self.cell_id] if init else []
        return self.agent(no, "start", "css", self.cell, str(no), *extra)

    def status(self, no: int, *args: str) -> tuple[int, dict]:
        return self.agent(no, "status", "css", self.cell, str(no), *args)

    def wait_one_leader(self, timeout: float = 20.0, where: dict[int, int] | None = None) -> int:
        """Poll every member through its agent until exactly one reports master; `where` maps
        a member number to the home it runs in (default: home i runs member i)."""
        where = where or {i: i for i in range(3)}
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            entries = []
            for no, home in where.items():
                code, doc = self.agent(home, "status", "css", self.cell, str(no))
                if code == 0 and doc["result"]["members"]:
                    entries.append(doc["result"]["members"][0])
            masters = [e["No."] for e in entries if e["status"] == "running" and e["master"]]
            running = [e for e in entries if e["status"] == "running"]
            last = entries
            if len(masters) == 1 and running and all(e["leader"] == masters[0]
                                                    for e in running):
                return masters[0]
            time.sleep(0.2)
        raise AssertionError(f"no single leader: {last}")

    def close(self) -> None:
        for h in self.homes:
            kill_daemons(h)


def agent(home: str, *args: str, env: dict | None = None, timeout: float = 90.0,
          fmt: str = "json") -> tuple[int, dict]:
    """Run `paxos-node --home HOME args`; return its exit code and its one document."""
    e = {**os.environ, "PAXOS_NODE_CSS_ARGS": ENV_ARGS, **(env or {})}
    argv = [sys.executable, "-m", "nodes.agent.main", "--home", home]
    if fmt != "json":
        argv += ["--format", fmt]
    p = subprocess.run([*argv, *args], env=e, capture_output=True, timeout=timeout)
    if fmt == "msgpack":
        import msgpack

        return p.returncode, msgpack.unpackb(p.stdout, raw=False)
    out = p.stdout.decode()
    assert out.count("\n") == 1, (out, p.stderr.decode())
    assert "Traceback" not in p.stderr.decode(), p.stderr.decode()
    return p.returncode, json.loads(out)


def spawn_agent(home: str, *args: str) -> subprocess.Popen:
    e = {**os.environ, "PAXOS_NODE_CSS_ARGS": ENV_ARGS}
    return subprocess.Popen([sys.executable, "-m", "nodes.agent.main", "--home", home, *args],
                            env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def daemon_pid(home: str, cell: str, no: int) -> int | None:
    """The pid of a running daemon: its pid file is locked (never ps)."""
    path = os.path.join(home, "run", f"paxos-css-{cell}-{no}.pid")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode().strip()
            return int(text) if text.isdigit() else None
        return None
    finally:
        os.close(fd)


def kill_daemons(home: str) -> None:
    run = os.path.join(home, "run")
    if not os.path.isdir(run):
        return
    for name in os.listdir(run):
        if name.startswith("paxos-css-") and name.endswith(".pid"):
            cell, no = name[len("paxos-css-"):-len(".pid")].rsplit("-", 1)
            pid = daemon_pid(home, cell, int(no))
            if pid and pid > 1:
                try:
                    fd = os.pidfd_open(pid)
                except ProcessLookupError:
                    continue
                try:
                    signal.pidfd_send_signal(fd, signal.SIGCONT)
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                finally:
                    os.close(fd)
