#!/usr/bin/env python3
"""Copy the same small files to 1 and to N simulated hosts: our parallel SFTP (paxoslog.remote.sshpool,
atomic writes) against `parallel-scp` (Debian package pssh), in the same run.

    sudo .venv/bin/python scripts/bench/bench_ssh_copy.py [--hosts 20] [--rounds 5]

Starts its own hosts with scripts/testhosts (auto-picked loopback addresses) and stops them.
Each round opens fresh connections, as one `paxos deploy` command would. Prints a table of
median wall times and the ratios the issue's speed targets are about.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchhosts import pscp_command, simulated_hosts, timed  # noqa: E402

from paxoslog.remote.ssh import HostSpec, SSHOptions  # noqa: E402
from paxoslog.remote.sshpool import SSHSession  # noqa: E402


def make_files(folder: Path) -> dict[str, bytes]:
    files = {"etc/paxos_memcache.conf": b"hosts:\n" + b"  - hostname: 127.0.0.10\n" * 60}
    for cell in range(3):
        files[f"etc/cell/css{cell}.conf"] = b"".join(
            f"{n} 127.0.0.{10 + n} 24111 127.0.0.{10 + n} 24111\n".encode() for n in range(3))
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return files


def ours(addrs: list[str], files: dict[str, bytes], opts: SSHOptions) -> float:
    def deploy(conn) -> None:
        conn.mkdir_p("etc/cell")
        for rel, data in files.items():
            conn.write_atomic(rel, data)

    start = time.perf_counter()
    with SSHSession(opts) as session:
        out = session.run_many([HostSpec(a, "paxos") for a in addrs], deploy, progress=False)
    took = time.perf_counter() - start
    if out.errors:
        raise SystemExit(f"ours failed: {out.error_message()}")
    return took


def pscp(addrs: list[str], local: Path, info: dict, tmp: Path) -> float:
    return timed(pscp_command(tmp / "pssh_hosts", addrs, info, local))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    if not shutil.which("parallel-scp"):
        raise SystemExit("parallel-scp missing: apt-get install pssh")
    with simulated_hosts(a.hosts, "bench-ssh-") as (tmp, info):
        addrs = [h["addr"] for h in info["hosts"]]
        key, kh = Path(info["client_key"]), Path(info["known_hosts"])
        local = tmp / "etc"
        files = make_files(tmp)
        opts = SSHOptions(known_hosts=kh, identity_files=(str(key),), use_agent=False,
                          ask_password=None)
        rows = []
        for label, targets in (("1 host", addrs[:1]), (f"{a.hosts} hosts", addrs)):
            t_ours = statistics.median(ours(targets, files, opts) for _ in range(a.rounds))
            t_pscp = statistics.median(pscp(targets, local, info, tmp) for _ in range(a.rounds))
            rows.append((label, t_ours, t_pscp))
        print(f"{'targets':<10} {'ours (s)':>9} {'pscp (s)':>9} {'ours/pscp':>10}")
        for label, t_ours, t_pscp in rows:
            print(f"{label:<10} {t_ours:9.3f} {t_pscp:9.3f} {t_ours / t_pscp:10.2f}")
        print(f"ours: {a.hosts} hosts / 1 host = {rows[1][1] / rows[0][1]:.2f} "
              f"(target <= 2.5); pscp: {rows[1][2] / rows[0][2]:.2f}")
        print(f"ours / parallel-scp at {a.hosts} hosts = {rows[1][1] / rows[1][2]:.2f} "
              "(target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
