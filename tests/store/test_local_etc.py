"""$PAXOS_HOME/etc is written only inside itself (issue 7, item 1, the local writer): no name
that leaves it, no symbolic link followed, and a refused write changes nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from paxoslog.fsutil import UnsafePath
from paxoslog.store.gitlog import EVENT_PATH, EventLog
from paxoslog.store.home import Home, write_etc
from tests.conftest import Paxos, etc_snapshot, git_head


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("rel", ["etc/cell/../../x.conf", "etc/cell/a/b.conf", "etc/cell/a\0.conf",
                                 "etc/cell/..conf", "etc/cell/ü.conf", "etc/x.conf",
                                 "etc/cell/.conf", "etc/../x.conf"])
def test_a_name_outside_etc_is_refused_and_nothing_is_written(tmp_path: Path, rel: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    files = {"etc/paxos_memcache.conf": b"version: 1\n", "etc/cell/c0.conf": b"0\n", rel: b"x"}
    with pytest.raises(UnsafePath, match="^refusing to write .*: not a file of \\$PAXOS_HOME/etc$"):
        write_etc(Home(str(home)), files)
    assert _tree(tmp_path) == {}


def _seeded_with_linked(px: Paxos, tmp_path: Path, sub: str) -> tuple[Path, Path]:
    """Move $PAXOS_HOME/<sub> elsewhere and leave a symbolic link to it in its place."""
    target = tmp_path / "elsewhere"
    (px.home / sub).rename(target)
    (target / "victim.conf").write_bytes(b"not yours\n")
    (px.home / sub).symlink_to(target)
    return target, px.home / sub


@pytest.mark.parametrize("sub", ["etc/cell", "etc"])
def test_a_symlinked_etc_or_cell_folder_is_never_written_through(seeded: Paxos, tmp_path: Path,
                                                                 sub: str) -> None:
    target, link = _seeded_with_linked(seeded, tmp_path, sub)
    before = _tree(target)
    head = git_head(seeded.home)
    for args in (("register", "host", "h2"), ("unregister", "pair", "-i", "0", "-a",
                                               "192.168.1.200"), ("replay",)):
        proc = seeded(*args)
        assert proc.returncode == 1, args
        assert proc.stderr == (f"{link} is a symbolic link or not a directory: "
                               "refusing to write through it\n"), args
        assert _tree(target) == before, args  # nothing written, nothing deleted there
        assert git_head(seeded.home) == head, args  # refused whole: no event without its files


def test_a_symlinked_cell_file_is_replaced_not_followed(seeded: Paxos, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"not yours\n")
    cell = seeded.home / "etc" / "cell" / "css0.conf"
    cell.unlink()
    cell.symlink_to(victim)
    seeded.ok("replay")
    assert victim.read_bytes() == b"not yours\n"
    assert not cell.is_symlink() and cell.read_bytes().startswith(b"0 192.168.1.100 24111")
    (seeded.home / "etc" / "cell" / "gone.conf").symlink_to(victim)
    seeded.ok("replay")  # a stale link is removed as a link
    assert victim.exists() and not (seeded.home / "etc" / "cell" / "gone.conf").exists()


def test_stale_temp_files_are_swept_and_live_ones_kept(seeded: Paxos) -> None:
    home = seeded.home
    dead = dead_pid()
    stale = [home / "etc" / f".tmp-{dead}-a", home / "etc" / "cell" / f".tmp-{dead}-b",
             home / "var" / f".tmp-{dead}-c"]
    old = home / "etc" / ".tmpOLDSTYLE"
    live = home / "etc" / f".tmp-{os.getpid()}-d"  # ours: a writer that is still running
    for path in (*stale, live, old):
        path.write_bytes(b"partial")
    os.utime(home / "etc" / ".tmpOLDSTYLE", (0, 0))
    old.rename(home / "etc" / ".tmp-old")  # an older build's name, no pid: only age tells
    old = home / "etc" / ".tmp-old"
    proc = seeded("verify")
    assert proc.returncode == 0
    for path in (*stale, old):
        assert f"stale temporary file {path.relative_to(home)}" in proc.stdout
        assert f"WARNING: stale temporary file {path.relative_to(home)}" in proc.stderr
    assert str(live.relative_to(home)) not in proc.stdout
    head = git_head(home)
    seeded.ok("register", "host", "h2")
    assert [p for p in (*stale, old) if p.exists()] == [] and live.exists()
    assert git_head(home) != head
    live.unlink()
    assert etc_snapshot(home) == head_files(home)


def head_files(home: Path) -> dict[str, bytes]:
    """HEAD's rendered files, as they should be in $PAXOS_HOME/etc."""
    log = EventLog(str(home / "var" / "paxoslog.git"))
    files = log.files(log.commit(log.head()))
    files.pop(EVENT_PATH)
    return files


def test_verify_lists_an_etc_that_differs_from_head_as_a_block_warning(paxos):
    paxos.ok("register", "host", "h1")
    (paxos.home / "etc" / "paxos_memcache.conf").write_text("edited\n")
    proc = paxos("verify", check=True)
    assert proc.stdout.endswith('status: ok\nwarnings:\n'
                                '  - "etc/ differs from HEAD: etc/paxos_memcache.conf differs"\n')
    assert proc.stderr == "WARNING: etc/ differs from HEAD: etc/paxos_memcache.conf differs\n"
    paxos.ok("replay")
    assert "warnings" not in paxos.ok("verify")
