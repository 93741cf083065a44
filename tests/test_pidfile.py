"""nodes/pidfile.py: a daemon's pid-file lock survives a reader's brief probe."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from nodes.pidfile import lock_pidfile, write_pid


def _hold_shared(path, seconds: float) -> threading.Thread:
    """A probe as the agent makes it: a shared flock on its own open of the file."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)

    def release() -> None:
        time.sleep(seconds)
        os.close(fd)

    t = threading.Thread(target=release)
    t.start()
    return t


def test_a_probe_at_start_up_delays_the_daemon_instead_of_failing_it(tmp_path):
    path = str(tmp_path / "d.pid")
    probe = _hold_shared(path, 0.3)
    fd = lock_pidfile(path)
    probe.join()
    assert fd is not None
    write_pid(fd)
    assert open(path).read() == f"{os.getpid()}\n"
    other = os.open(path, os.O_RDONLY)
    try:  # and now it is held: nobody else can take it
        try:
            fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            raise AssertionError("the daemon's lock is not held")
    finally:
        os.close(other)
        os.close(fd)


def test_a_running_holder_is_reported_after_the_patience(tmp_path):
    path = str(tmp_path / "d.pid")
    holder = lock_pidfile(path)
    assert holder is not None
    start = time.monotonic()
    assert lock_pidfile(path, patience=0.2) is None
    assert 0.2 <= time.monotonic() - start < 5
    os.close(holder)


def test_a_symlinked_pid_file_is_never_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep\n")
    (tmp_path / "d.pid").symlink_to(target)
    try:
        lock_pidfile(str(tmp_path / "d.pid"))
    except OSError:
        pass
    else:
        raise AssertionError("a symlinked pid file was opened")
    assert target.read_text() == "keep\n"
