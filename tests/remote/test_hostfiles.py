"""The HostFiles conformance suite on both implementations."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from paxoslog.remote.hostfs import LocalFS
from paxoslog.remote.ssh import HostSpec, SSHOptions, connect
from tests.remote.hostfiles_suite import HostFilesTests


class TestLocalFS(HostFilesTests):
    @pytest.fixture(autouse=True)
    def _fs(self, tmp_path: Path):
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.fs = LocalFS(str(self.home), "localhost")


class TestSFTP(HostFilesTests):
    @pytest.fixture(autouse=True)
    def _fs(self, cluster, tmp_path: Path):
        host = cluster.hosts[3]
        self.home = host.home
        opts = SSHOptions(known_hosts=cluster.known_hosts_copy(tmp_path / "known_hosts"),
                          identity_files=(str(cluster.client_key),), use_agent=False,
                          ask_password=None, connect_timeout=5, command_timeout=10)
        for sub in ("etc", "var"):
            shutil.rmtree(self.home / sub, ignore_errors=True)
        with connect(HostSpec(host.addr, cluster.user), opts) as conn:
            self.fs = conn
            yield
        for sub in ("etc", "var"):
            shutil.rmtree(self.home / sub, ignore_errors=True)
