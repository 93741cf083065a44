"""Shared by the SSH benchmarks: simulated hosts for one run, parallel-scp, wall-clock timing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TESTHOSTS = Path(__file__).resolve().parents[2] / "scripts" / "testhosts"


@contextmanager
def simulated_hosts(n: int, prefix: str) -> Iterator[tuple[Path, dict]]:
    """(a scratch folder, `testhosts list --json` of n fresh hosts); always torn down."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    state = tmp / "hosts"
    up = subprocess.run([sys.executable, str(TESTHOSTS), "--state", str(state), "up", str(n),
                         "--base", "auto", "--json"], capture_output=True, text=True)
    try:
        if up.returncode != 0:
            raise SystemExit(up.stderr)
        yield tmp, json.loads(up.stdout)
    finally:
        subprocess.run([sys.executable, str(TESTHOSTS), "--state", str(state), "down"])
        shutil.rmtree(tmp, ignore_errors=True)


def pscp_command(hostfile: Path, targets: list[str], info: dict, *sources: Path) -> list[str]:
    """parallel-scp of `sources` into /home/paxos of every target, as strict as our SSH."""
    hostfile.write_text("".join(f"paxos@{a}\n" for a in targets))
    return ["parallel-scp", "-h", str(hostfile), "-p", "32", "-t", "60", "-r",
            "-O", f"IdentityFile={info['client_key']}",
            "-O", f"UserKnownHostsFile={info['known_hosts']}",
            "-O", "StrictHostKeyChecking=yes", "-O", "BatchMode=yes", "-O", "IdentitiesOnly=yes",
            *map(str, sources), "/home/paxos/"]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {proc.stdout}{proc.stderr}")
    return took
