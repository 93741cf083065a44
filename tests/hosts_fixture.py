"""pytest plugin: a session-wide cluster of simulated hosts (scripts/testhosts), real sshd each.

Fixtures:
* `test_cluster` (session) — a `TestCluster`, started once, always torn down (`down`).
* `cluster` (function) — the same cluster; after the test every killed host is revived, so one
  test's `kill` never leaks into the next.

Size: $PAXOS_TEST_HOSTS hosts (default 20, enough for the 20-host speed checks). Each host also
listens on port 2222 so per-host ports can be tested. Needs root (CI runs as root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTHOSTS = ROOT / "scripts" / "testhosts"
EXTRA_PORT = 2222


@dataclass
class TestHost:
    __test__ = False  # not a test class, despite the name

    name: str
    addr: str
    home_root: Path  # the folder bind-mounted over /home on that host
    confdir: Path  # its sshd_config, host key, pid file and log

    @property
    def host_key_pub(self) -> Path:
        return self.confdir / "ssh_host_ed25519_key.pub"

    @property
    def home(self) -> Path:
        """/home/paxos of the host, seen from outside."""
        return self.home_root / "paxos"


class TestCluster:
    __test__ = False

    def __init__(self, state: Path) -> None:
        self.state = state
        info = self._testhosts("list", "--json", capture=True)
        data = json.loads(info)
        self.user: str = data["user"]
        self.client_key = Path(data["client_key"])
        self._known_hosts = Path(data["known_hosts"])
        self.hosts = [TestHost(h["name"], h["addr"], Path(h["home"]), Path(h["confdir"]))
                      for h in data["hosts"]]
        self._killed: set[str] = set()

    def _testhosts(self, *args: str, capture: bool = False) -> str:
        proc = subprocess.run([sys.executable, str(TESTHOSTS), "--state", str(self.state), *args],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"testhosts {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    @property
    def addrs(self) -> list[str]:
        return [h.addr for h in self.hosts]

    def host(self, addr: str) -> TestHost:
        return next(h for h in self.hosts if addr in (h.addr, h.name))

    def known_hosts_copy(self, dest: Path) -> Path:
        """A private known_hosts with every host's current key (tests may modify it freely)."""
        shutil.copyfile(self._known_hosts, dest)
        return dest

    def kill(self, addr: str) -> None:
        """SIGKILL the host's sshd and every process in its mount namespace."""
        self._killed.add(addr)
        self._testhosts("kill", addr)

    @contextmanager
    def hung(self, addr: str) -> Iterator[None]:
        """The host's sshd stopped (SIGSTOP) for the block: the kernel accepts connections,
        nothing answers them."""
        pid = int((self.host(addr).confdir / "sshd.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def revive(self, addr: str, *, new_host_key: bool = False) -> None:
        """Restart the host with its home (and, unless new_host_key, its host key)."""
        self._testhosts("revive", addr, *(["--new-host-key"] if new_host_key else []))
        self._killed.discard(addr)

    def revive_killed(self) -> None:
        for addr in sorted(self._killed):
            self.revive(addr)


@pytest.fixture(scope="session")
def test_cluster() -> Iterator[TestCluster]:
    if os.geteuid() != 0:
        pytest.fail("the simulated hosts need root (sshd on port 22, mount namespaces)")
    n = int(os.environ.get("PAXOS_TEST_HOSTS", "20"))
    state = Path(tempfile.mkdtemp(prefix="paxos-testhosts-"))
    state.rmdir()  # testhosts creates it, and refuses a state folder that is in use
    cmd = [sys.executable, str(TESTHOSTS), "--state", str(state), "up", str(n), "--base", "auto",
           "--port", str(EXTRA_PORT)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.fail(f"testhosts up failed: {proc.stderr.strip()}")
        yield TestCluster(state)
    finally:
        subprocess.run([sys.executable, str(TESTHOSTS), "--state", str(state), "down"],
                       timeout=120, check=False)


@pytest.fixture
def cluster(test_cluster: TestCluster) -> Iterator[TestCluster]:
    yield test_cluster
    test_cluster.revive_killed()
