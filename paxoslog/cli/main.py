"""`paxos`: one-shot commands and, with no verb, the interactive shell.

Imports stay lazy: a one-shot report must not pay for cmd2, paramiko or dulwich.
"""

from __future__ import annotations

import shlex
import sys

GLOBAL_WITH_VALUE = {"-o", "--output", "--debug"}
GLOBAL_FLAGS = {"--json", "--trust-new-hosts", "--version", "-h", "--help"}


def split_global(argv: list[str]) -> tuple[list[str], list[str]]:
    """(global options, the rest starting at the verb)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in GLOBAL_WITH_VALUE:
            i += 2
        elif word in GLOBAL_FLAGS or word.startswith(("--output=", "--debug=")) or (
            word.startswith("-o") and len(word) > 2
        ) or (word.startswith("-v") and set(word[1:]) == {"v"}) or word == "--verbose":
            i += 1
        else:
            break
    return argv[:i], argv[i:]


def command_text(words: list[str]) -> str:
    """The commit message: the words after `paxos`, without global options (§5.1)."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("-o", "--output"):
            skip = True
            continue
        if word == "--json" or word.startswith("--output="):
            continue
        out.append(word)
    return shlex.join(out)


def configure_logging(verbose: int, debug_file: str | None) -> None:
    if not verbose and not debug_file:
        return  # warnings are written directly; importing logging costs start-up time
    import logging

    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug_file else level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    if verbose < 2:  # paramiko's chatter and its tracebacks: only at -vv and in --debug files
        handler.addFilter(lambda record: not record.name.startswith("paramiko"))
    root.addHandler(handler)
    if debug_file:
        try:
            fh = logging.FileHandler(debug_file)
        except OSError as exc:
            from paxoslog.errors import BadInput

            raise BadInput(f"argument --debug: can't open {debug_file!r}: "
                           f"{exc.strerror or exc}") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s:%(filename)s:%(lineno)d: %(message)s"))
        root.addHandler(fh)


def main(argv: list[str] | None = None) -> int:
    """Run one command (or the shell); the exit code of §2.4. A traceback is printed only with
    `-vv`: every other failure is one line on stderr."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("WARNING: interrupted!\n")
        return 130
    except OSError as exc:  # raised outside a command (shell history, --debug, the home check)
        from paxoslog.errors import describe_os_error

        if _debugging(argv):
            raise
        sys.stderr.write(describe_os_error(exc) + "\n")
        return 1
    except Exception as exc:  # a bug: still one line, the traceback at -vv
        if _debugging(argv):
            raise
        text = (str(exc).splitlines() or [""])[0]
        sys.stderr.write(f"internal error: {type(exc).__name__}: {text} (-vv shows the "
                         "traceback)\n")
        return 1


def _debugging(argv: list[str]) -> bool:
    globals_, _ = split_global(argv)
    count = sum(w.count("v") for w in globals_ if w.startswith("-v") and set(w[1:]) == {"v"})
    return count + 2 * globals_.count("--verbose") >= 2 or "-vv" in argv


def check_home() -> str | None:
    """Why $PAXOS_HOME (default $HOME) cannot be used, or None. Checked before a command: an
    unset $HOME would otherwise make the home `~` in the current folder."""
    import os

    if os.environ.get("PAXOS_HOME"):
        return None
    home = os.environ.get("HOME")
    if not home:
        return "no home folder: $HOME is not set (set PAXOS_HOME or HOME)"
    if not os.path.isdir(home):
        return f"cannot use home {home}: No such directory (set PAXOS_HOME or HOME)"
    return None


def _main(argv: list[str]) -> int:
    from paxoslog.cli.userinput import check_words
    from paxoslog.errors import BadInput

    try:
        # Before anything echoes a word back: a surrogate would fail the write to stderr.
        check_words(argv)
    except BadInput as exc:
        sys.stderr.write(f"paxos: error: {exc.message}\n")
        return exc.exit_code
    globals_, rest = split_global(argv)
    problem = check_home() if rest or not set(globals_) & {"-h", "--help", "--version"} else None
    if problem:
        sys.stderr.write(problem + "\n")
        return 1
    from paxoslog.cli.grammar import build

    # The verb is the first word that is not an option: `--foo show host` must still build
    # `show`'s parsers, so that the error is about --foo.
    verb = next((w for w in rest if not w.startswith("-")), None)
    if verb in ("help", "completion", "man"):
        from paxoslog.cli.helpcmd import run_meta

        return run_meta(verb, rest[rest.index(verb) + 1:])
    parser = build(only=verb)
    try:
        if rest:
            from paxoslog.app.session import Session
            from paxoslog.store.home import Home

            gns, code = _parse_globals(parser, globals_)
            if gns is None:  # the error is printed once, here, not again by run_words
                return code
            configure_logging(gns.verbose, gns.debug)
            session = Session(Home.from_env(), trust_new_hosts=bool(gns and gns.trust_new_hosts))
            from paxoslog.cli.dispatch import run_words

            code = run_words(parser, session, argv, command_text(rest), interactive=False)
        else:
            gns, code = _parse_globals(parser, globals_)
            if gns is None:
                return code
            if gns.version:
                from importlib.metadata import version

                print(f"paxos {version('paxoslog')}")
                return 0
            configure_logging(gns.verbose, gns.debug)
            from paxoslog.cli.shell import run_shell

            code = run_shell(gns)
    except BadInput as exc:  # --debug FILE that cannot be opened
        sys.stderr.write(f"paxos: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("WARNING: interrupted!\n")
        return 130
    except BrokenPipeError:
        return 1
    return code


def _parse_globals(parser, words: list[str]):
    from paxoslog.cli.grammar import ParseError, ParseExit

    try:
        ns, _ = parser.parse_known_args(words)
        return ns, 0
    except ParseError as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: {exc.text}\n")
        return None, 2
    except ParseExit as exc:
        if exc.text:
            sys.stderr.write(exc.text)
        return None, exc.status


if __name__ == "__main__":
    sys.exit(main())
