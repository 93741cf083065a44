"""paxoslog.remote.ssh and paxoslog.remote.sshpool against real sshd hosts (tests/hosts_fixture.py)."""

from __future__ import annotations

import base64
import getpass
import hashlib
import io
import socket
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest

from paxoslog.remote.ssh import (
    AuthenticationFailed,
    ConnectFailed,
    HostKeyChanged,
    HostKeyUnknown,
    HostSpec,
    SSHOptions,
    SSHTimeout,
    connect,
    resolve,
)
from paxoslog.remote.sshpool import SSHSession
from tests.hosts_fixture import EXTRA_PORT, TestCluster


def options(cluster: TestCluster, known_hosts: Path, **kw: object) -> SSHOptions:
    kw.setdefault("ask_password", None)
    return SSHOptions(known_hosts=known_hosts, identity_files=(str(cluster.client_key),),
                      use_agent=False, connect_timeout=5, command_timeout=10, **kw)


@pytest.fixture
def opts(cluster: TestCluster, tmp_path: Path) -> SSHOptions:
    return options(cluster, cluster.known_hosts_copy(tmp_path / "known_hosts"))


def fp_of(pub: Path) -> str:
    kind, b64 = pub.read_text().split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(b64)).fingerprint


# ---------------------------------------------------------------- connecting and commands


def test_key_login_runs_a_login_shell_with_quoted_arguments(cluster, opts):
    with connect(HostSpec(cluster.addrs[0], "paxos"), opts) as conn:
        who = conn.run(["sh", "-c", 'echo "$HOME $(id -un)"; shopt -q login_shell 2>/dev/null'])
        assert who.stdout == b"/home/paxos paxos\n"
        args = conn.run(["printf", "%s|", "a b", "$HOME", "'q'", "*", ""])
        assert (args.code, args.stdout) == (0, b"a b|$HOME|'q'|*||")
        failed = conn.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (failed.code, failed.stdout, failed.stderr) == (3, b"out\n", b"err\n")
        big = conn.run(["head", "-c", "3000000", "/dev/zero"])
        assert big.stdout == bytes(3_000_000)
        assert conn.run(["cat"], stdin=b"piped").stdout == b"piped"


def test_login_shell_is_used(cluster, opts):
    # bash -lc reads ~/.profile: the spec relies on it for the login PATH
    # (the profile holds the PATH line of the session's `paxos install`: kept, then restored)
    profile = cluster.host(cluster.addrs[1]).home / ".profile"
    before = profile.read_bytes() if profile.exists() else None
    profile.write_bytes((before or b"") + b"export PAXOS_PROFILE_READ=yes\n")
    try:
        with connect(HostSpec(cluster.addrs[1], "paxos"), opts) as conn:
            assert conn.run(["printenv", "PAXOS_PROFILE_READ"]).stdout == b"yes\n"
    finally:
        if before is None:
            profile.unlink()
        else:
            profile.write_bytes(before)


def test_per_host_user_and_port_do_not_leak(cluster, tmp_path):
    kh = cluster.known_hosts_copy(tmp_path / "known_hosts")
    a, b, c = cluster.addrs[:3]
    specs = [HostSpec(a, "paxos", EXTRA_PORT), HostSpec(b, "nobody"), HostSpec(c, "paxos")]
    with SSHSession(options(cluster, kh)) as session:
        out = session.run_many(specs, lambda conn: (conn.endpoint.port, conn.run(["id", "-un"]).stdout))
        # and a host with neither user nor port after hosts that had both
        local = session.run_many([HostSpec(c)], lambda conn: conn.endpoint)
    assert out.results == {a: (EXTRA_PORT, b"paxos\n"), c: (22, b"paxos\n")}
    assert out.errors == {b: f"authentication failed for nobody@{b}"}
    me = getpass.getuser()
    assert local.errors == {c: f"authentication failed for {me}@{c}"}


def test_ssh_config_applies_only_with_use_ssh_config(cluster, tmp_path):
    addr = cluster.addrs[2]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host db1\n  HostName {addr}\n  User paxos\n  Port {EXTRA_PORT}\n"
                      f"  IdentityFile {cluster.client_key}\n")
    opts = SSHOptions(known_hosts=cluster.known_hosts_copy(tmp_path / "kh"), ssh_config=config,
                      identity_files=(), use_agent=False, ask_password=None)
    ep = resolve(HostSpec("db1", use_ssh_config=True), opts)
    assert (ep.host, ep.address, ep.user, ep.port) == ("db1", addr, "paxos", EXTRA_PORT)
    assert ep.identity_files == (str(cluster.client_key),)
    # the host's own values win over the config
    assert resolve(HostSpec("db1", "other", 2200, use_ssh_config=True), opts).port == 2200
    # without the flag nothing of the config applies, even right after a host that used it
    plain = resolve(HostSpec("db1"), opts)
    assert (plain.address, plain.port, plain.user, plain.identity_files) == (
        "db1", 22, getpass.getuser(), ())
    with connect(HostSpec("db1", use_ssh_config=True), opts) as conn:
        assert conn.run(["id", "-un"]).stdout == b"paxos\n"


# ---------------------------------------------------------------- host keys


def test_unknown_host_key_is_refused_with_the_spec_message(cluster, tmp_path):
    host = cluster.hosts[3]
    kh = tmp_path / "known_hosts"
    with pytest.raises(HostKeyUnknown) as err:
        connect(HostSpec(host.addr, "paxos"), options(cluster, kh))
    assert str(err.value) == (f"{host.addr}: host key is not known (ED25519 "
                              f"{fp_of(host.host_key_pub)}); add it to known_hosts or use "
                              "--trust-new-hosts")
    assert not kh.exists()


def test_trust_new_hosts_accepts_and_records_the_key(cluster, tmp_path):
    host = cluster.hosts[3]
    kh = tmp_path / "ssh" / "known_hosts"
    opts = options(cluster, kh, trust_new_hosts=True)
    # the other port first: once the bare name has the key, OpenSSH (and we) accept that key on
    # any port without recording it again
    for port in (EXTRA_PORT, 22):
        with connect(HostSpec(host.addr, "paxos", port), opts) as conn:
            assert conn.run(["true"]).code == 0
    key = host.host_key_pub.read_text().split()[:2]
    assert kh.read_text().splitlines() == [f"[{host.addr}]:{EXTRA_PORT} {' '.join(key)}",
                                           f"{host.addr} {' '.join(key)}"]
    # recorded: trusted from now on without the flag
    with connect(HostSpec(host.addr, "paxos"), options(cluster, kh)) as conn:
        assert conn.run(["true"]).code == 0


def test_shell_prompt_decides_on_an_unknown_key(cluster, tmp_path):
    host = cluster.hosts[3]
    kh = tmp_path / "known_hosts"
    kh.write_text("# mine\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp4")  # no final LF
    asked: list[str] = []

    def answer(value: bool):
        def confirm(prompt: str) -> bool:
            asked.append(prompt)
            return value
        return confirm

    with pytest.raises(HostKeyUnknown):
        connect(HostSpec(host.addr, "paxos"), options(cluster, kh, confirm_new_host=answer(False)))
    with connect(HostSpec(host.addr, "paxos"), options(cluster, kh, confirm_new_host=answer(True))):
        pass
    fp = fp_of(host.host_key_pub)
    assert asked == [f"The authenticity of host '{host.addr}' can't be established. "
                     f"ED25519 key fingerprint is {fp}. Trust it? [y/N] "] * 2
    lines = kh.read_text().splitlines()
    assert lines[:2] == ["# mine", "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp4"]
    assert lines[2].startswith(f"{host.addr} ssh-ed25519 ")


def test_changed_host_key_is_always_refused(cluster, tmp_path):
    host = cluster.hosts[-1]
    kh = cluster.known_hosts_copy(tmp_path / "known_hosts")
    before = kh.read_text()
    cluster.revive(host.addr, new_host_key=True)
    message = f"{host.addr}: host key does not match known_hosts; refusing to connect"
    for trust in (False, True):
        with pytest.raises(HostKeyChanged) as err:
            connect(HostSpec(host.addr, "paxos"),
                    options(cluster, kh, trust_new_hosts=trust, confirm_new_host=lambda p: True))
        assert str(err.value) == message
    assert kh.read_text() == before


# ---------------------------------------------------------------- authentication


def test_password_is_asked_at_most_once_per_host_and_only_after_keys(cluster, tmp_path):
    addr = cluster.addrs[4]
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "not-a-password"

    opts = SSHOptions(known_hosts=cluster.known_hosts_copy(tmp_path / "kh"), identity_files=(),
                      use_agent=False, ask_password=ask)
    spec = HostSpec(addr, "pwuser")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed) as err:
            connect(spec, opts)
        assert str(err.value) == f"authentication failed for pwuser@{addr}"
    assert prompts == [f"[pwuser@{addr}] Login password for 'pwuser': "]
    # a key that works never reaches the prompt
    with connect(HostSpec(addr, "paxos"), options(cluster, opts.known_hosts, ask_password=ask)):
        pass
    assert len(prompts) == 1


def test_no_terminal_means_no_prompt(cluster, opts, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    opts = SSHOptions(known_hosts=opts.known_hosts, identity_files=(), use_agent=False)
    with pytest.raises(AuthenticationFailed, match=f"^authentication failed for paxos@{cluster.addrs[5]}$"):
        connect(HostSpec(cluster.addrs[5], "paxos"), opts)


# ---------------------------------------------------------------- timeouts and dead hosts


def test_dead_host_fails_fast(cluster, opts):
    addr = cluster.addrs[6]
    cluster.kill(addr)
    start = time.monotonic()
    with pytest.raises(ConnectFailed) as err:
        connect(HostSpec(addr, "paxos"), opts)
    assert time.monotonic() - start < opts.connect_timeout
    assert str(err.value) == "cannot connect: Connection refused"


def test_silent_server_times_out_on_connect(cluster, opts):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    opts.connect_timeout = 1
    try:
        start = time.monotonic()
        with pytest.raises(SSHTimeout) as err:
            connect(HostSpec("127.0.0.1", "paxos", port), opts)
        assert 0.8 < time.monotonic() - start < 3
        assert str(err.value) == f"timeout: connect to 127.0.0.1 port {port}"
    finally:
        server.close()


def test_command_timeout_leaves_the_connection_usable(cluster, opts):
    with connect(HostSpec(cluster.addrs[0], "paxos"), opts) as conn:
        start = time.monotonic()
        with pytest.raises(SSHTimeout) as err:
            conn.run(["sleep", "30"], timeout=1)
        assert time.monotonic() - start < 3
        assert str(err.value) == "timeout: sleep 30"
        assert conn.run(["echo", "ok"]).stdout == b"ok\n"


# ---------------------------------------------------------------- remote files


def test_remote_file_helpers(cluster, opts):
    host = cluster.hosts[7]
    with connect(HostSpec(host.addr, "paxos"), opts) as conn:
        conn.mkdir_p("~/etc/cell")
        conn.mkdir_p("etc/cell")  # idempotent
        conn.write_atomic("~/etc/cell/css0.conf", b"0 a 1 b 2\n")
        conn.write_atomic("etc/cell/css1.conf", b"old")
        conn.write_atomic("etc/cell/css1.conf", b"new", mode=0o600)
        assert (host.home / "etc/cell/css0.conf").read_bytes() == b"0 a 1 b 2\n"
        assert (host.home / "etc/cell/css1.conf").stat().st_mode & 0o777 == 0o600
        assert conn.listdir("etc/cell") == ["css0.conf", "css1.conf"]  # no temporary left
        assert conn.read_file("etc/cell/css1.conf") == b"new"
        assert conn.sha256("etc/cell/css1.conf") == hashlib.sha256(b"new").hexdigest()
        assert conn.sha256("etc/cell/none.conf") is None
        assert conn.exists("etc/cell") and not conn.exists("etc/none")
        conn.remove("etc/cell/css1.conf")
        conn.remove("etc/cell/css1.conf")  # missing_ok
        with pytest.raises(FileNotFoundError):
            conn.remove("etc/cell/css1.conf", missing_ok=False)
        with pytest.raises(FileNotFoundError):
            conn.read_file("etc/cell/css1.conf")
        assert conn.listdir("etc/cell") == ["css0.conf"]


def test_atomic_write_falls_back_to_remote_sync(cluster, opts):
    host = cluster.hosts[7]
    with connect(HostSpec(host.addr, "paxos"), opts) as conn:
        conn._fsync_supported = False  # as with a server lacking fsync@openssh.com
        conn.write_atomic("synced", b"data")
    assert (host.home / "synced").read_bytes() == b"data"


def test_host_killed_during_a_transfer_never_holds_a_partial_file(cluster, opts):
    host = cluster.hosts[8]
    old = b"old content\n"
    new = bytes(range(256)) * (256 * 1024)  # 64 MiB: long enough to be cut midway
    with connect(HostSpec(host.addr, "paxos"), opts) as conn:
        conn.write_atomic("big.conf", old)

    def kill_when_started() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(p.stat().st_size > 1 << 20 for p in host.home.glob(".big.conf.tmp-*")):
                break
            time.sleep(0.005)
        cluster.kill(host.addr)

    killer = threading.Thread(target=kill_when_started)
    conn = connect(HostSpec(host.addr, "paxos"), opts)
    killer.start()
    try:
        with pytest.raises(ConnectFailed):
            conn.write_atomic("big.conf", new)
    finally:
        killer.join()
        conn.close()
    assert (host.home / "big.conf").read_bytes() == old
    # after the host comes back, writing again converges
    cluster.revive(host.addr)
    with connect(HostSpec(host.addr, "paxos"), opts) as conn:
        conn.write_atomic("big.conf", new)
        assert conn.sha256("big.conf", limit=len(new)) == hashlib.sha256(new).hexdigest()


# ---------------------------------------------------------------- sessions


def test_run_many_collects_per_host_errors_while_others_succeed(cluster, opts):
    dead = cluster.addrs[9]
    cluster.kill(dead)
    addrs = cluster.addrs[:12]
    with SSHSession(opts) as session:
        out = session.run_many([HostSpec(a, "paxos") for a in addrs],
                               lambda conn: conn.run(["id", "-un"]).stdout)
    assert list(out.results) == [a for a in addrs if a != dead]
    assert set(out.results.values()) == {b"paxos\n"}
    assert out.errors == {dead: "cannot connect: Connection refused"}
    assert out.error_message() == f"{dead}: cannot connect: Connection refused"


def test_session_reuses_connections_and_bounds_parallelism(cluster, opts):
    opts.max_parallel = 3
    active, peak = 0, 0
    lock = threading.Lock()

    def work(conn):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.2)
        with lock:
            active -= 1
        return conn

    specs = [HostSpec(a, "paxos") for a in cluster.addrs[:8]]
    bar = io.StringIO()
    with SSHSession(opts) as session:
        first = session.run_many(specs, work, progress=True, stream=bar)
        again = session.run_many(specs, lambda conn: conn)
        assert session.connect(specs[0]) is first.results[specs[0].hostname]
    assert peak == 3
    assert all(first.results[h] is again.results[h] for h in first.results)
    assert "8/8 hosts" in bar.getvalue()
    assert all(not c.is_active() for c in first.results.values())  # closed with the session


def test_ssh_errors_are_paxos_errors(cluster, opts):
    from paxoslog.errors import PaxosError, RemoteError

    cluster.kill(cluster.addrs[6])
    with pytest.raises(RemoteError) as err:
        connect(HostSpec(cluster.addrs[6], "paxos"), opts)
    assert isinstance(err.value, PaxosError) and err.value.exit_code == 1
    assert err.value.message == "cannot connect: Connection refused"


PROMPTS_ON_A_TERMINAL = """
import sys
from pathlib import Path
from paxoslog.remote.ssh import HostSpec, SSHError, SSHOptions, connect, tty_confirm
kh, key, addr = sys.argv[1:4]
opts = SSHOptions(known_hosts=Path(kh), identity_files=(key,), use_agent=False,
                  confirm_new_host=tty_confirm)
with connect(HostSpec(addr, "paxos"), opts) as conn:
    print("RESULT", conn.run(["id", "-un"]).stdout.decode().strip())
opts = SSHOptions(known_hosts=Path(kh), identity_files=(), use_agent=False)
for _ in range(2):
    try:
        connect(HostSpec(addr, "paxos"), opts)
    except SSHError as e:
        print("ERROR", e)
"""


def test_prompts_on_a_terminal(cluster, tmp_path):
    import sys

    import pexpect

    host = cluster.hosts[5]
    kh = tmp_path / "known_hosts"
    child = pexpect.spawn(sys.executable, ["-c", PROMPTS_ON_A_TERMINAL, str(kh),
                                           str(cluster.client_key), host.addr],
                          timeout=20, encoding="utf-8")
    try:
        child.expect_exact(f"The authenticity of host '{host.addr}' can't be established. "
                           f"ED25519 key fingerprint is {fp_of(host.host_key_pub)}. "
                           "Trust it? [y/N] ")
        child.sendline("y")
        child.expect_exact("RESULT paxos")
        child.expect_exact(f"[paxos@{host.addr}] Login password for 'paxos': ")
        child.sendline("secret-never-echoed")
        child.expect_exact(f"ERROR authentication failed for paxos@{host.addr}")
        assert "secret" not in child.before  # not echoed
        # asked once per host per process: the second attempt fails without a prompt
        child.expect_exact(f"ERROR authentication failed for paxos@{host.addr}")
        child.expect(pexpect.EOF)
        assert "Login password" not in child.before
    finally:
        child.close(force=True)
    assert kh.read_text().startswith(f"{host.addr} ssh-ed25519 ")


def test_a_revoked_key_is_refused_even_with_trust_new_hosts(cluster, tmp_path):
    host = cluster.hosts[3]
    kind, b64 = host.host_key_pub.read_text().split()[:2]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@revoked * {kind} {b64}\n")
    with pytest.raises(HostKeyChanged):
        connect(HostSpec(host.addr, "paxos"), options(cluster, kh, trust_new_hosts=True))
    assert kh.read_text() == f"@revoked * {kind} {b64}\n"


def test_hashed_known_hosts_entries_are_honoured(cluster, tmp_path):
    host = cluster.hosts[3]
    kh = cluster.known_hosts_copy(tmp_path / "known_hosts")
    subprocess.run(["ssh-keygen", "-H", "-f", str(kh)], check=True, capture_output=True)
    assert host.addr not in kh.read_text()
    # lines paramiko cannot read do not hide the others
    kh.write_text("@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp4\n"
                  "garbage line\n" + kh.read_text())
    with connect(HostSpec(host.addr, "paxos"), options(cluster, kh)) as conn:
        assert conn.run(["true"]).code == 0
