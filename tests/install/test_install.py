"""`paxos install` on real sshd hosts: a fresh install, the second one `unchanged`, the agent then
reachable as `paxos-node` over SSH as the service user, hosts that cannot take it failing alone
with one line, an unreachable host, hostile homes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from paxoslog.app import wheels
from paxoslog.app.agentversion import agent_version_mismatch
from paxoslog.app.install import MARK, PREFIX, PROGRAMS
from paxoslog.remote.agentcall import call_remote
from paxoslog.remote.ssh import HostSpec
from paxoslog.remote.sshpool import SSHSession
from tests.agent_hosts import PAXOS, cluster_env
from tests.deploy_helpers import options
from tests.hosts_fixture import TestCluster, TestHost

# What `paxos install` writes in a home, and what a deploy of another test left there (these
# hosts are shared with the runtime tests); moved aside around each test so the session-wide
# install (`agent_cluster`) stays as it was for the runtime tests.
INSTALLED_PATHS = ("lib", "bin", ".profile", ".bash_profile", ".bash_login", "shim", "etc", "var")


@pytest.fixture
def pristine(cluster: TestCluster, tmp_path: Path) -> Iterator[list[TestHost]]:
    """The last three hosts without any install, restored afterwards."""
    hosts = cluster.hosts[-3:]
    saved = tmp_path / "saved"
    for h in hosts:
        for name in INSTALLED_PATHS:
            if os.path.lexists(h.home / name):
                (saved / h.addr).mkdir(parents=True, exist_ok=True)
                shutil.move(h.home / name, saved / h.addr / name)
    yield hosts
    cluster.revive_killed()
    for h in hosts:
        for name in INSTALLED_PATHS:
            p = h.home / name
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.exists():
                shutil.rmtree(p)
            if os.path.lexists(saved / h.addr / name):
                shutil.move(saved / h.addr / name, p)


class Admin:
    def __init__(self, cluster: TestCluster, home: Path, hosts: list[TestHost]) -> None:
        home.mkdir()
        self.home, self.env = home, cluster_env(cluster, home)
        script = "".join(f"register host --user {cluster.user} {h.addr}\n" for h in hosts)
        assert self.run(input=script).returncode == 0

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([PAXOS, *args], input=input, capture_output=True, text=True,
                              env=self.env, timeout=600)

    def install(self, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
        proc = self.run("install", *args)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc, list(yaml.safe_load_all(proc.stdout))


def own(home: Path, *parts: str) -> None:
    """Give home/parts... (each level) to the service user, as if it had made them."""
    st = home.stat()
    for i in range(1, len(parts) + 1):
        os.chown(home.joinpath(*parts[:i]), st.st_uid, st.st_gid)


def shim(host: TestHost, script: str) -> None:
    """A `python3` first on the service user's login PATH: what the install probe sees."""
    d = host.home / "shim"
    d.mkdir()
    (d / "python3").write_text(script)
    (d / "python3").chmod(0o755)
    (host.home / ".profile").write_text('PATH="$HOME/shim:$PATH"\n')
    own(host.home, "shim", "python3")
    own(host.home, ".profile")


def agent_version(cluster: TestCluster, tmp_path: Path, host: TestHost):
    with SSHSession(options(cluster, tmp_path)) as session:
        return call_remote(session, HostSpec(host.addr, cluster.user), ["version"])


def test_install_then_unchanged_then_the_agent_runs_over_ssh(pristine, cluster, tmp_path):
    a, b = pristine[:2]
    (b.home / ".profile").write_text("# the operator's own profile\numask 022")  # no newline
    own(b.home, ".profile")
    admin = Admin(cluster, tmp_path / "admin", [a, b])
    proc, docs = admin.install()
    assert proc.returncode == 0, proc.stderr
    build, version = wheels.local_build(), wheels.local_version()
    assert docs == [{"hostname": h.addr, "status": "installed", "version": version,
                     "build": build, "python": docs[0]["python"]} for h in (a, b)]
    for h in (a, b):
        for program in PROGRAMS:
            assert stat.S_IMODE((h.home / "bin" / program).stat().st_mode) == 0o755
        assert (h.home / PREFIX / "INSTALLED").read_text() == \
            f"version {version}\nbuild {build}\n"
        assert not (h.home / PREFIX / "wheels").exists()  # staging removed
        venv = h.home / PREFIX / f"venv-{build}"
        site = next((venv / "lib").glob("python3.*/site-packages"))
        # only what the node programs import: no admin dependencies on a host
        assert not list(site.glob("paramiko*")) + list(site.glob("cmd2*")) + \
            list(site.glob("dulwich*")) + list(site.glob("pip"))
        assert (h.home / ".profile").read_text().count(MARK) == 1
    assert (b.home / ".profile").read_text().startswith(
        "# the operator's own profile\numask 022\ncase ")
    cached = admin.home / "var" / "wheels" / f"{version}-{build}"
    index_mtime = (cached / "INDEX").stat().st_mtime_ns
    venv_ino = (a.home / PREFIX / f"venv-{build}").stat().st_ino

    # again: nothing rebuilt, nothing shipped, nothing reinstalled
    proc, docs = admin.install()
    assert proc.returncode == 0, proc.stderr
    assert [d["status"] for d in docs] == ["unchanged", "unchanged"]
    assert (cached / "INDEX").stat().st_mtime_ns == index_mtime
    assert (a.home / PREFIX / f"venv-{build}").stat().st_ino == venv_ino
    assert (a.home / ".profile").read_text().count(MARK) == 1

    # the admin's agent call (`bash -lc 'paxos-node ...'` as the service user) finds it
    reply = agent_version(cluster, tmp_path, a)
    assert reply.ok, reply.reason
    assert (reply.result["agent"], reply.result["build"]) == (version, build)
    assert agent_version_mismatch(reply) is None

    # a damaged install (a wrapper gone) is repaired, not reported unchanged
    (b.home / "bin" / "paxos-css").unlink()
    proc, docs = admin.install(b.addr)
    assert proc.returncode == 0 and docs[0]["status"] == "installed", proc.stderr
    assert (b.home / "bin" / "paxos-css").exists()


def test_hosts_that_cannot_take_it_fail_alone_with_one_line(pristine, cluster, tmp_path):
    old, novenv, good = pristine
    shim(old, '#!/bin/sh\necho "Python 3.9.2"\n')
    shim(novenv, '#!/bin/sh\n[ "$1 $2" = "-m venv" ] && '
                 '{ echo "/usr/bin/python3: No module named venv" >&2; exit 1; }\n'
                 'exec /usr/bin/python3 "$@"\n')
    admin = Admin(cluster, tmp_path / "admin", [old, novenv, good])
    proc, docs = admin.install()
    assert proc.returncode == 1
    reasons = {old.addr: f"python3 on {old.addr} is 3.9.2; the node programs need Python >= 3.11",
               novenv.addr: "python3 cannot make a venv: /usr/bin/python3: No module named venv"}
    assert proc.stderr.strip().splitlines() == [
        ", ".join(f"{h}: {r}" for h, r in reasons.items())]
    assert [(d["hostname"], d["status"], d.get("reason")) for d in docs] == [
        (old.addr, "error", reasons[old.addr]), (novenv.addr, "error", reasons[novenv.addr]),
        (good.addr, "installed", None)]
    assert not (old.home / "bin").exists() and not (old.home / "lib").exists()
    # the failed build left nothing: no half venv, no staged wheels
    assert [p.name for p in (novenv.home / PREFIX).iterdir()] == [".lock"]
    assert not (novenv.home / "bin" / "paxos-node").exists()


def test_unreachable_host_fails_alone(pristine, cluster, tmp_path):
    dead, good = pristine[:2]
    # bash -l reads ~/.bash_profile and then not ~/.profile: the PATH line goes where it is read
    (good.home / ".bash_profile").write_text("export EDITOR=vi\n")
    own(good.home, ".bash_profile")
    admin = Admin(cluster, tmp_path / "admin", [dead, good])
    cluster.kill(dead.addr)
    proc, docs = admin.install()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"{dead.addr}: cannot connect: Connection refused"]
    assert [d["status"] for d in docs] == ["error", "installed"]
    assert (good.home / ".bash_profile").read_text().startswith("export EDITOR=vi\ncase ")
    assert not (good.home / ".profile").exists()
    assert agent_version(cluster, tmp_path, good).ok


def test_host_selection_is_deploys(pristine, cluster, tmp_path):
    a = pristine[0]
    admin = Admin(cluster, tmp_path / "admin", [a])
    proc = admin.run("install", "192.0.2.1")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "not found: 192.0.2.1\n")
    proc = admin.run("install", "-g", "nosuchgroup")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "WARNING: no host matches\n")
    assert not (a.home / "lib").exists()


def test_symlinks_in_the_home_are_not_followed(pristine, cluster, tmp_path):
    a, b = pristine[:2]
    outside = tmp_path / "outside"
    outside.mkdir()
    (a.home / "bin").symlink_to(outside)
    (b.home / ".profile").symlink_to(outside / "profile")
    admin = Admin(cluster, tmp_path / "admin", [a, b])
    proc, docs = admin.install()
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"{a.addr}: refusing to follow symlink ~/bin, "
                                   f"{b.addr}: refusing to follow symlink ~/.profile")
    assert list(outside.iterdir()) == []
    assert not (a.home / "lib").exists() and not (b.home / "lib").exists()


def test_the_session_fixture_installed_every_host(agent_cluster, agent_env, tmp_path):
    """What every runtime test relies on: this build's agent on each host, found on the login
    PATH, with no PAXOS_NODE_CMD stand-in."""
    assert "PAXOS_NODE_CMD" not in agent_env
    for h in agent_cluster.hosts:
        reply = agent_version(agent_cluster, tmp_path, h)
        assert reply.ok, (h.addr, reply.reason)
        assert agent_version_mismatch(reply) is None


def test_status_deploy_reports_an_agent_of_another_build(pristine, cluster, tmp_path):
    a, b = pristine[:2]
    admin = Admin(cluster, tmp_path / "admin", [a, b])
    assert admin.install()[0].returncode == 0
    proc = admin.run("status", "deploy")
    assert [(d["hostname"], d["status"]) for d in yaml.safe_load_all(proc.stdout)] == \
        [(a.addr, "none"), (b.addr, "none")]  # this build everywhere: nothing more to say
    site = next((b.home / PREFIX / f"venv-{wheels.local_build()}" / "lib").glob(
        "python3.*/site-packages"))
    (site / "paxoslog" / "BUILD").write_text("0123456789ab\n")
    docs = list(yaml.safe_load_all(admin.run("status", "deploy").stdout))
    assert docs == [{"hostname": a.addr, "status": "none"},
                    {"hostname": b.addr, "status": "none", "agent": "differs",
                     "agent_version": wheels.local_version(), "agent_build": "0123456789ab"}]
    # installing again notices (the agent says so, whatever INSTALLED says) and repairs it
    proc, docs = admin.install()
    assert [d["status"] for d in docs] == ["unchanged", "installed"], proc.stderr
    assert "agent" not in list(yaml.safe_load_all(admin.run("status", "deploy").stdout))[1]


def test_a_venv_a_daemon_still_runs_from_is_not_pruned(pristine, cluster, tmp_path):
    """Two installs after a daemon started, its build's venv was deleted under it."""
    a = pristine[0]
    admin = Admin(cluster, tmp_path / "admin", [a])
    assert admin.install()[0].returncode == 0
    old_running, old_idle = "venv-aaaaaaaaaaaa", "venv-bbbbbbbbbbbb"
    for d in (old_running, old_idle):
        (a.home / PREFIX / d / "bin").mkdir(parents=True)
        own(a.home, PREFIX, d, "bin")
    # a process whose command line names the old venv's python, as a daemon's does
    daemon = subprocess.Popen(["bash", "-c", f'exec -a "/home/paxos/{PREFIX}/{old_running}/'
                               f'bin/python" sleep 300'], start_new_session=True)
    try:
        (a.home / "bin" / "paxos-css").unlink()  # a damaged install: the next one really runs
        proc, docs = admin.install()
        assert docs[0]["status"] == "installed", proc.stderr
        assert (a.home / PREFIX / old_running).is_dir()
        assert not (a.home / PREFIX / old_idle).exists()
    finally:
        daemon.kill()
        daemon.wait()
    (a.home / "bin" / "paxos-css").unlink()
    assert admin.install()[1][0]["status"] == "installed"
    assert not (a.home / PREFIX / old_running).exists()  # stopped: pruned by the next install
