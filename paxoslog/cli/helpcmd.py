"""One-shot commands about the grammar itself: `help [VERB [OBJECT]]`, `completion bash|zsh`
and `man`. They touch no PAXOS_HOME, and shtab / argparse-manpage are imported only here, so
ordinary commands do not pay for them at start-up."""

from __future__ import annotations

import argparse
import sys

from paxoslog.cli.grammar import Parser, build

SHELLS = ("bash", "zsh")


def children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def help_node(parser: argparse.ArgumentParser,
              words: list[str]) -> argparse.ArgumentParser | None:
    """The parser of `VERB [OBJECT]`, or None when the words name no command."""
    node = parser
    for word in words:
        child = children(node).get(word)
        if child is None:
            return None
        node = child
    return node


def help_text(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    node = help_node(parser, words)
    if node is None:
        return None
    return node.format_help()


def completion_script(shell: str) -> str:
    import shtab

    parser = _documented_parser()
    return shtab.complete(parser, shell=shell)


def man_page() -> str:
    """paxos(1) in roff. No date in it: docs/man/paxos.1, installed with the package, must be
    byte-identical to this output (a test checks it), whatever the day it was generated."""
    from importlib.metadata import version

    from argparse_manpage.manpage import Manpage

    from paxoslog.cli.grammar import EXAMPLES, REV_HELP

    data = {"date": "version " + version("paxoslog"), "project_name": "paxoslog",
            "manual_title": "paxoslog manual",
            "description": "administer PAXOS memcache/CSS clusters"}
    page = str(Manpage(_documented_parser(), _data=data)).rstrip("\n") + "\n"
    lines = [".SH EXAMPLES"]
    for command, example in EXAMPLES.items():
        lines += [".TP", f"\\fB{_roff(command)}\\fR", _roff(example)]
    lines += [".SH REVISIONS", _roff(REV_HELP.replace("\n", " ")),
              ".SH EXIT STATUS",
              "0 done, 1 refused or failed, 2 usage error, 130 interrupted."]
    return page + "\n".join(lines) + "\n"


def _roff(text: str) -> str:
    return text.replace("\\", "\\e").replace("-", "\\-")


def _documented_parser() -> Parser:
    """The whole grammar plus the one-shot meta commands, for completion and the man page."""
    parser = build()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = verbs.add_parser("help", help="usage of a command: help [VERB [OBJECT]]",
                         description="usage of a command")
    p.add_argument("words", nargs="*", metavar="WORD", help="verb and object")
    p = verbs.add_parser("completion", help="print a static completion script",
                         description="print a static completion script for bash or zsh",
                         epilog="example:\n  paxos completion bash > "
                                "/etc/bash_completion.d/paxos")
    p.add_argument("shell", choices=SHELLS)
    verbs.add_parser("man", help="print the manual page (roff)",
                     description="print the manual page, generated from this grammar")
    return parser


def run_meta(verb: str, words: list[str]) -> int:
    out = sys.stdout
    if verb == "help":
        text = help_text(_documented_parser(), words)
        if text is None:
            sys.stderr.write(f"paxos help: error: no help on {' '.join(words)!r}\n")
            return 2
        out.write(text)
        return 0
    if verb == "completion":
        if len(words) != 1 or words[0] not in SHELLS:
            sys.stderr.write("usage: paxos completion {bash,zsh}\n"
                             "paxos completion: error: name one shell: bash or zsh\n")
            return 2
        script = completion_script(words[0])
        out.write(script if script.endswith("\n") else script + "\n")
        return 0
    if words:
        sys.stderr.write(f"paxos man: error: unrecognized arguments: {' '.join(words)}\n")
        return 2
    out.write(man_page())
    return 0
