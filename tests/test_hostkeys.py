"""known_hosts matching (paxoslog.hostpatterns / paxoslog.hostkeys) with OpenSSH as the reference:
verdicts against a real `ssh` to a real sshd test host, matched lines against `ssh-keygen -lF`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from paxoslog.ssh import HostKeyChanged, HostKeyUnknown, HostSpec, SSHOptions, connect
from tests.hosts_fixture import EXTRA_PORT, TestCluster


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


# ---------------------------------------------------------------- verdicts: ours == OpenSSH's


def hashed(name: str, key: str, tmp: Path) -> str:
    """`name key` hashed by OpenSSH itself (ssh-keygen -H)."""
    f = tmp / "to-hash"
    f.write_text(f"{name} {key}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(f)], check=True, capture_output=True)
    line = f.read_text().strip()
    assert line.startswith("|1|")
    return line


# (id, port, known_hosts lines from (A = address, P = address with its last digit as `?`,
# K = the host's key, Os = other keys by type, H = hashing), OpenSSH's verdict)
VERDICTS = [
    ("prefix-pattern-other-key", 22, lambda A, P, K, Os, H: [f"{P} {Os['ed25519']}"], "changed"),
    ("prefix-pattern-right-key", 22, lambda A, P, K, Os, H: [f"{P} {K}"], "known"),
    ("star-pattern", 22, lambda A, P, K, Os, H: [f"{A[:-1]}* {K}"], "known"),
    ("star-other-key", 22, lambda A, P, K, Os, H: [f"* {Os['ed25519']}"], "changed"),
    ("list", 22, lambda A, P, K, Os, H: [f"x.example,{A},y {K}"], "known"),
    ("negated-after", 22, lambda A, P, K, Os, H: [f"{P},!{A} {K}"], "unknown"),
    ("negated-first", 22, lambda A, P, K, Os, H: [f"!{A},{P} {Os['ed25519']}"], "unknown"),
    ("negated-other-host", 22, lambda A, P, K, Os, H: [f"!x.example,{P} {K}"], "known"),
    ("any-line-with-the-key", 22,
     lambda A, P, K, Os, H: [f"{A} {Os['ed25519']}", f"{P} {K}"], "known"),
    ("only-another-type", 22, lambda A, P, K, Os, H: [f"{A} {Os['rsa']}"], "changed"),
    ("another-type-and-the-key", 22,
     lambda A, P, K, Os, H: [f"{A} {Os['ecdsa']}", f"{A} {K}"], "known"),
    ("bracket-22-ignored", 22, lambda A, P, K, Os, H: [f"[{A}]:22 {K}"], "unknown"),
    ("bracket-port", EXTRA_PORT, lambda A, P, K, Os, H: [f"[{A}]:{EXTRA_PORT} {K}"], "known"),
    ("bracket-port-pattern", EXTRA_PORT, lambda A, P, K, Os, H: [f"[{P}]:2??? {K}"], "known"),
    ("bracket-port-other-key", EXTRA_PORT,
     lambda A, P, K, Os, H: [f"[{P}]:{EXTRA_PORT} {Os['ed25519']}"], "changed"),
    ("bare-host-other-port", 22, lambda A, P, K, Os, H: [f"[{A}]:{EXTRA_PORT} {Os['ed25519']}"],
     "unknown"),
    ("port-falls-back-to-bare", EXTRA_PORT, lambda A, P, K, Os, H: [f"{A} {K}"], "known"),
    ("port-fallback-other-key", EXTRA_PORT,
     lambda A, P, K, Os, H: [f"{A} {Os['ed25519']}"], "unknown"),
    ("star-matches-ports", EXTRA_PORT, lambda A, P, K, Os, H: [f"* {Os['ed25519']}"], "changed"),
    ("hashed", 22, lambda A, P, K, Os, H: [H(A, K)], "known"),
    ("hashed-other-key", 22, lambda A, P, K, Os, H: [H(A, Os["ed25519"])], "changed"),
    ("hashed-port", EXTRA_PORT, lambda A, P, K, Os, H: [H(f"[{A}]:{EXTRA_PORT}", K)], "known"),
    ("hashed-other-host", 22, lambda A, P, K, Os, H: [H("x.example", Os["ed25519"])], "unknown"),
    ("cert-authority-ignored", 22,
     lambda A, P, K, Os, H: [f"@cert-authority * {Os['ed25519']}"], "unknown"),
    ("revoked", 22, lambda A, P, K, Os, H: [f"{A} {K}", f"@revoked {P} {K}"], "revoked"),
    ("revoked-other-key", 22,
     lambda A, P, K, Os, H: [f"{A} {K}", f"@revoked * {Os['ed25519']}"], "known"),
    ("tabs-crlf-comments", 22,
     lambda A, P, K, Os, H: ["# c", "", "  \t# indented", f"\t{A}\t{K}\tcomment\r"], "known"),
    ("uppercase-pattern", 22, lambda A, P, K, Os, H: [f"X.EXAMPLE,{P} {Os['ed25519']}"], "changed"),
    ("subpattern-too-long", 22,
     lambda A, P, K, Os, H: [f"{A},{'x' * 1023} {Os['ed25519']}"], "unknown"),
    ("subpattern-just-short-enough", 22,
     lambda A, P, K, Os, H: [f"{A},{'x' * 1022} {Os['ed25519']}"], "changed"),
    ("malformed-lines-skipped", 22, lambda A, P, K, Os, H: [
        "garbage", f"{A}", f"{A} ssh-ed25519", f"{A} ssh-ed25519 !!!!", f"{A} ssh-foo AAAA",
        f"{A} ssh-rsa {K.split()[1]}", f"{A} #{K}", f"@bogus {A} {Os['ed25519']}",
        f"@revoked @revoked {A} {K}", f"@revoked\t{A} {K}", "|1|bad|hash " + Os["ed25519"],
        f"{A} {K}"], "known"),
    ("malformed-lines-alone", 22, lambda A, P, K, Os, H: [
        f"{A} ssh-ed25519 AAAA", f"{A} ssh-rsa {K.split()[1]}", f"{A} {K.split()[0]}\0{K}",
        f"{A}\0"], "unknown"),
    ("nul-ends-the-line", 22, lambda A, P, K, Os, H: [f"{A} {Os['ed25519']}\0{K}"], "changed"),
    # OpenSSH 9.2 reads on past a NUL that ends the host field (later versions skip the line)
    ("nul-after-the-host-field", 22, lambda A, P, K, Os, H: [f"{A}\0 {Os['ed25519']}"],
     "changed"),
]


@pytest.mark.parametrize("port,lines,expected", [v[1:] for v in VERDICTS],
                         ids=[v[0] for v in VERDICTS])
def test_verdicts_match_openssh(cluster, tmp_path, other_keys, port, lines, expected):
    host = cluster.hosts[1]
    addr = host.addr
    text = ("\n".join(lines(addr, addr[:-1] + "?", host_key(cluster, 1), other_keys,
                            lambda n, k: hashed(n, k, tmp_path))) + "\n").encode()
    # strict: OpenSSH with StrictHostKeyChecking=yes, us without --trust-new-hosts
    strict = tmp_path / "strict"
    strict.write_bytes(text)
    assert ssh_verdict(cluster, strict, addr, port, "yes") == expected
    assert our_verdict(cluster, strict, addr, port, trust=False) == expected
    assert strict.read_bytes() == text
    # accepting: OpenSSH's accept-new and --trust-new-hosts refuse and record the same
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    theirs.write_bytes(text)
    ours.write_bytes(text)
    accepted = "known" if expected == "unknown" else expected
    assert ssh_verdict(cluster, theirs, addr, port, "accept-new") == accepted
    assert our_verdict(cluster, ours, addr, port, trust=True) == accepted
    assert ours.read_bytes() == theirs.read_bytes()
    assert (ours.read_bytes() != text) == (expected == "unknown")


@pytest.mark.parametrize("port,lines", [
    (22, lambda A, K: [f"{A} {K}", f"@revoked x.example {K}"]),
    (EXTRA_PORT, lambda A, K: [f"@revoked {A} {K}"]),
], ids=["revoked-for-another-host", "revoked-for-the-bare-host-on-another-port"])
def test_a_revoked_key_is_refused_wherever_it_is_listed(cluster, tmp_path, port, lines):
    """Deliberately stricter than OpenSSH, which accepts both (it only honours @revoked lines
    naming the host, and skips them in its port-less fallback): a revoked key is refused."""
    host = cluster.hosts[1]
    kh = tmp_path / "known_hosts"
    kh.write_text("\n".join(lines(host.addr, host_key(cluster, 1))) + "\n")
    before = kh.read_bytes()
    with pytest.raises(HostKeyChanged) as err:
        connect(HostSpec(host.addr, "paxos", port), options(cluster, kh, trust_new_hosts=True))
    assert str(err.value).startswith(f"{host.addr}: host key is revoked in known_hosts (ED25519 "
                                     "SHA256:")
    assert str(err.value).endswith("); refusing to connect")
    assert kh.read_bytes() == before
