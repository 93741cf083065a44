#!/usr/bin/env python3
"""Admin tool benchmarks (issues 2 and 8): start-up, log-size independence, append rate, replay.

Every figure is compared with a peer measured in the same run, so the ratios survive a slower
or busier machine:
  start-up   `paxos list host`           vs `python3 -c pass`            target <= 7x
  log size   `paxos show host`, 100k ev. vs the same with 10 events      target <= 1.1x
  appends    events/s through the shell (stdin), fsync on and off        target >= 250/s
  replay     `paxos replay` of 100,000 events                            target <= 3 s

Usage: scripts/bench/bench_admin.py [--events 100000] [--cache DIR] [--runs 15] [--repeat 3]
The 100,000-event log is generated once into --cache (default /tmp/paxos-bench) and reused.
Appends and replay are run --repeat times and the median is shown (the runs are listed below
the table): on a shared machine single runs of them vary by 2x. PYTHONDONTWRITEBYTECODE is
removed from the environment of every measured command, so they use the byte-code cache as an
installed tool does; the load average before and after is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PAXOS = str(BIN / "paxos")


def wall(cmd: list[str], env: dict, runs: int, stdin: str | None = None) -> float:
    """Median wall time of `runs` runs (after one warm-up)."""
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, input=stdin, text=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def env_for(home: Path, **extra: str) -> dict:
    env = dict(os.environ, PAXOS_HOME=str(home), PAXOS_AUTHOR="bench <bench@localhost>")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # without it every start compiles every module
    env.update(extra)
    return env


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_log(path: Path, events: int) -> Path:
    if not (path / "var" / "paxoslog.git").exists():
        shutil.rmtree(path, ignore_errors=True)
        print(f"generating a {events}-event log in {path} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, str(Path(__file__).with_name("genlog.py")), str(path),
                        str(events)], check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--cache", default="/tmp/paxos-bench")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--appends", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"load average before: {load()} ({os.cpu_count()} cores)")
    cache = Path(args.cache)
    big = ensure_log(cache / f"log-{args.events}", args.events)
    small = ensure_log(cache / "log-10", 10)
    rows = []

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        subprocess.run([PAXOS, "register", "host", "h1"], env=env_for(home), check=True)
        py = wall([sys.executable, "-c", "pass"], env_for(home), args.runs)
        lh = wall([PAXOS, "list", "host"], env_for(home), args.runs)
        rows.append(("start-up: paxos list host", f"{lh * 1000:.1f} ms",
                     f"python3 -c pass {py * 1000:.1f} ms", f"{lh / py:.2f}x", "<= 7x"))

    t_small = wall([PAXOS, "show", "host"], env_for(small), args.runs)
    t_big = wall([PAXOS, "show", "host"], env_for(big), args.runs)
    rows.append((f"show host, {args.events} events", f"{t_big * 1000:.1f} ms",
                 f"10 events {t_small * 1000:.1f} ms", f"{t_big / t_small:.2f}x", "<= 1.1x"))

    notes = []
    # Every home is removed at the end, not after its run: on an ext4 without a journal (as on
    # the benchmark VM) creating a file right after thousands were deleted scans the recently
    # deleted inodes, so a run after a removal would measure the removal.
    keep = tempfile.TemporaryDirectory()
    for fsync in ("1", "0"):
        rates = []
        for _ in range(args.repeat):
            home = Path(tempfile.mkdtemp(dir=keep.name))
            lines = "".join(f"register host a{i}\n" for i in range(args.appends)) + "quit\n"
            empty = wall([PAXOS], env_for(home, PAXOS_FSYNC=fsync), 1, stdin="quit\n")
            shutil.rmtree(home / "var", ignore_errors=True)
            start = time.perf_counter()
            subprocess.run([PAXOS], env=env_for(home, PAXOS_FSYNC=fsync), input=lines,
                           text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True)
            t = time.perf_counter() - start - empty
            rates.append(args.appends / t)
        name = f"shell appends, fsync {'on' if fsync == '1' else 'off'}"
        notes.append(f"{name}: " + ", ".join(f"{r:.0f}" for r in rates) + " events/s")
        rows.append((name, f"{statistics.median(rates):.0f} events/s",
                     f"{args.appends} commands", "", ">= 250/s"))

    times = []
    for _ in range(args.repeat):
        copy = Path(tempfile.mkdtemp(dir=keep.name)) / "home"
        shutil.copytree(big, copy)
        times.append(wall([PAXOS, "replay"], env_for(copy), 1))
    keep.cleanup()
    notes.append("replay: " + ", ".join(f"{t:.2f}" for t in times) + " s")
    rows.append((f"replay, {args.events} events", f"{statistics.median(times):.2f} s", "", "",
                 "<= 3 s"))

    widths = [max(len(str(r[i])) for r in rows + [HEAD]) for i in range(len(HEAD))]
    for row in [HEAD, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(f"runs: {'; '.join(notes)}")
    print(f"load average after: {load()}")


HEAD = ("measure", "paxoslog", "peer", "ratio", "target")

if __name__ == "__main__":
    main()
