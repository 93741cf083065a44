"""paxoslog.fsutil, the durable-write primitive the admin tool and the CSS storage share."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from paxoslog import fsutil

# A child that rewrites one file forever, alternating two contents; it prints a line once it has
# begun, so the parent's kill lands while writes are in flight.
_WRITER = """
import sys
from paxoslog import fsutil
path, a, b = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
print("go", flush=True)
while True:
    fsutil.atomic_write(path, b)
    fsutil.atomic_write(path, a)
"""

_LOCKER = """
import sys, time
from paxoslog import fsutil
with fsutil.locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(300)
"""


def _spawn(code: str, *args: str, **env: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            env={**os.environ, **env})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() in (b"go", b"held")
    return proc


def test_kill_during_atomic_write_leaves_the_old_or_the_new_file_never_half(tmp_path):
    old = os.urandom(1 << 20)
    new = os.urandom(3 << 20)  # different lengths: a torn write shows as a wrong size too
    (tmp_path / "a").write_bytes(old)
    (tmp_path / "b").write_bytes(new)
    target = tmp_path / "data" / "file"
    target.parent.mkdir()
    fsutil.atomic_write(str(target), old)
    rng = random.Random(7)
    for fsync in ("0", "1"):
        for _ in range(12):
            proc = _spawn(_WRITER, str(target), str(tmp_path / "a"), str(tmp_path / "b"),
                          PAXOS_FSYNC=fsync)
            time.sleep(rng.uniform(0, 0.05))  # where the kill lands is what varies
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            data = target.read_bytes()
            assert data in (old, new), f"torn file: {len(data)} bytes"
    # only the target and the writers' temp files are ever in the folder
    assert all(p.name == "file" or p.name.startswith(".tmp-") for p in target.parent.iterdir())


def test_failed_write_leaves_the_target_and_no_temp_file(tmp_path):
    target = tmp_path / "file"
    fsutil.atomic_write(str(target), b"old")

    try:
        fsutil.atomic_write(str(target), "not bytes")  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        raise AssertionError("writing str must fail")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_mode_is_the_one_asked_for(tmp_path):
    target = tmp_path / "secret"
    fsutil.atomic_write(str(target), b"x", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600
    fsutil.atomic_write(str(target), b"y")
    assert target.stat().st_mode & 0o777 == 0o644


def test_lock_excludes_others_and_is_released_when_its_holder_is_killed(tmp_path):
    lock = tmp_path / "var" / "the.lock"  # the folder is created on demand
    holder = _spawn(_LOCKER, str(lock))
    try:
        fd = os.open(lock, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                raise AssertionError("the lock was not held")
        finally:
            os.close(fd)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with fsutil.locked(str(lock)):  # would block forever if kill -9 wedged it
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_fsync_can_be_turned_off_but_not_by_accident(monkeypatch):
    for value, expected in (("0", False), ("off", False), ("1", True), ("", True),
                            ("yes", True)):
        monkeypatch.setenv("PAXOS_FSYNC", value)
        assert fsutil.fsync_enabled() is expected
    monkeypatch.delenv("PAXOS_FSYNC")
    assert fsutil.fsync_enabled() is True


def test_syncfs_and_fsync_dir_work_on_a_real_folder(tmp_path: Path):
    (tmp_path / "f").write_bytes(b"x")
    fsutil.syncfs(str(tmp_path))
    fsutil.fsync_dir(str(tmp_path))


def test_read_regular_reads_only_bounded_regular_files(tmp_path: Path):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    assert fsutil.read_regular(str(f), 100) == b"x" * 100
    try:
        fsutil.read_regular(str(f), 99)
    except fsutil.FileTooLarge as e:
        assert str(e) == f"{f}: larger than 99 bytes"
    else:
        raise AssertionError("over the limit must fail")
    os.mkfifo(tmp_path / "fifo")  # never waited on
    (tmp_path / "link").symlink_to(f)
    for name in ("fifo", "link"):
        try:
            fsutil.read_regular(str(tmp_path / name), 1000)
        except fsutil.NotRegularFile:
            pass
        else:
            raise AssertionError(f"{name} must be refused")
    assert fsutil.read_regular(str(tmp_path / "link"), 1000, follow=True) == b"x" * 100
    try:
        fsutil.read_regular(str(tmp_path / "missing"), 10)
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("a missing file must raise FileNotFoundError")
