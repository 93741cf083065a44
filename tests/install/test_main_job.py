"""Issue 9 item 5: `./scripts/paxos` as root gives a shell on a local cluster whose hosts already
have this checkout's node programs, so the quick start needs no `install` step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from paxoslog.app import wheels

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "scripts" / "paxos")
TESTHOSTS = str(ROOT / "scripts" / "testhosts")


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    state = tmp_path / "cluster"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAXOS_")}
    env.update(LANG="C", LC_ALL="C", HOME=str(tmp_path), PAXOS_LOCAL_CLUSTER=str(state),
               PAXOS_LOCAL_BASE="auto", PAXOS_AUTHOR="Operator <op@example.invalid>")
    try:
        yield state, env
    finally:
        subprocess.run([sys.executable, TESTHOSTS, "--state", str(state), "down"],
                       capture_output=True, timeout=120, check=False)


def main_job(env: dict[str, str], *args: str, input: str | None = None):
    proc = subprocess.run([MAIN, *args], input=input, capture_output=True, text=True, env=env,
                          timeout=900)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_main_job_installs_the_node_programs_once(local_cluster):
    state, env = local_cluster
    proc = main_job(env, "list", "host")
    assert proc.returncode == 0, proc.stderr
    assert "installing the node programs of this checkout on the local cluster" in proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    hosts = json.loads(subprocess.run([sys.executable, TESTHOSTS, "--state", str(state), "list",
                                       "--json"], capture_output=True, text=True,
                                      check=True, timeout=60).stdout)["hosts"]
    addrs = [h["addr"] for h in hosts]
    assert len(addrs) == 5
    # the operator's own registry: register, deploy, and the agent is already there
    cell = " ".join(f"{a}:24111 {a}:24111" for a in addrs[:3])
    script = "".join(f"register host --user paxos {a}\n" for a in addrs[:3])
    script += f"register css --name css0 {cell}\ndeploy\n"
    proc = main_job(env, input=script)
    assert proc.returncode == 0, proc.stderr
    assert "installing" not in proc.stderr  # the sources did not change: no second install
    proc = main_job(env, "install")
    assert proc.returncode == 0, proc.stderr
    assert [(d["hostname"], d["status"], d["build"]) for d in yaml.safe_load_all(proc.stdout)] \
        == [(a, "unchanged", wheels.local_build()) for a in addrs[:3]]
    short = main_job(env, "status", "deploy", "-s").stdout
    assert short == "".join(f"{a}: current\n" for a in addrs[:3])
