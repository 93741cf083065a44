"""known_hosts matching (paxoslog.hostpatterns / paxoslog.hostkeys) with OpenSSH as the reference:
verdicts against a real `ssh` to a real sshd test host, matched lines against `ssh-keygen -lF`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from paxoslog.ssh import HostKeyChanged, HostKeyUnknown, HostSpec, SSHOptions, connect
from tests.hosts_fixture import TestCluster


def options(cluster: TestCluster, known_hosts: Path, **kw: object) -> SSHOptions:
    kw.setdefault("ask_password", None)
    return SSHOptions(known_hosts=known_hosts, identity_files=(str(cluster.client_key),),
                      use_agent=False, connect_timeout=5, command_timeout=10, **kw)


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory) -> dict[str, str]:
    """Public keys ("type base64") that no test host has, one per type."""
    folder = tmp_path_factory.mktemp("other-keys")
    keys = {}
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "2048"]), ("ecdsa", [])):
        path = folder / kind
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "", "-f",
                        str(path)], check=True, capture_output=True)
        keys[kind] = " ".join(path.with_suffix(".pub").read_text().split()[:2])
    return keys


def host_key(cluster: TestCluster, i: int = 0) -> str:
    return " ".join(cluster.hosts[i].host_key_pub.read_text().split()[:2])


def ssh_verdict(cluster: TestCluster, kh: Path, addr: str, port: int, mode: str) -> str:
    """What OpenSSH itself decides: known / unknown / changed / revoked."""
    proc = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={mode}",
         "-o", f"UserKnownHostsFile={kh}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no", "-o", "HashKnownHosts=no",
         "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-i", str(cluster.client_key),
         "-p", str(port), f"{cluster.user}@{addr}", "true"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if "is marked as revoked" in proc.stderr and proc.returncode != 0:
        return "revoked"
    if proc.returncode == 0:
        return "known"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr:
        return "changed"
    if re.search(r"No \S+ host key is known", proc.stderr):
        return "unknown"
    raise AssertionError(f"unexpected ssh outcome {proc.returncode}: {proc.stderr}")


def our_verdict(cluster: TestCluster, kh: Path, addr: str, port: int, trust: bool) -> str:
    try:
        with connect(HostSpec(addr, cluster.user, port),
                     options(cluster, kh, trust_new_hosts=trust)) as conn:
            assert conn.run(["true"]).code == 0
        return "known"
    except HostKeyChanged as e:
        return "revoked" if "revoked" in e.reason else "changed"
    except HostKeyUnknown:
        return "unknown"


# ---------------------------------------------------------------- the reported scenario


def test_a_pattern_line_with_another_key_is_refused_even_with_trust_new_hosts(
        cluster, tmp_path, other_keys):
    host = cluster.hosts[0]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{host.addr[:-1]}? {other_keys['ed25519']}\n")
    before = kh.read_bytes()
    for trust in (False, True):
        with pytest.raises(HostKeyChanged) as err:
            connect(HostSpec(host.addr, "paxos"),
                    options(cluster, kh, trust_new_hosts=trust, confirm_new_host=lambda p: True))
        assert str(err.value) == (f"{host.addr}: host key does not match known_hosts; "
                                  "refusing to connect")
    assert kh.read_bytes() == before
    assert ssh_verdict(cluster, kh, host.addr, 22, "accept-new") == "changed"


def test_a_pattern_line_with_the_right_key_connects(cluster, tmp_path):
    host = cluster.hosts[0]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{host.addr[:-1]}?,other.example {host_key(cluster)}\n")
    before = kh.read_bytes()
    with connect(HostSpec(host.addr, "paxos"), options(cluster, kh)) as conn:
        assert conn.run(["true"]).code == 0
    assert kh.read_bytes() == before
