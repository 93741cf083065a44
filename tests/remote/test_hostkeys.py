"""known_hosts matching (paxoslog.remote.hostpatterns / paxoslog.remote.hostkeys) with OpenSSH as the reference:
verdicts against a real `ssh` to a real sshd test host, matched lines against `ssh-keygen -lF`."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paxoslog.remote import hostpatterns
from paxoslog.remote.hostkeys import KnownHosts
from paxoslog.remote.hostpatterns import KeyStatus, Marker
from paxoslog.remote.ssh import HostKeyChanged, HostKeyUnknown, HostSpec, SSHOptions, connect
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


def test_a_revoked_certificate_revokes_its_key_as_in_openssh(cluster, tmp_path):
    host = cluster.hosts[1]
    pub = tmp_path / "host.pub"
    pub.write_text(host_key(cluster, 1) + "\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "ca")],
                   check=True, capture_output=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(tmp_path / "ca"), "-h", "-I", "h", "-n",
                    host.addr, str(pub)], check=True, capture_output=True)
    cert = " ".join((tmp_path / "host-cert.pub").read_text().split()[:2])
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{host.addr} {host_key(cluster, 1)}\n@revoked {host.addr} {cert}\n")
    assert ssh_verdict(cluster, kh, host.addr, 22, "yes") == "revoked"
    assert our_verdict(cluster, kh, host.addr, 22, trust=True) == "revoked"


# ---------------------------------------------------------------- matched lines: ssh-keygen -lF

NAMES = ["host1.example", "a", "127.0.0.1", "[127.0.0.1]:2222", "[h.example]:22", "xy-z"]


def keygen_matches(kh: Path, name: str) -> list[tuple[int, Marker]]:
    """The lines `ssh-keygen -lF` reports for `name` (it parses every key, as ssh does)."""
    proc = subprocess.run(["ssh-keygen", "-lF", name, "-f", str(kh)], capture_output=True,
                          timeout=30)
    found = []
    for line in proc.stdout.decode("latin-1").splitlines():
        m = re.fullmatch(r"# Host .* found: line (\d+) ?(CA|REVOKED)?", line)
        if m:
            marker = {"CA": Marker.CA, "REVOKED": Marker.REVOKED}.get(m.group(2) or "",
                                                                     Marker.NONE)
            found.append((int(m.group(1)), marker))
    return found


@st.composite
def subpatterns(draw, name: str) -> str:
    # mostly variations of the name looked up, so that lines match, nearly match or negate it
    base = draw(st.one_of(st.just(name), st.just(name), st.sampled_from(NAMES),
                          st.sampled_from(["", "x", "x" * 1022, "x" * 1023])))
    chars = list(base)
    for op, pos, c in draw(st.lists(st.tuples(
            st.sampled_from(["set", "insert", "delete", "upper"]), st.integers(0, 40),
            st.sampled_from(list("*?*?*?.!,[]:aZ1#|@"))), max_size=3)):
        i = pos % (len(chars) + 1)
        if op == "insert":
            chars.insert(i, c)
        elif chars and i < len(chars):
            if op == "set":
                chars[i] = c
            elif op == "delete":
                del chars[i]
            else:
                chars[i] = chars[i].upper()
    return ("!" if draw(st.integers(0, 3)) == 0 else "") + "".join(chars)


@st.composite
def host_fields(draw, name: str) -> str:
    if draw(st.integers(0, 4)) == 0:
        field = hostpatterns.hash_host(draw(st.sampled_from([name, name, *NAMES, "other"])),
                                       draw(st.binary(min_size=20, max_size=20)))
        if draw(st.booleans()):  # damaged: one character changed
            i = draw(st.integers(0, len(field) - 1))
            field = field[:i] + draw(st.sampled_from(list("A/+|=x"))) + field[i + 1:]
        return field
    return ",".join(draw(st.lists(subpatterns(name), min_size=1, max_size=4)))


def test_matching_lines_agree_with_ssh_keygen(other_keys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("property")
    ed = other_keys["ed25519"]
    keys = [ed, other_keys["rsa"], other_keys["ecdsa"], ed + " a comment",
            "rsa-sha2-512 " + other_keys["rsa"].split()[1],
            # invalid: a type without its key, a key of another type, an unknown type, none
            "ssh-ed25519 AAAA", "ssh-rsa " + ed.split()[1], "ssh-foo " + ed.split()[1],
            "ssh-ed25519", "", "#" + ed]

    def files(name: str) -> st.SearchStrategy[list[str]]:
        lines = st.builds(
            lambda lead, marker, hosts, sep, key: f"{lead}{marker}{hosts}{sep}{key}",
            st.sampled_from(["", " ", "\t"]),
            st.sampled_from(["", "", "", "@revoked ", "@cert-authority ", "@revoked\t",
                             "@bogus "]),
            host_fields(name), st.sampled_from([" ", "\t", "  "]), st.sampled_from(keys))
        return st.lists(st.one_of(lines, st.sampled_from(["", "# comment", "garbage"])),
                        min_size=1, max_size=6)

    @settings(max_examples=300, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(NAMES), label="name")
        content = data.draw(files(name), label="known_hosts")
        kh = folder / "known_hosts"
        text = ("\n".join(content) + "\n").encode()
        kh.write_bytes(text)
        entries, _ = hostpatterns.parse(text)
        ours = [(e.line, e.marker) for e in hostpatterns.matching(entries, name)]
        assert ours == keygen_matches(kh, name), text

    check()


def test_host_names_are_matched_case_insensitively():
    key = b"AAAAC3NzaC1lZDI1NTE5AAAAIA23cIZcczNilhc+Sgk03UT1+Hsf17n2zANm3Nzzi/f4"
    entries, _ = hostpatterns.parse(b"HOST1.Example,!Other.example ssh-ed25519 " + key + b"\n")
    assert [e.line for e in hostpatterns.matching(entries, "Host1.EXAMPLE")] == [1]
    assert hostpatterns.matching(entries, "other.EXAMPLE") == []
    # hashes are of the lowercased name, as ssh looks them up and writes them
    salt = bytes(range(20))
    field = hostpatterns.hash_host("host1.example", salt)
    entries, _ = hostpatterns.parse(f"{field} {entries[0].keytype} "
                                    f"{base64.b64encode(entries[0].blob).decode()}\n".encode())
    assert [e.line for e in hostpatterns.matching(entries, "HOST1.example")] == [1]


# ---------------------------------------------------------------- a hostile known_hosts


def test_pathological_patterns_take_linear_time():
    start = time.monotonic()
    pattern = "*?" * 500 + "x"
    assert hostpatterns.match_pattern("a" * 1000, pattern) is False
    assert hostpatterns.match_pattern("a" * 999 + "x", "*a*a*a*a*a*a*a*a*a*a*x") is True
    line = (",".join(["*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?b"] * 40) + " ssh-ed25519 "
            "AAAAC3NzaC1lZDI1NTE5AAAAIA23cIZcczNilhc+Sgk03UT1+Hsf17n2zANm3Nzzi/f4\n")
    entries, _ = hostpatterns.parse(line.encode() * 200)
    assert hostpatterns.matching(entries, "a" * 60 + ".example") == []
    assert time.monotonic() - start < 5


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(data=st.lists(st.one_of(
    st.binary(max_size=80),
    st.sampled_from([b"@revoked", b"@revoked ", b"@cert-authority * ", b"|1|", b"|1|AAAA|",
                     b"* ssh-ed25519 ", b"ssh-rsa AAAAB3NzaC1yc2E=", b"\0", b"\r", b"!", b","]),
), max_size=12).map(b"".join))
def test_any_bytes_are_read_without_an_exception(data: bytes):
    entries, skipped = hostpatterns.parse(data)
    for name in ("a", "[a]:2222", "*", ""):
        matched = hostpatterns.matching(entries, name)
        for blob in (b"", b"\0\0\0\x0bssh-ed25519" + bytes(36)):
            hostpatterns.key_status(matched, blob)
            hostpatterns.is_revoked(entries, blob)
    assert len(entries) + len(skipped) <= data.count(b"\n") + 1


@pytest.mark.parametrize("make", [
    lambda p: p.mkdir(),
    lambda p: os.mkfifo(p),
    lambda p: p.write_bytes(b"#" * 1001),
], ids=["directory", "fifo", "too-large"])
def test_an_unusable_known_hosts_refuses_every_host_with_one_line(cluster, tmp_path, make,
                                                                  monkeypatch):
    monkeypatch.setattr("paxoslog.remote.hostkeys.MAX_KNOWN_HOSTS_BYTES", 1000)
    host = cluster.hosts[0]
    kh = tmp_path / "known_hosts"
    make(kh)
    start = time.monotonic()
    with pytest.raises(HostKeyUnknown) as err:
        connect(HostSpec(host.addr, "paxos"), options(cluster, kh, trust_new_hosts=True))
    assert time.monotonic() - start < 10  # a FIFO is not waited on
    assert str(err.value).startswith(f"{host.addr}: cannot check the host key: cannot read {kh}: ")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- recording new keys


class FakeKey:
    """What KnownHosts.add needs of a paramiko key."""

    def __init__(self, n: int) -> None:
        self._blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + bytes([n]) * 32

    def get_name(self) -> str:
        return "ssh-ed25519"

    def get_base64(self) -> str:
        return base64.b64encode(self._blob).decode()

    def asbytes(self) -> bytes:
        return self._blob


def test_new_keys_are_appended_in_openssh_format(tmp_path):
    kh = tmp_path / "ssh" / "known_hosts"
    known = KnownHosts(kh)
    assert known.add("Db1.Example", 22, FakeKey(1)) is True
    assert known.add("10.0.0.1", 2222, FakeKey(2)) is True
    assert kh.read_text().splitlines() == [f"db1.example ssh-ed25519 {FakeKey(1).get_base64()}",
                                           f"[10.0.0.1]:2222 ssh-ed25519 {FakeKey(2).get_base64()}"]
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    # what was written is what is read back, by us and by OpenSSH
    for session in (known, KnownHosts(kh)):
        assert session.check("db1.example", 22, FakeKey(1)) is KeyStatus.KNOWN
        assert session.check("10.0.0.1", 2222, FakeKey(2)) is KeyStatus.KNOWN
        assert session.check("10.0.0.1", 22, FakeKey(2)) is KeyStatus.UNKNOWN
    assert [n for n, _ in keygen_matches(kh, "[10.0.0.1]:2222")] == [2]
    with pytest.raises(ValueError):
        known.add("*.example", 22, FakeKey(3))
    assert len(kh.read_text().splitlines()) == 2


def test_concurrent_appends_from_separate_sessions_stay_whole_lines(tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("# no final newline")
    sessions = [KnownHosts(kh) for _ in range(8)]
    barrier = threading.Barrier(len(sessions))

    def add(i: int) -> None:
        barrier.wait()
        sessions[i].add(f"h{i}", 22, FakeKey(i))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = kh.read_text().split("\n")
    assert lines[0] == "# no final newline" and lines[-1] == ""
    assert sorted(lines[1:-1]) == sorted(f"h{i} ssh-ed25519 {FakeKey(i).get_base64()}"
                                         for i in range(8))


def test_a_key_that_cannot_be_recorded_is_still_trusted_for_the_session(cluster, tmp_path,
                                                                        caplog):
    host = cluster.hosts[0]
    kh = tmp_path / "known_hosts"
    kh.symlink_to(tmp_path / "missing" / "known_hosts")  # reads as absent, cannot be created
    opts = options(cluster, kh, trust_new_hosts=True)
    with connect(HostSpec(host.addr, "paxos"), opts) as conn:  # as OpenSSH: a warning only
        assert conn.run(["true"]).code == 0
    assert "cannot record the host key" in caplog.text
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("name,ok", [
    ("db1.example", True), ("10.0.0.1", True), ("::1", True), ("fe80::1%eth0", True),
    ("*.example", False), ("db?", False), ("a,b", False), ("!a", False), ("a b", False),
    ("a\nb", False), ("[a]:22", False), ("|1|x|y", False), ("@revoked", False), ("#a", False),
    ("", False), ("a\\b", False), ("a'b", False),
])
def test_only_literal_host_names_are_recorded(name, ok):
    assert hostpatterns.recordable(name) is ok
