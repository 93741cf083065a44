"""What a multi-host command tells the operator while it runs (Ansible's per-host lines and recap).

One `HostReporter` per command. `SSHSession.run_many(..., reporter=r)` calls `r.done` as each
host finishes; a command that also handles hosts itself (a local host by rule L) calls `r.done`
for those. Each host ends in one status: a success label chosen by the command (`ok`,
`changed`, `running`, ...), `failed` or `unreachable` (no connection or no authentication).

    reporter = HostReporter(out=session.out, err=session.err, lines=not session.as_json)
    reporter.start(len(hosts))
    result = ssh.run_many(specs, fn, reporter=reporter, label=lambda value: "changed")
    reporter.recap()          # "recap: 3 hosts: 2 changed, 1 unreachable"

The progress bar is drawn on `err` only when it is a terminal (with `rich`, imported then and
only then); lines go to `out`. Every method is thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, TextIO

FAILED = "failed"
UNREACHABLE = "unreachable"


class HostReporter:
    def __init__(self, out: TextIO, err: TextIO, *, lines: bool = True,
                 progress: bool | None = None) -> None:
        self.out, self.err, self.lines = out, err, lines
        self._progress = progress
        self._lock = threading.Lock()
        self.statuses: dict[str, str] = {}  # host -> status, in finishing order
        self.reasons: dict[str, str] = {}
        self.total = 0
        self._bar: Any = None
        self._task: Any = None
        # after Ctrl-C, workers still finishing in the background (the shell goes on) are quiet
        self._silenced = False

    # -- life cycle

    def start(self, total: int) -> None:
        """Announce how many hosts will report (draws the bar on a terminal)."""
        self.total = total
        show = self._progress
        if show is None:
            show = total > 1 and _isatty(self.err)
        if show and _isatty(self.err):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            # lines are printed through the bar's console so they scroll above it
            self._bar = Progress(TextColumn("hosts"), BarColumn(), MofNCompleteColumn(),
                                 console=Console(file=self.err), transient=True,
                                 redirect_stdout=False, redirect_stderr=False)
            self._task = self._bar.add_task("hosts", total=total)
            self._bar.start()

    def done(self, host: str, status: str, reason: str | None = None) -> None:
        """`host` finished with `status`; `reason` for `failed` / `unreachable`."""
        with self._lock:
            if self._silenced:
                return
            self.statuses[host] = status
            if reason is not None:
                self.reasons[host] = reason
            if self.lines:
                line = f"{host}: {status}" + (f": {reason}" if reason else "")
                if self._bar is not None and _isatty(self.out):
                    self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
                else:
                    self.out.write(line + "\n")
                    self.out.flush()
            if self._bar is not None:
                self._bar.advance(self._task)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    # -- summaries

    def failures(self) -> dict[str, str]:
        return {h: self.reasons.get(h, s) for h, s in self.statuses.items()
                if s in (FAILED, UNREACHABLE)}

    def recap_line(self) -> str:
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        n = len(self.statuses)
        parts = ", ".join(f"{c} {s}" for s, c in counts.items())
        return f"recap: {n} host{'s' if n != 1 else ''}: {parts}" if parts else "recap: 0 hosts"

    def recap(self) -> None:
        """The recap line (on `out`, after the per-host lines)."""
        self.close()
        if self.lines:
            self.out.write(self.recap_line() + "\n")
            self.out.flush()

    def interrupted(self, pending: Sequence[str]) -> None:
        """Ctrl-C: say which hosts finished and which did not (on `err`); nothing more is
        reported after it."""
        self.close()
        with self._lock:
            self._silenced = True
        finished = ", ".join(f"{h} ({s})" for h, s in self.statuses.items()) or "none"
        self.err.write(f"interrupted: finished: {finished}; not finished: "
                       f"{', '.join(pending) or 'none'}\n")
        self.err.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
