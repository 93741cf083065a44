"""One conformance class for the HostFiles port (paxoslog.remote.hostfs.HostFiles), run against
every implementation: `LocalFS` (this machine, rule L) and `ssh.Connection` (SFTP to a real sshd
test host). Deploy, status and fetch must not be able to tell them apart.

A subclass provides `fs` (the implementation under test, rooted at a home) and `home` (that
home seen from this process, to plant what a hostile host would hold)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from paxoslog.remote.ssherrors import TooLarge, UnsafePath


class HostFilesTests:
    fs: object
    home: Path

    def test_write_read_exists_hash(self):
        self.fs.mkdir_p("etc/cell")
        self.fs.write_atomic("etc/cell/c0.conf", b"0 a 1 b 2\n")
        assert self.fs.read_file("etc/cell/c0.conf") == b"0 a 1 b 2\n"
        assert self.fs.exists("etc/cell/c0.conf") and self.fs.exists("etc/cell")
        assert not self.fs.exists("etc/cell/nope.conf")
        assert self.fs.sha256("etc/cell/c0.conf") == hashlib.sha256(b"0 a 1 b 2\n").hexdigest()
        assert self.fs.sha256("etc/cell/nope.conf") is None
        assert (self.home / "etc/cell/c0.conf").read_bytes() == b"0 a 1 b 2\n"

    def test_overwrite_is_atomic_and_leaves_no_temporary(self):
        self.fs.mkdir_p("etc")
        self.fs.write_atomic("etc/f", b"old")
        self.fs.write_atomic("etc/f", b"new", mode=0o600)
        assert self.fs.read_file("etc/f") == b"new"
        assert (self.home / "etc/f").stat().st_mode & 0o777 == 0o600
        assert self.fs.listdir("etc") == ["f"]

    def test_listdir_is_sorted_and_remove_respects_missing_ok(self):
        self.fs.mkdir_p("etc/cell")
        for name in ("b.conf", "a.conf", "c.conf"):
            self.fs.write_atomic(f"etc/cell/{name}", b"x")
        assert self.fs.listdir("etc/cell") == ["a.conf", "b.conf", "c.conf"]
        self.fs.remove("etc/cell/b.conf")
        assert self.fs.listdir("etc/cell") == ["a.conf", "c.conf"]
        self.fs.remove("etc/cell/b.conf")  # missing_ok by default
        with pytest.raises(FileNotFoundError):
            self.fs.remove("etc/cell/b.conf", missing_ok=False)

    def test_missing_file_reads_raise_file_not_found(self):
        with pytest.raises(FileNotFoundError):
            self.fs.read_file("etc/none")

    def test_reads_are_capped(self):
        self.fs.mkdir_p("etc")
        self.fs.write_atomic("etc/big", b"x" * 5000)
        with pytest.raises(TooLarge):
            self.fs.read_file("etc/big", limit=4096)
        with pytest.raises(TooLarge):
            self.fs.sha256("etc/big", limit=4096)
        assert len(self.fs.read_file("etc/big", limit=5000)) == 5000

    @pytest.mark.parametrize("path", ["../x", "etc/../../x", "/etc/passwd", "", "etc/\x00x",
                                      "etc//x", "./etc"])
    def test_paths_leaving_the_home_are_refused(self, path):
        for call in (lambda: self.fs.read_file(path), lambda: self.fs.exists(path),
                     lambda: self.fs.write_atomic(path, b"x"), lambda: self.fs.remove(path)):
            with pytest.raises(UnsafePath):
                call()

    def test_symlinks_are_never_followed(self, tmp_path_factory):
        outside = tmp_path_factory.mktemp("outside")
        (outside / "victim.conf").write_bytes(b"not yours\n")
        os.chmod(outside, 0o755)
        (self.home / "etc").mkdir(exist_ok=True)
        (self.home / "etc/cell").symlink_to(outside)
        (self.home / "etc/link").symlink_to(outside / "victim.conf")
        for call in (lambda: self.fs.listdir("etc/cell"),
                     lambda: self.fs.read_file("etc/cell/victim.conf"),
                     lambda: self.fs.remove("etc/cell/victim.conf"),
                     lambda: self.fs.write_atomic("etc/cell/victim.conf", b"x"),
                     lambda: self.fs.read_file("etc/link"),
                     lambda: self.fs.write_atomic("etc/link", b"x"),
                     lambda: self.fs.exists("etc/link")):
            with pytest.raises(UnsafePath, match="symlink"):
                call()
        assert (outside / "victim.conf").read_bytes() == b"not yours\n"
        assert sorted(p.name for p in outside.iterdir()) == ["victim.conf"]

    def test_only_regular_files_are_read(self):
        (self.home / "etc").mkdir(exist_ok=True)
        os.mkfifo(self.home / "etc/fifo")
        (self.home / "etc/dir").mkdir()
        for path in ("etc/fifo", "etc/dir"):
            with pytest.raises(UnsafePath):
                self.fs.read_file(path)
