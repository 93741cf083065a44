"""The command grammar (verb, object, options) as argparse parsers, shared by both modes."""

from __future__ import annotations

import argparse
import re
from typing import Any

from paxoslog.core.rules import parse_int


def _int(text: str) -> int:
    value = parse_int(text)
    if value is None:
        raise ValueError(text)
    return value


_int.__name__ = "int"  # argparse names the type in its message: "invalid int value: 'x'"


def _count(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"should be 0 or more: {text!r}")
    return value


_count.__name__ = "int"


_AGO = re.compile(r"([0-9]{1,6})[ .]*(second|minute|hour|day|week)s?[ .]+ago\Z")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def _since(text: str) -> int:
    """`log --since`: an ISO 8601 date or time (UTC when it names no zone), or `N units ago`;
    returns seconds since the epoch."""
    import datetime
    import time

    m = _AGO.match(text.strip().lower())
    if m:
        return int(time.time()) - int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date (YYYY-MM-DD[THH:MM[:SS]][+HH:MM]) nor 'N days ago': {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp())


class Parser(argparse.ArgumentParser):
    """Raises instead of exiting, so the shell survives a usage error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # the epilog's example lines keep their line breaks
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ParseError(self, message + _suggestion(self, message))

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        # argparse hands a sub-command's unknown words up to the top parser, which then prints
        # the top-level usage: a command's own parser refuses them with its own usage.
        ns, extras = super().parse_known_args(args, namespace)
        if extras and not _is_branch(self):
            self.error("unrecognized arguments: " + " ".join(extras))
        return ns, extras

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise ParseExit(status, message)


def _is_branch(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


_CHOICE = re.compile(r"invalid choice: '(.*?)' \(choose from (.*)\)\Z", re.S)


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """"; did you mean 'show'?" for a near miss of a verb, object or option, else ""."""
    import difflib

    m = _CHOICE.search(message)
    if m:
        word, names = m.group(1), re.findall(r"'([^']*)'", m.group(2))
    elif message.startswith("unrecognized arguments: "):
        word = next((w for w in message.split()[2:] if w.startswith("--")), "")
        names = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    else:
        return ""
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6) if word else []
    return f"; did you mean {close[0]!r}?" if close else ""


class ParseError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.text = message


class ParseExit(Exception):
    """--help or --version: print and stop with this status."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.text = message


OUTPUTS = ("yaml", "json", "table")


def _output_opts(p: argparse.ArgumentParser) -> None:
    # Accepted after the object too; SUPPRESS keeps a global choice when not repeated here.
    p.add_argument("--json", action="store_const", const="json", dest="output",
                   default=argparse.SUPPRESS, help="print the report as JSON")
    p.add_argument("-o", "--output", choices=OUTPUTS, default=argparse.SUPPRESS,
                   help="report format")


def _host_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--user", help="only hosts with this user")
    p.add_argument("-p", "--port", type=_int, help="only hosts with this port")
    p.add_argument("-g", "--group", help="only hosts sharing a group with grp0[:grp1...]")
    p.add_argument("--at", metavar="REV", help="as of revision REV (see below)")


def _memcache_options(p: argparse.ArgumentParser, *, modify: bool) -> None:
    p.add_argument("-c", "--css", required=not modify, help="cell used by the proxy")
    p.add_argument("-i", "--id", type=_int, required=modify,
                   help="memcache id" + ("" if modify else " (default: allocated)"))
    p.add_argument("-N", "--name-space", dest="name_space",
                   help="name space" + ("" if modify else " (default: space0)"))
    p.add_argument("-I", "--max-cache-item", dest="max_cache_item", type=_int,
                   help="max cached items (proxy default 2000)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-s", "--disable-checksum", dest="checksum", action="store_const", const=False,
                   help="disable checksums")
    g.add_argument("-S", "--enable-checksum", dest="checksum", action="store_const", const=True,
                   help="enable checksums (proxy default)")
    p.add_argument("-C", "--checksum-interval", dest="checksum_interval", type=_int,
                   metavar="MSEC", help="checksum interval in milliseconds")
    p.add_argument("-E", "--expire-interval", dest="expire_interval", type=_int, metavar="SEC",
                   help="expire interval in seconds")
    p.add_argument("-W", "--worker", type=_int, help="worker threads (proxy default 5)")


def _pair_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--id", type=_int, required=True, help="memcache id")
    p.add_argument("-a", "--server-address", dest="server_address", required=True,
                   help="memcached host")
    p.add_argument("-p", "--server-port", dest="server_port", type=_int,
                   help="memcached port (default 11211)")
    p.add_argument("-A", "--client-address", dest="client_address",
                   help="address the proxy listens on (default 127.0.0.1)")
    p.add_argument("-P", "--client-port", dest="client_port", type=_int,
                   help="port the proxy listens on (default 11211)")


class _Ignore:
    """Stands in for the parsers of verbs a one-shot command does not use."""

    def add_parser(self, *args: Any, **kwargs: Any) -> _Ignore:
        return self

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def _object(sub: Any, verb: str, obj: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(obj, help=help_text, description=help_text)
    p.set_defaults(command=f"{verb} {obj}")
    return p


def build(prog: str = "paxos", only: str | None = None) -> Parser:
    """The whole grammar, or with `only` the options of that verb alone (the other verbs stay
    as names): building ~30 argparse parsers is a visible part of a one-shot command's time."""
    top = Parser(prog=prog, description="Administer PAXOS memcache/CSS clusters.",
                 epilog="more: paxos help VERB [OBJECT]; paxos completion bash|zsh; paxos man\n"
                        "without a VERB: interactive mode, one command per line")
    top.add_argument("--version", action="store_true", help="print the version and exit")
    top.add_argument("-o", "--output", choices=OUTPUTS, default="yaml",
                     help="report format (default yaml; table: aligned columns)")
    top.add_argument("--json", action="store_const", const="json", dest="output",
                     help="same as -o json")
    top.add_argument("-v", "--verbose", action="count", default=0, help="-v INFO, -vv DEBUG")
    top.add_argument("--debug", metavar="FILE", help="also log DEBUG to FILE")
    top.add_argument("--trust-new-hosts", action="store_true",
                     help="accept and record unknown SSH host keys")
    verbs = top.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)

    def verb(name: str, help_text: str) -> Any:
        p = verbs.add_parser(name, help=help_text, description=help_text)
        sub = p.add_subparsers(dest="object", metavar="OBJECT", required=True,
                               parser_class=Parser)
        return sub if only in (None, name) else _Ignore()

    reg = verb("register", "add a host, cell, memcache instance or pair")
    p = _object(reg, "register", "host", "register a host")
    p.add_argument("-u", "--user", help="SSH login user (default paxos)")
    p.add_argument("-p", "--port", type=_int, help="SSH port (default 22)")
    p.add_argument("-g", "--group", help="groups grp0[:grp1...]")
    p.add_argument("--use-ssh-config", action="store_true",
                   help="take missing user/port/identity from ~/.ssh/config")
    p.add_argument("hostname")
    p = _object(reg, "register", "css", "register a CSS cell of three servers")
    p.add_argument("-n", "--name", required=True, help="cell name")
    p.add_argument("endpoints", nargs=6, metavar="ENDPOINT",
                   help="udp0:port tcp0:port udp1:port tcp1:port udp2:port tcp2:port")
    _memcache_options(_object(reg, "register", "memcache", "register a memcache instance"),
                      modify=False)
    _pair_options(_object(reg, "register", "pair", "register a client/server address pair"))

    unreg = verb("unregister", "remove a host, cell, memcache instance or pair")
    _object(unreg, "unregister", "host", "unregister a host").add_argument("hostname")
    _object(unreg, "unregister", "css", "unregister a cell").add_argument(
        "-n", "--name", required=True, help="cell name")
    _object(unreg, "unregister", "memcache", "unregister a memcache instance").add_argument(
        "-i", "--id", type=_int, required=True, help="memcache id")
    _pair_options(_object(unreg, "unregister", "pair", "unregister a pair"))

    mod = verb("modify", "change a host or memcache instance")
    p = _object(mod, "modify", "host", "change a host's SSH settings or groups")
    p.add_argument("-u", "--user", help="SSH login user")
    p.add_argument("-p", "--port", type=_int, help="SSH port")
    p.add_argument("-g", "--group", help="groups grp0[:grp1...] (replaces the groups)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--use-ssh-config", action="store_true", help="use ~/.ssh/config")
    g.add_argument("--not-use-ssh-config", action="store_true", help="stop using ~/.ssh/config")
    p.add_argument("hostname")
    _memcache_options(_object(mod, "modify", "memcache", "change a memcache instance"),
                      modify=True)

    for name, help_text in (("show", "print registry entries"), ("list", "print registry keys")):
        sub = verb(name, help_text)
        p = _object(sub, name, "host", f"{name} hosts")
        _host_filters(p)
        if name == "show":
            p.add_argument("hostname", nargs="*", help="only these hosts")
        p = _object(sub, name, "css", f"{name} cells")
        if name == "show":
            p.add_argument("-n", "--name", help="only this cell")
        p.add_argument("--at", metavar="REV", help="as of revision REV (see below)")
        p = _object(sub, name, "memcache", f"{name} memcache instances")
        if name == "show":
            p.add_argument("-i", "--id", type=_int, help="only this id")
            p.add_argument("-c", "--css", help="only instances of this cell")
            p.add_argument("-N", "--name-space", dest="name_space", help="only this name space")
        p.add_argument("--at", metavar="REV", help="as of revision REV (see below)")

    st = _runtime(verb, verbs)

    p = verbs.add_parser("deploy", help="ship HEAD's configuration and event log to hosts",
                         description="ship HEAD's configuration and event log to hosts")
    p.set_defaults(command="deploy")
    p.add_argument("-g", "--group", help="only hosts sharing a group with grp0[:grp1...]")
    p.add_argument("--clean", action="store_true",
                   help="remove cell files HEAD does not render from ~/etc/cell")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="print what would change on each host, change nothing")
    p.add_argument("--diff", action="store_true",
                   help="with --dry-run: the unified diff of each file that would change")
    p.add_argument("hostname", nargs="*", help="only these registered hosts")
    p = _object(st, "status", "deploy", "the commit each host holds, and drift")
    p.add_argument("-g", "--group", help="only hosts sharing a group with grp0[:grp1...]")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-s", "--short", action="store_true", help="one line per host")
    g.add_argument("-q", "--quiet", action="store_true", help="print nothing; exit code only")
    p.add_argument("hostname", nargs="*", help="only these registered hosts")
    p = verbs.add_parser("fetch", help="restore the event log and configuration from a host",
                         description="restore the event log and configuration from a host")
    p.set_defaults(command="fetch")
    p.add_argument("--use-ssh-config", dest="use_ssh_config", action="store_true",
                   help="also use ~/.ssh/config for this host")
    p.add_argument("--force", action="store_true",
                   help="replace a diverged local log (its head is kept as refs/paxos/pre-fetch)")
    p.add_argument("hostname", help="registered host or [user@]host[:port]")
    p = verbs.add_parser("log", help="audit trail, newest first", description="audit trail")
    p.set_defaults(command="log")
    p.add_argument("-n", "--max-count", dest="max_count", type=_count, help="at most N commits")
    p.add_argument("--reverse", action="store_true", help="oldest first")
    p.add_argument("--author", metavar="TEXT",
                   help="only commits whose author contains TEXT (any case)")
    p.add_argument("--since", metavar="WHEN", type=_since,
                   help="only commits at or after WHEN: YYYY-MM-DD[THH:MM[:SS]][+HH:MM] (UTC "
                        "if no zone) or 'N minutes|hours|days|weeks ago'")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--oneline", action="store_true",
                   help="one line per commit: rev, short commit id, command")
    g.add_argument("-p", "--patch", action="store_true",
                   help="each commit with the diff of the rendered configuration")
    p = verbs.add_parser("diff", help="diff of the rendered files between two revisions",
                         description="diff of the rendered files between two revisions")
    p.set_defaults(command="diff")
    p.add_argument("rev1", metavar="REV1")
    p.add_argument("rev2", metavar="REV2", nargs="?", default="HEAD")
    p = verbs.add_parser("undo", help="undo the last command not yet undone",
                         description="undo the last command not yet undone")
    p.set_defaults(command="undo")
    p = verbs.add_parser("revert", help="restore the topology as of REV (a new event)",
                         description="restore the topology as of REV (a new event)")
    p.set_defaults(command="revert")
    p.add_argument("rev", metavar="REV")
    p = verbs.add_parser("verify", help="rebuild every commit from the events and compare",
                         description="rebuild every commit from the events and compare")
    p.set_defaults(command="verify")
    p = verbs.add_parser("replay", help="verify, then rewrite $PAXOS_HOME/etc from the events",
                         description="verify, then rewrite $PAXOS_HOME/etc from the events")
    p.set_defaults(command="replay")
    for action in verbs.choices.values():
        _attach_output(action)
    return top


REV_HELP = ("REV is HEAD, HEAD~k (k commands before HEAD), a revision number (0 = the empty\n"
            "registry) or a commit id prefix of 7 or more hex digits.")

# One example per command, shown by `help VERB OBJECT`, `--help` and the man page.
EXAMPLES = {
    "register host": "paxos register host --user paxos -g web:db 192.168.1.10",
    "register css": "paxos register css --name css0 192.168.1.100:24111 192.168.1.100:24111 "
                    "192.168.1.101:24111 192.168.1.101:24111 192.168.1.102:24111 "
                    "192.168.1.102:24111",
    "register memcache": "paxos register memcache --css css0 -N space1 -W 8",
    "register pair": "paxos register pair --id 0 --server-address 192.168.1.200",
    "unregister host": "paxos unregister host 192.168.1.11",
    "unregister css": "paxos unregister css --name css0",
    "unregister memcache": "paxos unregister memcache --id 0",
    "unregister pair": "paxos unregister pair --id 0 --server-address 192.168.1.200",
    "modify host": "paxos modify host --port 2222 -g web 192.168.1.10",
    "modify memcache": "paxos modify memcache --id 0 --disable-checksum",
    "show host": "paxos show host -g css0 --at HEAD~2",
    "show css": "paxos -o table show css --name css0",
    "show memcache": "paxos show memcache --css css0",
    "list host": "paxos list host -u paxos",
    "list css": "paxos list css --at 3",
    "list memcache": "paxos --json list memcache",
    "status deploy": "paxos -o table status deploy -g css0",
    "status css": "paxos status css --name css0 --short",
    "status memcache": "paxos status memcache --id 0",
    "start css": "paxos start css --name css0",
    "stop css": "paxos stop css --name css0",
    "start memcache": "paxos start memcache --id 0",
    "stop memcache": "paxos stop memcache --id 0",
    "apply pair": "paxos apply pair --id 0",
    "replace": "paxos replace --name css0 --no 2 -a 192.168.1.103:24111 192.168.1.103:24111",
    "install": "paxos install -g css0",
    "deploy": "paxos deploy --dry-run -g css0",
    "fetch": "paxos fetch 192.168.1.10",
    "log": "paxos log -n 5 --author alice --since 2026-11-01 --oneline",
    "diff": "paxos diff HEAD~1",
    "undo": "paxos undo",
    "revert": "paxos revert 3",
    "verify": "paxos verify",
    "replay": "paxos replay",
}


def _epilog(p: argparse.ArgumentParser) -> None:
    command = p.get_default("command")
    lines = []
    if command in EXAMPLES:
        lines.append(f"example:\n  {EXAMPLES[command]}")
    if any(a.metavar and "REV" in str(a.metavar) for a in p._actions):
        lines.append(REV_HELP)
    if lines:
        p.epilog = "\n\n".join(lines)


def _attach_output(p: argparse.ArgumentParser) -> None:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        _output_opts(p)
        _epilog(p)
        return
    for child in subs[0].choices.values():
        _attach_output(child)


def _one_mode(p: argparse.ArgumentParser, *, long: bool) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-s", "--short", action="store_true", help="one line per cell or instance")
    g.add_argument("-q", "--quiet", action="store_true", help="print nothing; exit code only")
    if long:
        g.add_argument("-l", "--long", action="store_true", help="every key of every server")


def _runtime(verb: Any, verbs: Any) -> Any:
    """start/stop/status of cells (through the agents, §3.6) and memcache instances (local,
    §3.7), apply pair, replace and install; returns the `status` verb's objects, which
    `status deploy` joins."""
    start, stop = verb("start", "start servers or proxies"), verb("stop", "stop servers or proxies")
    st = verb("status", "what runs or is deployed where")
    p = _object(start, "start", "css", "start the servers of cells (all, or --name)")
    p.add_argument("-n", "--name", help="only this cell")
    p.add_argument("--initialize", action="store_true",
                   help="wipe every server's data and start the cell afresh")
    p = _object(stop, "stop", "css", "stop the servers of cells, followers first")
    p.add_argument("-n", "--name", help="only this cell")
    p.add_argument("--force", action="store_true",
                   help="skip the in-use check; kill servers that do not stop")
    p = _object(st, "status", "css", "state of every server of cells")
    p.add_argument("-n", "--name", help="only this cell")
    _one_mode(p, long=True)
    p = _object(start, "start", "memcache", "start memcache proxies on this host")
    p.add_argument("-i", "--id", type=_int, help="only this id")
    p = _object(stop, "stop", "memcache", "stop memcache proxies on this host")
    p.add_argument("-i", "--id", type=_int, help="only this id")
    p.add_argument("--force", action="store_true", help="kill a proxy that does not stop")
    p = _object(st, "status", "memcache", "state of memcache proxies on this host")
    p.add_argument("-i", "--id", type=_int, help="only this id")
    p.add_argument("-c", "--css", help="only instances of this cell")
    p.add_argument("-N", "--name-space", dest="name_space", help="only this name space")
    _one_mode(p, long=False)
    p = _object(verb("apply", "bring running proxies in line with the registry"), "apply",
                "pair", "add registered pairs a proxy lacks, then remove the others")
    p.add_argument("-i", "--id", type=_int, help="only this id")
    p = verbs.add_parser("replace", help="replace a CSS member by a server at new endpoints",
                         description="replace a CSS member by a server at new endpoints")
    p.set_defaults(command="replace")
    p.add_argument("-n", "--name", required=True, help="cell name")
    p.add_argument("-N", "--no", type=_int, required=True, help="member number (0-2)")
    p.add_argument("-a", "--address", nargs=2, required=True, metavar=("UDP:PORT", "TCP:PORT"),
                   help="the new member's UDP and TCP endpoints")
    p.add_argument("--force", action="store_true", help="allow replacing a member in error")
    p = verbs.add_parser("install", help="install this version's node programs on hosts",
                         description="install this version's node programs on hosts")
    p.set_defaults(command="install")
    p.add_argument("-g", "--group", help="only hosts sharing a group with grp0[:grp1...]")
    p.add_argument("hostname", nargs="*", help="only these registered hosts")
    return st

VERB_OBJECTS = {
    "register": ("host", "css", "memcache", "pair"),
    "unregister": ("host", "css", "memcache", "pair"),
    "modify": ("host", "memcache"),
    "show": ("host", "css", "memcache"),
    "list": ("host", "css", "memcache"),
    "status": ("deploy", "css", "memcache"),
    "start": ("css", "memcache"),
    "stop": ("css", "memcache"),
    "apply": ("pair",),
}
SIMPLE_VERBS = ("deploy", "fetch", "log", "diff", "undo", "revert", "verify", "replay",
                "replace", "install")
