"""One `paxos` command in a private tmux server (its own socket), read with capture-pane:
the real terminal the shell and pager tests drive."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PAXOS, Paxos


class TmuxPane:
    def __init__(self, px: Paxos, tmp: Path, args: tuple[str, ...] | list[str], *,
                 env: dict[str, str] | None = None, unset: tuple[str, ...] = (),
                 width: int = 160, height: int = 400, capture: tuple[str, ...] = ("-J",),
                 linger: int = 120) -> None:
        """`unset`: variables removed from the command's environment; `capture`: the
        capture-pane flags (-J joins wrapped lines, -e keeps escape codes); the pane lingers
        `linger` seconds after the command so its last screen can still be read."""
        self.px = px
        self.capture = capture
        self.socket = f"paxos-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.exit_file = tmp / f"exit-{uuid.uuid4().hex[:8]}"
        full = {k: v for k, v in px.env.items()
                if k.startswith(("PAXOS_", "LANG", "LC_")) or k in ("HOME", "PATH")}
        full.update(env or {})
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in full.items())
        drop = "".join(f"-u {u} " for u in unset)
        cmd = (f"env {drop}{assigns} TERM=screen {shlex.quote(PAXOS)} {shlex.join(args)}; "
               f"echo $? > {shlex.quote(str(self.exit_file))}; sleep {linger}")
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(width), "-y",
                  str(height), "sh", "-c", cmd)
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", *self.capture, "-t", "t")

    def wait(self, predicate: Callable[[str], bool], timeout: float = 10.0,
             what: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what!r}; screen:\n{text}")
            time.sleep(0.05)

    def exit_code(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while not self.exit_file.exists() or not self.exit_file.read_text().endswith("\n"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no exit; screen:\n{self.screen()}")
            time.sleep(0.05)
        return int(self.exit_file.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)
