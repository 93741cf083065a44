"""Running paxos commands in-process (same code path as the console script, minus the exec),
for property tests that need thousands of commands."""

from __future__ import annotations

import io
import shlex
from pathlib import Path

from paxoslog.app.session import Session
from paxoslog.cli.dispatch import run_words
from paxoslog.cli.grammar import build
from paxoslog.cli.main import command_text
from paxoslog.store.home import Home, head_state

_PARSER = build()


class InProc:
    def __init__(self, root: Path) -> None:
        self.session = Session(Home(str(root)), out=io.StringIO(), err=io.StringIO())

    def run(self, line: str) -> tuple[int, str, str]:
        return self.run_list(shlex.split(line))

    def run_list(self, words: list[str]) -> tuple[int, str, str]:
        """One command given as argument words, as the console script would receive them."""
        self.session.out, self.session.err = io.StringIO(), io.StringIO()
        code = run_words(_PARSER, self.session, words, command_text(words), interactive=False)
        return code, self.session.out.getvalue(), self.session.err.getvalue()

    def head(self):
        return head_state(self.session.home)
