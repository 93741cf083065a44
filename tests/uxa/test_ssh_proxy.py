"""`--use-ssh-config` honours ProxyJump (a `direct-tcpip` channel of the jump host's connection)
and ProxyCommand (the command's pipes), instead of silently dialling the host directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from paxoslog.remote.sshconfig import HostSpec, SSHOptions, resolve
from paxoslog.remote.ssherrors import ConnectFailed
from tests.conftest import Paxos
from tests.deploy_helpers import wipe
from tests.hosts_fixture import TestCluster


def _admin(cluster: TestCluster, tmp_path: Path, config: str) -> Paxos:
    px = Paxos(tmp_path / "admin")
    (px.home / ".ssh").mkdir(parents=True)
    (px.home / ".ssh" / "config").write_text(config)
    px.env.update(PAXOS_KNOWN_HOSTS=str(cluster.known_hosts_copy(tmp_path / "kh")),
                  PAXOS_SSH_IDENTITY=str(cluster.client_key))
    return px


def test_proxy_jump_goes_through_the_jump_host(cluster: TestCluster, tmp_path: Path) -> None:
    jump, target = cluster.hosts[11:13]
    wipe(target)
    px = _admin(cluster, tmp_path, f"Host {target.addr}\n  ProxyJump paxos@{jump.addr}:22\n")
    px.ok("register", "host", "--use-ssh-config", "--user", "paxos", target.addr)
    assert px.ok("deploy") == f"{target.addr}: changed\nrecap: 1 host: 1 changed\n"
    assert (target.home / "etc" / "DEPLOYED").exists()
    # the jump host is the route: without it the target cannot be reached
    cluster.kill(jump.addr)
    proc = px("deploy")
    assert proc.returncode == 1
    assert proc.stderr == (f"{target.addr}: jump host {jump.addr}: cannot connect: "
                           "Connection refused\n")


def test_proxy_command_carries_the_connection(cluster: TestCluster, tmp_path: Path) -> None:
    (target,) = cluster.hosts[13:14]
    wipe(target)
    marker = tmp_path / "proxy-used"
    px = _admin(cluster, tmp_path, f"Host {target.addr}\n"
                f"  ProxyCommand sh -c 'echo %h:%p > {marker}; exec nc %h %p'\n")
    px.ok("register", "host", "--use-ssh-config", "--user", "paxos", target.addr)
    assert px.ok("deploy") == f"{target.addr}: changed\nrecap: 1 host: 1 changed\n"
    assert marker.read_text() == f"{target.addr}:22\n"
    assert (target.home / "etc" / "DEPLOYED").exists()


def test_proxy_settings_are_read_only_with_use_ssh_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("Host *\n  ProxyJump a@j1:2222,j2\n")
    opts = SSHOptions(ssh_config=cfg, identity_files=())
    ep = resolve(HostSpec("h", use_ssh_config=True), opts)
    assert ep.proxy_jump == (HostSpec("j1", "a", 2222, True), HostSpec("j2", None, None, True))
    assert resolve(HostSpec("h"), opts).proxy_jump == ()
    cfg.write_text("Host *\n  ProxyJump j1:99999\n")
    with pytest.raises(ConnectFailed, match="invalid ProxyJump"):
        resolve(HostSpec("h", use_ssh_config=True), opts)
