"""A joining CSS member on its own "host" (127.0.0.x, its own HOME), for replace tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from css_cell import FAST, Cell

from nodes.css.probe import _call, leader_request, status


class Joiner:
    def __init__(self, cell: Cell, root: Path, host: str, no: int = 0,
                 extra: list[str] | None = None) -> None:
        self.cell, self.host, self.no = cell, host, no
        self.home = root / f"host-{host}"
        (self.home / "etc" / "cell").mkdir(parents=True, exist_ok=True)
        conf = Path(cell.config_path).read_text().splitlines()
        conf[no] = f"{no} {host} {cell.base} {host} {cell.base + 100}"
        (self.home / "etc" / "cell" / f"{cell.name}.conf").write_text("\n".join(conf) + "\n")
        cell.copy_key(str(self.home / "etc" / "cell"))
        self.addr = (host, cell.base + 100)
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.member_id: str | None = None

    def start(self, join: bool = True) -> subprocess.Popen:
        args = [sys.executable, "-m", "nodes.css.server", self.cell.name, str(self.no),
                "--log", "file", "--test-hooks", *FAST, *self.extra]
        if join:
            args += ["--join", "--cell-id", self.cell.cell_id]
        self.proc = subprocess.Popen(args, env={**os.environ, "HOME": str(self.home)},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        return self.proc

    def ready(self) -> None:
        line = self.proc.stdout.readline().decode()
        assert line.startswith("READY"), f"{self.host}: {line!r} {self.proc.stderr.read()!r}"

    async def admitted(self, timeout: float = 30.0) -> str:
        """Wait until the cell's configuration holds this process as a learner."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                st = await status(self.addr, timeout=2.0)
                self.member_id = st["member_id"]
                if st["role"] == "learner":
                    cfg = await leader_request(self.cell.addrs(), {"t": "config"}, 5.0)
                    if any(m["member_id"] == self.member_id and m["role"] == "learner"
                           for m in cfg["members"].values()):
                        return self.member_id
            except (OSError, TimeoutError, ConnectionError):
                pass
            assert time.monotonic() < deadline, f"{self.host}: not admitted as a learner"
            await asyncio.sleep(0.1)

    async def exited(self, timeout: float = 30.0) -> int:
        """Poll (never block the loop: a workload may run beside) until the process ends."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"{self.host}: still running"
            await asyncio.sleep(0.05)
        return self.proc.returncode

    async def control(self, msg: dict) -> dict:
        path = str(self.home / "run" / f"paxos-css-{self.cell.name}-{self.no}.sock")
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            return await _call(reader, writer, {"v": 1, "id": 1, **msg})
        finally:
            writer.close()

    def log(self) -> str:
        p = self.home / "log" / f"paxos-css-{self.cell.name}-{self.no}.log"
        return p.read_text() if p.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.kill()
        if self.proc is not None:
            for s in (self.proc.stdout, self.proc.stderr):
                if s:
                    s.close()


async def leader_lag(cell: Cell, member_id: str) -> int | None:
    """The leader's view of how far a member is behind (None: not known to the leader)."""
    no = await cell.wait_leader(timeout=15)
    st = await status(cell.tcp(no), timeout=2.0)
    for m in st["members"]:
        if m["member_id"] == member_id:
            return m["lag"]
    return None
