"""Every exit code of spec nodes.md §4.1 that needs no running cell, and the document shape."""

from __future__ import annotations

import fcntl
import os

import pytest
from agent_env import agent

COMMIT = "0123456789abcdef0123456789abcdef01234567"
STAMP = (f'commit: "{COMMIT}"\nrev: 3\nauthor: "Op <op@example.invalid>"\n'
         'time: "2026-01-02T03:04:05+00:00"\nfiles:\n  "etc/cell/cell0.conf": "sha256:'
         + "a" * 64 + '"\n')


def test_agent_version_document(acell):
    code, doc = agent(acell.homes[0], "version")
    assert code == 0 and doc["ok"] is True and doc["deployed"] is None
    assert set(doc) == {"ok", "command", "host", "deployed", "result"}
    assert doc["result"]["agent"] and doc["result"]["css"] and doc["result"]["protocol"] == 1
    code, doc = agent(acell.homes[0], "version", fmt="msgpack")
    assert code == 0 and doc["ok"] is True


def test_agent_deployed_stamp_strict(acell):
    home = acell.homes[0]
    with open(os.path.join(home, "etc", "DEPLOYED"), "w") as f:
        f.write(STAMP)
    code, doc = agent(home, "version")
    assert code == 0 and doc["deployed"] == COMMIT
    code, doc = agent(home, "wipe", "css", "cell0", "0", "--yes")  # mutating: logged
    assert code == 0 and doc["deployed"] == COMMIT and doc["result"]["changed"] is False
    with open(os.path.join(home, "log", "paxos-node.log")) as f:
        (ln,) = f.read().splitlines()
    assert "wipe css cell0 0 --yes" in ln and f"deployed={COMMIT}" in ln and "exit=0" in ln
    with open(os.path.join(home, "etc", "DEPLOYED"), "w") as f:
        f.write(STAMP.replace("rev: 3", "rev: &a 3\nextra: *a"))
    code, doc = agent(home, "version")
    assert code == 6 and "etc/DEPLOYED" in doc["error"]["message"]
    # looking and stopping stay possible with a bad stamp
    code, doc = agent(home, "status", "css", "cell0")
    assert code == 0 and doc["deployed"] is None and "etc/DEPLOYED" in doc["warnings"][0]
    code, doc = agent(home, "wipe", "css", "cell0", "0", "--yes")
    assert code == 6 and "etc/DEPLOYED" in doc["error"]["message"]


@pytest.mark.parametrize("args", [
    [], ["bogus"], ["start"], ["start", "css"], ["start", "css", "cell0"],
    ["start", "css", "../x", "0"], ["start", "css", "cell0", "x"],
    ["start", "css", "cell0", "0", "--init"], ["start", "css", "cell0", "0", "--cell-id", "a"],
    ["start", "css", "cell0", "0", "--init", "--cell-id", "a/b"],
    ["stop", "css", "cell0", "0", "--timeout", "-1"], ["stop", "css", "cell0", "0", "--zap"],
    ["stop", "css", "cell0", "0", "--comment", "a\nb"], ["status", "css", "cell0", "7"],
    ["wipe", "css", "cell0", "0"], ["--help"], ["--format", "xml", "version"],
    ["replace", "css", "cell0", "0", "--step", "explode"],
])
def test_agent_usage_errors_exit_2(acell, args):
    code, doc = agent(acell.homes[0], *args)
    assert code == 2, doc
    assert doc["ok"] is False and doc["error"]["code"] == "usage" and doc["error"]["message"]
    assert "\n" not in doc["error"]["message"]


def test_agent_bad_home_is_a_usage_error(tmp_path):
    code, doc = agent(str(tmp_path / "nope"), "version")
    assert code == 2 and "--home" in doc["error"]["message"]


@pytest.mark.parametrize("line2,needle", [
    ("1 127.0.0.2 x 127.0.0.2 5", ":2: port 'x'"),
    ("1 127.0.0.2 5", ":2: expected 5 fields"),
    ("1 127.0.0.2:5 5 127.0.0.2 6", ":2: '127.0.0.2:5' is neither an IP address nor a host name"),
    ("1 127.0.0.2 5 127.0.0.2 6 7", ":2: expected 5 fields"),
    ("0 127.0.0.2 5 127.0.0.2 6", ":2: duplicate member number 0"),
    ("1 127.0.0.2 5 127.0.0.2 70000", ":2: port 70000 out of range"),
    ("1 127.0.0.2 5 127.0.0.2 6\x07", ":2: control characters"),
])
def test_agent_corrupt_cell_file_exit_6_names_file_and_line(acell, line2, needle):
    home = acell.homes[0]
    conf = os.path.join(home, "etc", "cell", "cell0.conf")
    lines = acell.conf.splitlines()
    lines[1] = line2
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    for args in (["start", "css", "cell0", "0", "--init", "--cell-id", "abc"],
                 ["stop", "css", "cell0", "0"], ["status", "css", "cell0"]):
        code, doc = agent(home, *args)
        assert code == 6, doc
        assert doc["error"]["code"] == "bad_etc"
        assert doc["error"]["message"].startswith(conf + needle), doc["error"]["message"]
    assert not os.path.exists(os.path.join(home, "data"))


def test_agent_cell_file_hostile_shapes(acell):
    home = acell.homes[0]
    conf = os.path.join(home, "etc", "cell", "cell0.conf")
    with open(conf, "wb") as f:
        f.write(b"0 127.0.0.1 5 127.0.0.1 6\n\xff\xfe\n")
    code, doc = agent(home, "status", "css", "cell0")
    assert code == 6 and f"{conf}:2: not UTF-8" in doc["error"]["message"]
    with open(conf, "wb") as f:
        f.write(b"# x\n" * 20000)
    code, doc = agent(home, "status", "css", "cell0")
    assert code == 6 and "larger than" in doc["error"]["message"]
    os.unlink(conf)
    os.symlink("/etc/passwd", conf)
    code, doc = agent(home, "status", "css", "cell0")
    assert code == 6 and conf in doc["error"]["message"]
    os.unlink(conf)
    code, doc = agent(home, "status", "css", "cell0")
    assert code == 6 and f"{conf}: missing" in doc["error"]["message"]


def test_agent_missing_or_open_key_exit_6(acell):
    home = acell.homes[0]
    key = os.path.join(home, "etc", "cell", "cell0.key")
    os.chmod(key, 0o644)
    code, doc = agent(home, "start", "css", "cell0", "0", "--init", "--cell-id", "abc")
    assert code == 6 and key in doc["error"]["message"]
    os.unlink(key)
    code, doc = agent(home, "start", "css", "cell0", "0", "--init", "--cell-id", "abc")
    assert code == 6 and key in doc["error"]["message"]
    assert not os.path.exists(os.path.join(home, "data"))


def test_agent_target_lock_held_exit_7(acell):
    home = acell.homes[0]
    os.makedirs(os.path.join(home, "run"), mode=0o700)
    path = os.path.join(home, "run", "paxos-node-css-cell0-0.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for args in (["start", "css", "cell0", "0", "--init", "--cell-id", "abc"],
                     ["stop", "css", "cell0", "0"], ["wipe", "css", "cell0", "0", "--yes"]):
            code, doc = agent(home, *args)
            assert code == 7, doc
            assert doc["error"]["code"] == "locked" and "paxos-node" in doc["error"]["message"]
        # another member's lock is independent, and status takes no lock
        code, doc = agent(home, "status", "css", "cell0")
        assert code == 0
    finally:
        os.close(fd)
    assert not os.path.exists(os.path.join(home, "data"))
    with open(os.path.join(home, "log", "paxos-node.log")) as f:
        assert sum("exit=7" in ln for ln in f) == 3


def test_agent_stale_pid_file_removed(acell):
    home = acell.homes[0]
    os.makedirs(os.path.join(home, "run"), mode=0o700)
    pid_path = os.path.join(home, "run", "paxos-css-cell0-0.pid")
    with open(pid_path, "w") as f:
        f.write("1\n")  # pid 1 is alive, but nobody holds the lock: stale
    code, doc = agent(home, "status", "css", "cell0", "0")
    assert code == 0 and doc["result"]["members"][0]["status"] == "stopped"
    assert doc["result"]["members"][0]["pid"] is None
    code, doc = agent(home, "stop", "css", "cell0", "0")
    assert code == 0 and doc["result"]["changed"] is False
    assert not os.path.exists(pid_path)
    with open(pid_path, "w") as f:
        f.write("garbage")
    code, doc = agent(home, "start", "css", "cell0", "0", "--init", "--cell-id", acell.cell_id)
    assert code == 0 and doc["result"]["changed"] is True, doc
    with open(pid_path) as f:
        assert f.read().strip() == str(doc["result"]["pid"])


def test_agent_console_script(acell):
    """The admin runs it by name over SSH: the installed `paxos-node` script."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = str(Path(sys.executable).with_name("paxos-node"))
    p = subprocess.run([script, "--home", acell.homes[0], "version"], capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout)["ok"] is True
    assert p.stderr == b""
