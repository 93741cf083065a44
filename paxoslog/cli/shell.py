"""The interactive `paxos` shell (cmd2): same grammar as one-shot mode, one command per line."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import cmd2

from paxoslog.app.session import Session
from paxoslog.cli.completion import candidates
from paxoslog.cli.dispatch import run_words
from paxoslog.cli.grammar import SIMPLE_VERBS, VERB_OBJECTS, build
from paxoslog.cli.userinput import check_line, split_line
from paxoslog.errors import BadInput, PaxosError, Refused
from paxoslog.store.home import Home

PROMPT = "(paxos) "
# Built-ins that run arbitrary code have no place in an operations shell (§2.1).
_DISABLED = ("shell", "py", "ipy", "run_pyscript", "edit")


class PaxosShell(cmd2.Cmd):
    def __init__(self, session: Session, output: str = "yaml") -> None:
        super().__init__(
            persistent_history_file=session.home.history,
            allow_cli_args=False,
            allow_redirection=False,
            include_py=False,
            include_ipy=False,
            auto_suggest=False,
        )
        self.prompt = PROMPT
        self.session = session
        self.parser = build()
        self.parser.set_defaults(output=output)
        self.exit_code = 0
        self.failed = False  # any command refused or failed: the exit code of piped input
        for name in _DISABLED:
            if name in self.get_all_commands():
                setattr(self, f"do_{name}", None)
        # `history -e` runs the editor setting as a program: as arbitrary as `shell` (§2.1).
        if "editor" in self.settables:
            self.remove_settable("editor")
        self.editor = None

    # input -----------------------------------------------------------------------------------
    def onecmd_plus_hooks(self, line: str, **kwargs: Any) -> bool:  # type: ignore[override]
        """Every line (typed, piped, from `history -r` or a script) is checked whole before
        cmd2 parses it: cmd2's parser is quadratic in the line length, and its quoting errors
        would arrive as exceptions."""
        try:
            check_line(line)
            split_line(line)
        except BadInput as exc:
            self._input_error(exc)
            return False
        return super().onecmd_plus_hooks(line, **kwargs)

    def _input_error(self, exc: BadInput) -> None:
        self.failed = True
        self.session.err.write(f"{self.parser.prog}: error: {exc.message}\n")
        self.session.err.flush()

    def perror(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # cmd2's built-ins (alias, macro, history) report their failures here
        self.failed = True
        super().perror(*args, **kwargs)

    def run_editor(self, file_path: str | None = None) -> None:
        raise Refused("history -e is disabled in the paxos shell (it runs an editor)")

    def pexcept(self, exception: BaseException, **kwargs: Any) -> None:
        # Our own refusals raised through a cmd2 built-in: one line, like any failing command.
        if isinstance(exception, PaxosError):
            self.session.err.write(f"ERROR: {exception.message}\n")
            self.session.err.flush()
            return
        super().pexcept(exception, **kwargs)

    # dispatch --------------------------------------------------------------------------------
    def _run(self, statement: Any) -> None:
        try:
            words = _statement_words(statement)
        except BadInput as exc:
            self._input_error(exc)
            return
        self.session.out = self.stdout
        message = statement.raw.strip() if words == _raw_words(statement) else shlex.join(words)
        try:
            code = run_words(self.parser, self.session, words, message, interactive=True)
        except KeyboardInterrupt:
            self.session.warn("interrupted!")
            code = 130
        if code:
            self.failed = True

    def default(self, statement: Any) -> bool | None:  # type: ignore[override]
        if statement.command.lower() == "quit":
            return True
        self._run(statement)
        return None

    def do_quit(self, _: Any) -> bool:
        """Exit the shell."""
        return True

    # help ------------------------------------------------------------------------------------
    def do_help(self, statement: Any) -> None:  # type: ignore[override]
        """help [VERB [OBJECT]]: usage of that node of the grammar."""
        from paxoslog.cli.helpcmd import help_node

        words = statement.arg_list if hasattr(statement, "arg_list") else str(statement).split()
        node = help_node(self.parser, words)
        if node is None:
            self.perror(f"No help on {' '.join(words)}")
            return
        self.poutput(node.format_help().rstrip("\n"))
        if node is self.parser:
            self.poutput("\nshell commands: help, history, alias, macro, quit (Ctrl-D)")

    def complete_help(self, text: str, line: str, begidx: int, endidx: int):
        words = _complete_words(line[:begidx])[1:]
        return self.basic_complete(text, line, begidx, endidx,
                                   candidates(self.parser, words, self._topology()))

    # completion ------------------------------------------------------------------------------
    def _topology(self):
        try:
            return self.session.head()[2]
        except Exception:  # completion must never break the prompt
            from paxoslog.core.model import EMPTY

            return EMPTY

    def _complete(self, text: str, line: str, begidx: int, endidx: int):
        words = _complete_words(line[:begidx])
        return self.basic_complete(text, line, begidx, endidx,
                                   candidates(self.parser, words, self._topology()))


def _raw_words(statement: Any) -> list[str]:
    return split_line(statement.raw) if statement.raw else []


def _statement_words(statement: Any) -> list[str]:
    """The words to run: the line as typed (cmd2's parse would cut it at `;` or `#`), unless an
    alias or macro replaced its first word; then the expansion, quotes kept as in arg_list."""
    raw = _raw_words(statement)
    if raw and raw[0] == statement.command:
        return raw
    return split_line(" ".join([statement.command, *statement.arg_list]))


def _complete_words(text: str) -> list[str]:
    """The complete words before the cursor; a half-typed quote must not break completion."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _install_verbs() -> None:
    def make(verb: str):
        def do(self: PaxosShell, statement: Any) -> None:
            self._run(statement)

        do.__doc__ = f"{verb}: see `help {verb}`"
        return do

    for verb in (*VERB_OBJECTS, *SIMPLE_VERBS):
        setattr(PaxosShell, f"do_{verb}", make(verb))
        setattr(PaxosShell, f"complete_{verb}", PaxosShell._complete)


_install_verbs()


def run_shell(gns: Any) -> int:
    # Piped input that is not UTF-8 becomes surrogates, which check_line refuses by line,
    # instead of a UnicodeDecodeError that would end the shell.
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="surrogateescape")
    session = Session(Home.from_env(), interactive=True, trust_new_hosts=gns.trust_new_hosts)
    session.local.cache_on_exit = True
    shell = PaxosShell(session, output=gns.output)
    try:
        shell.cmdloop()
    finally:
        session.local.save_cache()
    sys.stdout.flush()
    # Like sqlite3: a script fed on stdin learns that a command failed; at a terminal the
    # operator saw it, and Ctrl-D is an ordinary way out.
    return 1 if shell.failed and not sys.stdin.isatty() else 0
