"""Shared fixtures: an isolated PAXOS_HOME and the real `paxos` console script."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# A suite started in the background of a shell without job control (`sh -c '... &'`, some CI
# runners) inherits SIGINT ignored, and every process it starts would too: the Ctrl-C tests
# would test nothing but that. A caught signal is reset to its default across exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Simulated sshd hosts (scripts/testhosts): fixtures `test_cluster` and `cluster`.
pytest_plugins = ["tests.hosts_fixture", "tests.agent_hosts"]

PAXOS = str(Path(sys.executable).with_name("paxos"))
AUTHOR = "Test Operator <operator@example.invalid>"


def paxos_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAXOS_")}
    env.update(LANG="C", LC_ALL="C", PAXOS_HOME=str(home), PAXOS_AUTHOR=AUTHOR, HOME=str(home))
    env.update(extra)
    return env


class Paxos:
    """Runs the installed console script against one PAXOS_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = paxos_env(home)

    def __call__(self, *args: str, input: str | None = None,
                 check: bool | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([PAXOS, *args], input=input, capture_output=True, text=True,
                              env=self.env, timeout=60)
        if check is True:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def ok(self, *args: str) -> str:
        proc = self(*args, check=True)
        return proc.stdout

    def log_count(self) -> int:
        import json

        out = self("--json", "log", check=True).stdout
        return len(json.loads(out))


@pytest.fixture
def paxos_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def paxos(paxos_home: Path) -> Paxos:
    return Paxos(paxos_home)


SEED_CELL = ["192.168.1.100:24111", "192.168.1.100:24111", "192.168.1.101:24111",
             "192.168.1.101:24111", "192.168.1.102:24111", "192.168.1.102:24111"]


@pytest.fixture
def seeded(paxos: Paxos) -> Paxos:
    """The guide's walk-through A2-A4: two hosts, css0, memcache 0 with one pair (rev 5)."""
    return seed(paxos)


def seed(px: Paxos) -> Paxos:
    """Run the guide's walk-through A2-A4 on `px` (rev 5)."""
    px.ok("register", "host", "--user", "paxos", "192.168.1.10")
    px.ok("register", "host", "192.168.1.11")
    px.ok("register", "css", "--name", "css0", *SEED_CELL)
    px.ok("register", "memcache", "--css", "css0")
    px.ok("register", "pair", "--id", "0", "--server-address", "192.168.1.200")
    return px


# --- black-box helpers for the CLI/shell tests (appended) -----------------------------------------

def git_head(home: Path) -> str | None:
    """The commit `refs/heads/main` of the event log points at, or None without a log."""
    repo = home / "var" / "paxoslog.git"
    if not repo.exists():
        return None
    proc = subprocess.run(["git", "--git-dir", str(repo), "rev-parse", "--verify", "-q",
                           "refs/heads/main"], capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() or None


def etc_snapshot(home: Path) -> dict[str, bytes]:
    """Every file under $PAXOS_HOME/etc, by path relative to $PAXOS_HOME."""
    etc = home / "etc"
    if not etc.exists():
        return {}
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(etc.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PAXOS_HOME after A2-A4 (rev 5), built once per session; copy it, never use it."""
    home = tmp_path_factory.mktemp("seeded-template") / "home"
    home.mkdir()
    seed(Paxos(home))
    return home


@pytest.fixture
def seeded_copy(tmp_path: Path, seeded_template: Path) -> Paxos:
    """Like `seeded` (rev 5), but a fast copy of a session-wide template."""
    import shutil

    home = tmp_path / "seeded-home"
    shutil.copytree(seeded_template, home, symlinks=True)
    return Paxos(home)


class Outcome:
    """One command run with the log head and `$PAXOS_HOME/etc` observed around it."""

    def __init__(self, px: Paxos, *args: str) -> None:
        self.args, self.home = args, px.home
        self.head, self.etc = git_head(px.home), etc_snapshot(px.home)
        self.proc = px(*args)
        self.head_after, self.etc_after = git_head(px.home), etc_snapshot(px.home)


def check_refused(out: Outcome, message: str | None = None, code: int = 1) -> None:
    """A refused command: exit code, stderr message, empty stdout, nothing appended/changed.

    code 1: the last stderr line is exactly `message` (bare, one-shot mode).
    code 2: a usage error; stderr has a `... error: ...` line (containing `message`, if given).
    """
    proc = out.proc
    detail = (out.args, proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == code, detail
    assert "Traceback" not in proc.stderr, detail
    assert proc.stdout == "", detail
    lines = proc.stderr.strip().splitlines()
    assert lines, detail
    if code == 2:
        errors = [line for line in lines if "error: " in line]
        assert errors, detail
        if message is not None:
            assert message in errors[-1], detail
    else:
        assert lines[-1] == message, detail
    assert out.head_after == out.head, ("event appended", detail)
    assert out.etc_after == out.etc, ("etc changed", detail)


def refuse(px: Paxos, *args: str, message: str | None = None, code: int = 1) -> None:
    """Run a command that must be refused and check it with `check_refused`."""
    check_refused(Outcome(px, *args), message, code)


def run_concurrently(template: Path, dest: Path, commands: list[list[str]],
                     workers: int = 4) -> list[Outcome]:
    """Run commands on `workers` private copies of `template`, each copy sequentially.

    Every outcome's before/after observation is exact (one command at a time per copy).
    """
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    results: list[Outcome | None] = [None] * len(commands)

    def work(w: int) -> None:
        home = dest / f"worker{w}"
        shutil.copytree(template, home, symlinks=True)
        px = Paxos(home)
        for i in range(w, len(commands), workers):
            results[i] = Outcome(px, *commands[i])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))
    return results  # type: ignore[return-value]


@pytest.fixture
def refused():
    return refuse


def ok_many(px: Paxos, *commands: list[str], workers: int = 4) -> list[str]:
    """stdout of several read-only commands run in parallel; each must exit 0."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda args: px.ok(*args), commands))
