"""A host under someone else's control (issues 7 and 13): symlinks, devices, FIFOs and huge
files under ~/etc and ~/var, garbage DEPLOYED stamps, a log whose HEAD names another ref,
decompression bombs and paths outside ~/etc. Every case runs against the real sshd test hosts,
with the hostile files planted in the host's home from outside."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from paxoslog.app import fetch as fetch_mod
from paxoslog.app.fetch import fetch, target_spec
from paxoslog.core.model import EMPTY
from paxoslog.errors import RemoteError, UsageError
from paxoslog.fsutil import UnsafePath as LocalUnsafePath
from paxoslog.remote.hostfs import LocalFS
from paxoslog.remote.ssh import HostSpec, UnsafePath, connect
from paxoslog.remote.sshpool import SSHSession
from paxoslog.store.gitlog import EventLog
from paxoslog.store.home import Home
from tests.conftest import PAXOS, Paxos, etc_snapshot, git_head, paxos_env
from tests.deploy_helpers import Env


@pytest.fixture
def env(cluster, tmp_path) -> Env:
    hosts = cluster.hosts[:3]
    for h in hosts:
        scrub(h)
    yield Env(cluster, tmp_path, hosts)
    for h in hosts:
        scrub(h)


def scrub(host) -> None:
    """Remove what these tests plant (Env wipes etc and var, but not through a symlink)."""
    for name in ("etc", "var", "victim", "x.conf"):
        path = host.home / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def as_host_user(host, path: Path) -> None:
    """Files planted from outside belong to root; give them to the host's user, as if the
    host's own user (or an attacker with its rights) had made them."""
    st = host.home.stat()
    for p in [path, *(path.rglob("*") if path.is_dir() and not path.is_symlink() else [])]:
        os.lchown(p, st.st_uid, st.st_gid)


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def in_thread(fn, limit: float):
    """fn() in a daemon thread; fails the test (instead of hanging it) past `limit` seconds."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    t.start()
    t.join(limit)
    assert not t.is_alive(), f"still running after {limit} s"
    if "error" in box:
        raise box["error"]
    return box["value"], time.monotonic() - start


def do_fetch(env: Env, home: Path, name: str, **kw):
    with SSHSession(env.opts) as session:
        return fetch(Home(str(home)), session, name, **kw)


# ---------------------------------------------------------------- item 7.2: symlinks


def test_clean_never_follows_a_symlinked_cell_dir(env):
    a, b, _ = env.hosts
    assert env.deploy().errors == {}
    victim = a.home / "victim"
    victim.mkdir()
    (victim / "precious.conf").write_text("keep me\n")
    shutil.rmtree(a.home / "etc/cell")
    (a.home / "etc/cell").symlink_to("../victim")
    as_host_user(a, victim)
    as_host_user(a, a.home / "etc/cell")
    out = env.deploy(clean=True)
    assert out.errors == {a.addr: "refusing to follow symlink ~/etc/cell"}
    assert (victim / "precious.conf").read_text() == "keep me\n"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.conf"]
    docs = {d["hostname"]: d for d in env.status()}
    assert docs[a.addr] == {"hostname": a.addr, "status": "error",
                            "reason": "refusing to follow symlink ~/etc/cell"}
    assert docs[b.addr]["status"] == "current"


@pytest.mark.parametrize("link,target", [
    ("etc", "victim"),
    ("etc/DEPLOYED", "../victim/precious.conf"),
    ("var/paxoslog.git", "../victim"),
    ("var/paxoslog.git/refs", "../../victim"),
])
def test_a_symlink_under_etc_or_var_fails_that_host_alone(env, link, target):
    a, b, _ = env.hosts
    assert env.deploy().errors == {}
    victim = a.home / "victim"
    victim.mkdir()
    (victim / "precious.conf").write_text("keep me\n")
    as_host_user(a, victim)
    path = a.home / link
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.symlink_to(target)
    as_host_user(a, path)
    env.px.ok("register", "memcache", "--css", "css0")
    before = files_of(victim)
    out = env.deploy(clean=True)
    assert out.errors == {a.addr: f"refusing to follow symlink ~/{link}"}
    assert files_of(victim) == before
    assert path.is_symlink()
    assert [d["status"] for d in env.status()] == ["error", "current", "current"]
    assert env.dry_run(a.addr).errors == {a.addr: f"refusing to follow symlink ~/{link}"}


def test_remote_file_helpers_refuse_symlinks_and_special_files(cluster, env):
    a = env.hosts[0]
    (a.home / "etc/cell").mkdir(parents=True)
    (a.home / "etc/cell/link.conf").symlink_to("/etc/passwd")
    os.mkfifo(a.home / "etc/cell/fifo.conf")
    for p in ("etc", "etc/cell", "etc/cell/link.conf", "etc/cell/fifo.conf"):
        as_host_user(a, a.home / p)
    with connect(HostSpec(a.addr, "paxos"), env.opts) as conn:
        for op in (conn.read_file, conn.sha256, conn.exists, conn.remove):
            with pytest.raises(UnsafePath, match="^refusing to follow symlink "
                                                 "~/etc/cell/link.conf$"):
                op("etc/cell/link.conf")
        with pytest.raises(UnsafePath, match="^refusing to follow symlink ~/etc/cell/link.conf$"):
            conn.write_atomic("etc/cell/link.conf", b"x")
        with pytest.raises(UnsafePath, match="^~/etc/cell/fifo.conf is not a regular file$"):
            in_thread(lambda: conn.read_file("etc/cell/fifo.conf"), 30)
        for bad in ("etc/cell/../../x.conf", "etc/cell/./x", "/etc/passwd", "etc//x", "etc/\0"):
            with pytest.raises(UnsafePath, match="^refusing path"):
                conn.write_atomic(bad, b"x")
        assert conn.listdir("etc/cell") == ["fifo.conf", "link.conf"]
    assert not (a.home / "x.conf").exists()
    assert os.readlink(a.home / "etc/cell/link.conf") == "/etc/passwd"


def test_the_local_host_never_follows_symlinks_either(tmp_path):
    root = tmp_path / "home"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.conf").write_text("keep me\n")
    (root / "etc").mkdir(parents=True)
    (root / "etc/cell").symlink_to(victim)
    os.mkfifo(root / "etc/fifo")
    fs = LocalFS(str(root), "local")
    for op in (fs.listdir, fs.read_file, fs.sha256, fs.exists):
        with pytest.raises(UnsafePath, match="^refusing to follow symlink ~/etc/cell$"):
            op("etc/cell" if op is fs.listdir else "etc/cell/precious.conf")
    with pytest.raises(UnsafePath, match="^refusing to follow symlink ~/etc/cell$"):
        fs.remove("etc/cell/precious.conf")
    with pytest.raises(UnsafePath, match="^refusing to follow symlink ~/etc/cell$"):
        fs.write_atomic("etc/cell/precious.conf", b"overwritten")
    with pytest.raises(UnsafePath, match="^~/etc/fifo is not a regular file$"):
        in_thread(lambda: fs.read_file("etc/fifo"), 10)
    with pytest.raises(UnsafePath, match="^refusing path"):
        fs.write_atomic("etc/../../x.conf", b"x")
    assert (victim / "precious.conf").read_text() == "keep me\n"
    assert not (tmp_path / "x.conf").exists()


def test_a_local_host_with_a_symlinked_cell_dir_is_refused(env, tmp_path):
    env.px.ok("register", "host", "--user", getpass.getuser(), "127.0.0.1")
    victim = tmp_path / "victim"
    shutil.move(env.px.home / "etc/cell", victim)
    (victim / "stale.conf").write_text("keep me\n")
    (env.px.home / "etc/cell").symlink_to(victim)
    # the admin's own etc/cell holds the cell secrets: a symlink there refuses the whole deploy
    # before any host is touched (one line from the CLI), and nothing is written through it
    with pytest.raises(LocalUnsafePath, match=r"etc/cell is a symbolic link or not a directory: "
                                         r"refusing to write through it$"):
        env.deploy("127.0.0.1", clean=True)
    assert (victim / "stale.conf").read_text() == "keep me\n"
    assert sorted(p.name for p in victim.iterdir()) == ["css0.conf", "stale.conf"]


# ---------------------------------------------------------------- item 7.1: paths outside ~/etc


def test_deploy_refuses_a_head_rendering_a_path_outside_etc(env):
    log = EventLog(str(env.px.home / "var/paxoslog.git"))
    head = log.head()
    files = log.files(log.commit(head))
    files["etc/cell/../../x.conf"] = b"0 a 1 b 2\n"
    bad = log.write_commit(head, files, "hostile", "x <x@example.invalid>", 5)
    assert log.move_branch(head, bad)
    with pytest.raises(RemoteError, match=r"^refusing to deploy etc/cell/\.\./\.\./x\.conf: "
                                          r"not a configuration file path$"):
        env.deploy()
    for h in env.hosts:
        assert not (h.home / "x.conf").exists()
        assert not (h.home / "etc").exists()


# ---------------------------------------------------------------- item 7.4 / 13.2: stamps


STAMP_HEAD = 'commit: "{c}"\nrev: 4\nauthor: "a <a@b>"\ntime: "2024-05-01T10:22:31+09:00"\n'
GOOD_FILES = 'files:\n  "etc/paxos_memcache.conf": "sha256:{h}"\n'


@pytest.mark.parametrize("text,problem", [
    ("{head}{files}1: 2\n", "unknown key 1"),
    ('commit: "{c}"\nrev: 4\nauthor: "a <a@b>"\ntime: 2024-05-01T10:22:31+09:00\n{files}',
     "time is not a string"),
    ('commit: "{c}"\nrev: 4\nauthor: {{name: x}}\ntime: "t"\n{files}', "author is not a string"),
    ('commit: "{c}"\nrev: true\nauthor: "a"\ntime: "t"\n{files}', "rev is not an integer"),
    ('commit: "{c}"\nrev: 99999999999999999999999\nauthor: "a"\ntime: "t"\n{files}',
     "rev is out of range"),
    ('commit: "abc"\nrev: 4\nauthor: "a"\ntime: "t"\n{files}', "commit is not a commit id"),
    ("{head}files: [1, 2]\n", "files is not a mapping"),
    ('{head}files:\n  "/dev/zero": "sha256:{h}"\n', "files: /dev/zero is not a configuration "
                                                   "file path"),
    ('{head}files:\n  "etc/cell/../../x.conf": "sha256:{h}"\n',
     "files: etc/cell/../../x.conf is not a configuration file path"),
    ('{head}files:\n  "etc/paxos_memcache.conf": 7\n', "files: etc/paxos_memcache.conf has no "
                                                       "sha256 digest"),
    ("{head}{files}commit: \"{c}\"\n", "duplicate key commit"),
    ("- 1\n- 2\n", "not a mapping"),
    ("{head}", "missing key files"),
    ("a: &x [*x]\n", "anchors and aliases are not allowed"),
    ("{{{{{{", "not YAML"),
    ("\xff\xfe", "not UTF-8"),
])
def test_a_garbage_stamp_makes_that_host_error_with_the_reason(env, text, problem):
    a, b, _ = env.hosts
    assert env.deploy().errors == {}
    head = git_head(env.px.home)
    digest = (a.home / "etc/DEPLOYED").read_text().split("sha256:")[1][:64]
    text = text.format(head=STAMP_HEAD.format(c=head), files=GOOD_FILES.format(h=digest), c=head,
                       h=digest)
    (a.home / "etc/DEPLOYED").write_bytes(text.encode("utf-8", "surrogateescape")
                                          if text != "\xff\xfe" else b"\xff\xfe")
    docs, took = in_thread(env.status, 40)
    assert docs[0] == {"hostname": a.addr, "status": "error",
                       "reason": f"unreadable etc/DEPLOYED: {problem}"}
    assert docs[1]["status"] == "current"
    assert took < 30


@pytest.mark.parametrize("plant", ["fifo", "symlink-to-device", "huge", "directory"])
def test_stamped_files_are_read_only_as_bounded_regular_files(env, plant):
    a = env.hosts[0]
    assert env.deploy(a.addr).errors == {}
    target = a.home / "etc/cell/css0.conf"
    target.unlink()
    if plant == "fifo":
        os.mkfifo(target)
    elif plant == "symlink-to-device":
        target.symlink_to("/dev/zero")
    elif plant == "huge":
        with open(target, "wb") as f:
            f.truncate(1 << 30)  # sparse: 1 GiB to read, nothing on disk
    else:
        target.mkdir()
    as_host_user(a, target)
    docs, took = in_thread(lambda: env.status(a.addr), 40)
    reason = {"fifo": "~/etc/cell/css0.conf is not a regular file",
              "symlink-to-device": "refusing to follow symlink ~/etc/cell/css0.conf",
              "huge": "~/etc/cell/css0.conf is larger than 16777216 bytes",
              "directory": "~/etc/cell/css0.conf is not a regular file"}[plant]
    assert docs == [{"hostname": a.addr, "status": "error", "reason": reason}]
    assert took < 30


# ---------------------------------------------------------------- item 7.5: HEAD names another ref


def test_a_host_log_whose_head_names_another_ref_is_unreadable(env, tmp_path):
    a, b, _ = env.hosts
    assert env.deploy().errors == {}
    repo = a.home / "var/paxoslog.git"
    head = git_head(env.px.home)
    (repo / "refs/heads/elsewhere").write_text(head + "\n")
    (repo / "HEAD").write_text("ref: refs/heads/elsewhere\n")
    message = f"event log on {a.addr} is unreadable: HEAD names refs/heads/elsewhere"
    docs = {d["hostname"]: d for d in env.status()}
    assert docs[a.addr] == {"hostname": a.addr, "status": "error", "reason": message}
    assert docs[b.addr]["status"] == "current"
    env.px.ok("register", "memcache", "--css", "css0")
    before = files_of(a.home)
    assert env.deploy().errors == {a.addr: message}
    assert files_of(a.home) == before
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(RemoteError, match=f"^{message}$"):
        do_fetch(env, fresh, f"paxos@{a.addr}")
    assert git_head(fresh) is None
    # a garbage ref is unreadable too, never taken for "no log"
    (repo / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "refs/heads/main").write_text("not a commit id\n")
    assert env.status(a.addr)[0]["reason"] == (f"event log on {a.addr} is unreadable: "
                                               "refs/heads/main is not a commit id")


# ---------------------------------------------------------------- item 7.3: decompression bombs


def _bomb(size: int) -> bytes:
    """A zlib stream of a loose blob of `size` zero bytes, about size/1000 bytes long, built
    from one compressed MiB repeated (full flushes make the pieces independent)."""
    header = b"blob %d\0" % size
    c = zlib.compressobj(9)
    out = [c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)]
    mib = bytes(1 << 20)
    piece = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    adler = zlib.adler32(header)
    for _ in range(size >> 20):
        out.append(piece)
        adler = zlib.adler32(mib, adler)
    out.append(b"\x03\x00" + adler.to_bytes(4, "big"))  # empty final block, then the checksum
    return b"".join(out)


def test_bomb_helper_is_a_valid_stream():
    assert zlib.decompress(_bomb(2 << 20)) == b"blob %d\0" % (2 << 20) + bytes(2 << 20)


def _plant_commit(repo_path: Path, event_sha: bytes, loose: dict[bytes, bytes]) -> None:
    """A commit on the host's head whose event blob is `event_sha`, stored raw in `loose`."""
    repo = Repo(str(repo_path))
    head = repo.refs[b"refs/heads/main"]
    parent = repo[head]
    root = repo[parent.tree]
    tree = Tree()
    for entry in root.iteritems():
        tree.add(entry.path, entry.mode, entry.sha)
    tree.add(b"event.msgpack", 0o100644, event_sha)
    commit = Commit()
    commit.tree, commit.parents = tree.id, [head]
    commit.author = commit.committer = b"x <x@example.invalid>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"bomb\n"
    repo.object_store.add_object(tree)
    repo.object_store.add_object(commit)
    for sha, data in loose.items():
        d = repo_path / "objects" / sha[:2].decode()
        d.mkdir(exist_ok=True)
        (d / sha[2:].decode()).write_bytes(data)
    repo.refs[b"refs/heads/main"] = commit.id


def _cli_fetch(env: Env, home: Path, target: str, tmp: Path) -> tuple[int, str, int]:
    """`paxos fetch` in its own process: (exit code, stderr, peak RSS in KiB)."""
    extra = {"PAXOS_KNOWN_HOSTS": str(env.opts.known_hosts),
             "PAXOS_SSH_IDENTITY": env.opts.identity_files[0]}
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    # Through a small forking parent: Linux keeps a process's peak RSS across execve, and a
    # child spawned straight from this (large, late in a full run) pytest process would report
    # pytest's peak, not its own. A fork from a small process starts from that process's size.
    argv = [sys.executable, "-c", _MEASURE, str(tmp / "rss"), PAXOS, "fetch", target]
    pid = os.posix_spawn(sys.executable, argv, paxos_env(home, **extra), file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, str(tmp / "out"), flags, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(tmp / "err"), flags, 0o644)])
    deadline = time.monotonic() + 120
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.wait4(pid, 0)
            pytest.fail("paxos fetch did not finish within 120 s")
        time.sleep(0.05)
    return (os.waitstatus_to_exitcode(status), (tmp / "err").read_text(),
            int((tmp / "rss").read_text()))


_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_fetch_refuses_a_decompression_bomb_with_bounded_memory(env, tmp_path):
    a = env.hosts[0]
    assert env.deploy(a.addr).errors == {}
    bomb = _bomb(1 << 30)  # ~1 MB that inflates to 1 GiB
    assert len(bomb) < 2 << 20
    fake = Blob.from_string(b"bomb").id
    _plant_commit(a.home / "var/paxoslog.git", fake, {fake: bomb})
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    code, err, rss = _cli_fetch(env, fresh, f"paxos@{a.addr}", tmp_path)
    assert rss < 400 * 1024, f"peak RSS {rss} KiB"
    assert code == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"fetched event log failed verification: object "
                               f"{fake.decode()[:12]} is larger than "), lines
    assert git_head(fresh) is None


def test_fetch_bounds_the_total_it_downloads(env, tmp_path, monkeypatch):
    a = env.hosts[0]
    assert env.deploy(a.addr).errors == {}
    monkeypatch.setattr(fetch_mod, "MAX_DOWNLOAD", 2048)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(RemoteError, match=f"^event log on {a.addr} is larger than 2048 bytes; "
                                          "refusing to fetch it$"):
        do_fetch(env, fresh, f"paxos@{a.addr}")
    assert git_head(fresh) is None


def test_fetch_refuses_an_object_whose_content_does_not_match_its_id(env, tmp_path):
    a = env.hosts[0]
    assert env.deploy(a.addr).errors == {}
    fake = Blob.from_string(b"claimed").id
    _plant_commit(a.home / "var/paxoslog.git", fake,
                  {fake: zlib.compress(b"blob 5\0other")})
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(RemoteError, match="^fetched event log failed verification: object "
                                          f"{fake.decode()[:12]} does not match its id$"):
        do_fetch(env, fresh, f"paxos@{a.addr}")


def test_verify_bounds_what_it_inflates(tmp_path, monkeypatch):
    from paxoslog.store import fastread
    from paxoslog.store.history import verify

    px = Paxos(tmp_path / "home")
    (tmp_path / "home").mkdir()
    px.ok("register", "host", "h1")
    repo = tmp_path / "home/var/paxoslog.git"
    fake = Blob.from_string(b"bomb").id
    _plant_commit(repo, fake, {fake: _bomb(64 << 20)})
    monkeypatch.setattr(fastread, "MAX_OBJECT", 1 << 20)
    result = verify(EventLog(str(repo)))
    assert result.problems and "is larger than 1048576 bytes" in result.problems[0]


def test_a_fetched_log_is_adopted_after_sanitizing(env, tmp_path):
    # the sanitized copy is what lands in the local log: verify and fsck clean
    a = env.hosts[0]
    env.px.ok("register", "memcache", "--css", "css0")
    assert env.deploy(a.addr).errors == {}
    subprocess.run(["git", "--git-dir", str(a.home / "var/paxoslog.git"), "gc", "-q",
                    "--aggressive"], check=True, timeout=60)  # deltas, as a host's git makes
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert do_fetch(env, fresh, f"paxos@{a.addr}").action == "adopted"
    assert git_head(fresh) == git_head(env.px.home)
    assert etc_snapshot(fresh) == etc_snapshot(env.px.home)
    subprocess.run(["git", "--git-dir", str(fresh / "var/paxoslog.git"), "fsck", "--strict"],
                   check=True, timeout=60, capture_output=True)
    assert "status: ok" in Paxos(fresh).ok("verify")


# ---------------------------------------------------------------- item 13.3: ports


@pytest.mark.parametrize("target", ["paxos@127.0.0.1:99999", "h:0", "h:65536", "h:-1", "h:x",
                                    "h:\u0661\u0662", "h:"])
def test_fetch_target_ports_outside_the_range_are_a_usage_error(target):
    with pytest.raises(UsageError) as err:
        target_spec(EMPTY, target, False)
    assert err.value.exit_code == 2


def test_fetch_with_a_bad_port_exits_2_without_connecting(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = Paxos(home)("fetch", "paxos@127.0.0.1:99999")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "paxos fetch: error: argument hostname: port number should be 65535 or less"]
    assert target_spec(EMPTY, "paxos@h:65535", False) == HostSpec("h", "paxos", 65535, False)


def test_a_registered_port_out_of_range_fails_that_host_only(env, cluster, tmp_path):
    # a hostile log can carry any port; connecting must not wrap it modulo 65536
    with SSHSession(env.opts) as session:
        out = session.run_many([HostSpec(env.hosts[0].addr, "paxos", 65536 + 22),
                                HostSpec(env.hosts[1].addr, "paxos")], lambda c: c.host)
    assert out.errors == {env.hosts[0].addr: "invalid port 65558"}
    assert list(out.results) == [env.hosts[1].addr]
