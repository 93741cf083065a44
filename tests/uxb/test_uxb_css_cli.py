"""`paxos-css-cli` (issue 12 item 6): argparse sub-command help, an unknown command refused at
once with exit 2, `status` exit 3 when no member answers, the cell file found under --home or
$PAXOS_HOME."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "nodes.css.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None,
         timeout: float = 30) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("PAXOS_") and k != "HOME"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, "HOME": "/nonexistent", **(env or {})}, cwd=ROOT)


def _dead_ports(n: int) -> list[int]:
    """Loopback TCP ports with nothing listening (bound then closed)."""
    out = []
    for _ in range(n):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            out.append(s.getsockname()[1])
    return out


def _cell_home(tmp_path: Path, cell: str = "cellx") -> Path:
    home = tmp_path / "home"
    (home / "etc" / "cell").mkdir(parents=True)
    lines = [f"{no} 127.0.0.1 {u} 127.0.0.1 {t}\n"
             for no, (u, t) in enumerate(zip(_dead_ports(3), _dead_ports(3), strict=True))]
    (home / "etc" / "cell" / f"{cell}.conf").write_text("".join(lines))
    return home


def test_sub_command_help():
    r = _run("--help")
    assert r.returncode == 0
    for word in ("status", "get", "put", "lock", "remove-learner", "gen-key", "abort-join"):
        assert word in r.stdout
    r = _run("lock", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: paxos-css-cli lock")
    assert "--hold" in r.stdout


def test_unknown_command_exits_2_at_once():
    start = time.monotonic()
    r = _run("--members", "127.0.0.1:9", "frobnicate", timeout=30)
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr
    assert time.monotonic() - start < 5  # was: a 10 s request timeout first
    r = _run("--members", "127.0.0.1:9", "get")  # a missing argument too
    assert r.returncode == 2 and "NAME" in r.stderr


def test_status_exits_3_when_no_member_answers(tmp_path):
    home = _cell_home(tmp_path)
    r = _run("--home", str(home), "--cell", "cellx", "status")
    assert r.returncode == 3, r.stderr
    docs = json.loads(r.stdout)
    assert [d["running"] for d in docs] == [False, False, False]
    assert "no member of cell cellx answered" in r.stderr
    assert not (home / "data").exists()  # a status probe creates nothing


def test_config_found_under_paxos_home(tmp_path):
    home = _cell_home(tmp_path)
    r = _run("--cell", "cellx", "status", env={"PAXOS_HOME": str(home)})
    assert r.returncode == 3, r.stderr
    assert len(json.loads(r.stdout)) == 3
    # without either, the error names the file it looked for under $HOME
    r = _run("--cell", "cellx", "status")
    assert r.returncode == 2
    assert "/nonexistent/etc/cell/cellx.conf: cannot read" in r.stderr
    r = _run("--home", "relative/dir", "--cell", "cellx", "status")
    assert r.returncode == 2 and "--home" in r.stderr
    r = _run("--home", str(home), "--cell", "../cellx", "status")
    assert r.returncode == 2 and "cell name" in r.stderr


def test_members_status_exit_3(tmp_path):
    a, b = _dead_ports(2)
    r = _run("--members", f"127.0.0.1:{a},127.0.0.1:{b}", "status")
    assert r.returncode == 3, r.stderr
    assert len(json.loads(r.stdout)) == 2
    r = _run("--members", "127.0.0.1:notaport", "status")
    assert r.returncode == 2 and "--members" in r.stderr
