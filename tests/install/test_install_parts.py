"""The parts of `paxos install` that need no host: the wheels, what is read back from a host
(INSTALLED, the probe) and the agent version check."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from paxoslog.app import wheels
from paxoslog.app.agentversion import agent_version_mismatch
from paxoslog.app.install import InstallFailed, parse_installed, parse_probe
from paxoslog.remote.agentcall import AgentReply


def test_bundle_is_built_once_and_holds_only_what_nodes_need(tmp_path: Path):
    b = wheels.bundle(tmp_path / "cache")
    assert b.directory == tmp_path / "cache" / f"{b.version}-{b.build}"
    index = (b.directory / "INDEX").stat().st_mtime_ns
    assert wheels.bundle(tmp_path / "cache") == b
    assert (b.directory / "INDEX").stat().st_mtime_ns == index  # cached, not rebuilt
    names = sorted(p.name.split("-")[0] for p in b.directory.glob("*.whl"))
    assert names == ["msgpack", "paxoslog", "pip", "pyyaml", "uvloop"]
    with zipfile.ZipFile(b.directory / b.wheels[0]) as zf:
        files = zf.namelist()
        entry_points = zf.read(f"paxoslog-{b.version}.dist-info/entry_points.txt").decode()
        meta = zf.read(f"paxoslog-{b.version}.dist-info/METADATA").decode()
        assert zf.read("paxoslog/BUILD").decode().strip() == b.build
        record = zf.read(f"paxoslog-{b.version}.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if digest:
                data = zf.read(name)
                want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert (digest, int(size)) == ("sha256=" + want.decode(), len(data))
    assert "nodes/agent/main.py" in files and not [f for f in files if f.startswith("tests/")]
    assert not [f for f in files if "__pycache__" in f]
    assert "paxos-node = nodes.agent.main:main" in entry_points
    assert "paxos = " not in entry_points  # the admin's script needs paramiko: not on hosts
    requires = sorted(line.split()[1] for line in meta.splitlines()
                      if line.startswith("Requires-Dist:"))
    assert sorted(r.split("<")[0].split(">")[0].lower() for r in requires) == ["msgpack", "pyyaml", "uvloop"]


def test_our_wheel_is_reproducible(tmp_path: Path):
    one = wheels.bundle(tmp_path / "a")
    two = wheels.bundle(tmp_path / "b")
    for name in one.wheels:
        assert (one.directory / name).read_bytes() == (two.directory / name).read_bytes()


def test_the_build_id_follows_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first = wheels.local_build()
    extra = tmp_path / "x.py"
    extra.write_text("changed = True\n")
    files = wheels._source_files()
    monkeypatch.setattr(wheels, "_source_files", lambda: [*files, ("paxoslog/x.py", extra)])
    monkeypatch.setattr(wheels, "_build_memo", None)
    assert wheels.local_build() != first


@pytest.mark.parametrize("raw", [
    b"", b"version 0.1.0\n", b"version 0.1.0\nbuild XYZ\n", b"\xff\xfe", b"garbage",
    b"version 0 1\nbuild 0123456789ab\n", b"version 0.1.0\nbuild 0123456789abc\n",
])
def test_installed_file_that_is_not_ours_means_not_installed(raw: bytes):
    assert parse_installed(raw) is None


def test_installed_file():
    assert parse_installed(b"version 0.1.0\nbuild 0123456789ab\n") == ("0.1.0", "0123456789ab")


PROBE = b"python Python 3.11.2\nmachine x86_64\nhome /home/paxos\n"


def test_probe():
    assert parse_probe("h", PROBE) == ("3.11.2", "x86_64", "/home/paxos")
    assert parse_probe("h", PROBE.replace(b"3.11.2", b"3.12.0rc1")) == \
        ("3.12.0", "x86_64", "/home/paxos")


@pytest.mark.parametrize("out, message", [
    (b"python none\nmachine x86_64\nhome /h\n",
     "python3 not found on h (the node programs need Python >= 3.11)"),
    (PROBE.replace(b"3.11.2", b"3.10.12"),
     "python3 on h is 3.10.12; the node programs need Python >= 3.11"),
    (PROBE.replace(b"Python 3.11.2", b"bash: python3: \x1b[31mbroken"),
     "python3 on h does not tell its version: 'bash: python3: ?[31mbroken'"),
    (PROBE.replace(b"x86_64", b"x86 64; rm"), "h does not tell its machine type"),
    (PROBE.replace(b"/home/paxos", b"/home/it's"), "h has an unusable home directory"),
    (PROBE.replace(b"/home/paxos", b"relative"), "h has an unusable home directory"),
    (PROBE.replace(b"/home/paxos", b"/home/../etc"), "h has an unusable home directory"),
    (b"\xff" * 100_000, "python3 on h does not tell its version: ''"),
])
def test_probe_refusals_are_one_clear_line(out: bytes, message: str):
    with pytest.raises(InstallFailed) as e:
        parse_probe("h", out)
    assert e.value.message == message


def reply(**result) -> AgentReply:
    return AgentReply("h", 0, result=result)


def test_agent_version_mismatch():
    version, build = wheels.local_version(), wheels.local_build()
    assert agent_version_mismatch(reply(agent=version, build=build)) is None
    assert agent_version_mismatch(reply(agent=version, build=None)) is None  # a source tree
    assert agent_version_mismatch(reply(agent="0.0.9", build=build)) == \
        f"agent version 0.0.9 differs from the admin's {version}"
    assert agent_version_mismatch(reply(agent=version, build="0123456789ab")) == \
        f"agent build 0123456789ab differs from the admin's {build}"
    # no version to compare: a failed or garbled call is not a version mismatch
    assert agent_version_mismatch(AgentReply("h", 127, reason="paxos-node not found on h")) is None
    assert agent_version_mismatch(reply(agent=["x"])) is None
    assert agent_version_mismatch(reply(agent="0.1\n0", build=build)) is None


def test_old_builds_leave_the_cache(tmp_path: Path):
    import os

    cache = tmp_path / "cache"
    for i, name in enumerate(["0.0.1-aaaaaaaaaaaa", "0.0.1-aaaaaaaaaaaa-cp312-x86_64",
                              "0.0.2-bbbbbbbbbbbb", "0.0.3-cccccccccccc", "0.0.4-dddddddddddd"]):
        (cache / name).mkdir(parents=True)
        os.utime(cache / name, (1000 + i, 1000 + i))
    (cache / ".build-leftover").mkdir()
    b = wheels.bundle(cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [".build-leftover", "0.0.3-cccccccccccc", "0.0.4-dddddddddddd", b.directory.name])
