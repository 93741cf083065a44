"""Local file problems are one line naming the path and the OS reason, exit 1, nothing changed.

The unprivileged cases run `paxos` as `nobody` (root ignores permissions): through the system
Python with this checkout and the venv's site-packages on PYTHONPATH, since the venv's Python
lives where `nobody` cannot run it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AUTHOR, Paxos

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def as_nobody(*args: str, **env: str) -> subprocess.CompletedProcess:
    site = sysconfig.get_paths()["purelib"]
    base = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "PAXOS_AUTHOR": AUTHOR,
            "PYTHONPATH": f"{ROOT}:{site}", "PYTHONDONTWRITEBYTECODE": "1"}
    base.update(env)
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", "-i",
         *(f"{k}={v}" for k, v in base.items()),
         "/usr/bin/python3", "-m", "paxoslog.cli.main", *args],
        capture_output=True, text=True, timeout=60, cwd="/")


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            out[rel] = "dir" if p.is_dir() and not p.is_symlink() else \
                hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def scratch() -> Iterator[Path]:
    # outside pytest's tmp_path, whose parents `nobody` cannot enter
    d = Path(tempfile.mkdtemp(prefix="paxos-uxa-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_read_only_home_is_one_line_naming_the_path(scratch: Path) -> None:
    home = scratch / "ro"
    home.mkdir()
    Paxos(home).ok("register", "host", "h1")
    (home / "var" / "topology.cache").unlink()  # reads would write it: they must not fail
    for p in [home, *home.rglob("*")]:
        os.chown(p, NOBODY, NOBODY, follow_symlinks=False)
        p.chmod(p.stat().st_mode & 0o555)
    before = snapshot(home)
    line = one_line(as_nobody("register", "host", "h2", PAXOS_HOME=str(home),
                              HOME=str(scratch)))
    assert line == f"cannot write {home}/etc: Permission denied"
    assert snapshot(home) == before
    # reading still works
    proc = as_nobody("list", "host", PAXOS_HOME=str(home), HOME=str(scratch))
    assert proc.returncode == 0 and proc.stdout.split() == ["h1"], proc.stderr


def test_home_that_cannot_be_created(scratch: Path) -> None:
    parent = scratch / "locked"
    parent.mkdir(mode=0o555)
    line = one_line(as_nobody("register", "host", "h2", PAXOS_HOME=str(parent / "home")))
    assert line == f"cannot write {parent / 'home'}: Permission denied"
    assert list(parent.iterdir()) == []


def test_event_log_owned_by_another_user(scratch: Path) -> None:
    home = scratch / "theirs"
    home.mkdir()
    px = Paxos(home)
    px.ok("register", "host", "h1")
    os.chmod(home / "var" / "paxoslog.git" / "refs" / "heads" / "main", 0o600)
    before = snapshot(home)
    for args in (("register", "host", "h2"), ("list", "host")):
        line = one_line(as_nobody(*args, PAXOS_HOME=str(home), HOME=str(scratch)))
        assert line.startswith(f"cannot read {home}/var/paxoslog.git/"), line
        assert line.endswith(": Permission denied")
    assert snapshot(home) == before


@pytest.mark.parametrize("home_env", [{}, {"HOME": "/nonexistent/paxos-uxa"}])
def test_missing_home(home_env: dict) -> None:
    line = one_line(as_nobody("register", "host", "h1", **home_env))
    assert "HOME" in line
    if home_env:
        assert home_env["HOME"] in line
    assert not Path("/nonexistent/paxos-uxa").exists()


def test_full_disk(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        home = mnt / "home"
        home.mkdir()
        px = Paxos(home)
        px.ok("register", "host", "h1")
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            chunk = b"\0" * 65536
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass
        before = snapshot(home)
        proc = px("register", "host", "h2")
        line = one_line(proc)
        assert line.startswith(f"cannot write {home}") and \
            line.endswith(": No space left on device"), line
        assert snapshot(home) == before
        filler.unlink()
        assert px.ok("list", "host").split() == ["h1"]
        assert px.log_count() == 1
        # what the failed append left is removed by the next writer, or reported as leftovers
        px.ok("register", "host", "h2")
        assert px.ok("list", "host").split() == ["h1", "h2"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_unparsable_ssh_config(tmp_path: Path) -> None:
    home = tmp_path / "h"
    (home / ".ssh").mkdir(parents=True)
    cfg = home / ".ssh" / "config"
    cfg.write_text("Host *\n  Port\n")
    px = Paxos(home)
    # loopback port 1: if the config were not read first, this would fail with "refused"
    px.ok("register", "host", "--use-ssh-config", "-p", "1", "127.0.0.1")
    proc = px("deploy")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot parse {cfg}: Unparsable line Port" in proc.stderr, proc.stderr


def test_a_bug_is_one_line_without_vv_and_a_traceback_with_it() -> None:
    code = ("import sys; from paxoslog.cli import main as m; "
            "m._main = lambda argv: 1 / 0; sys.exit(m.main(sys.argv[1:]))")
    env = {**os.environ, "PAXOS_HOME": "/nonexistent"}
    quiet = subprocess.run([sys.executable, "-c", code, "list", "host"], capture_output=True,
                           text=True, env=env, timeout=60)
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [
        "internal error: ZeroDivisionError: division by zero (-vv shows the traceback)"]
    loud = subprocess.run([sys.executable, "-c", code, "-vv", "list", "host"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" in loud.stderr
