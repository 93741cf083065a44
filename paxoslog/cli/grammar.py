"""The command grammar (verb, object, options) as argparse parsers, shared by both modes."""

from __future__ import annotations

import argparse
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


class Parser(argparse.ArgumentParser):
    """Raises instead of exiting, so the shell survives a usage error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ParseError(self, message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise ParseExit(status, message)


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


def _output_opts(p: argparse.ArgumentParser) -> None:
    # Accepted after the object too; SUPPRESS keeps a global choice when not repeated here.
    p.add_argument("--json", action="store_const", const="json", dest="output",
                   default=argparse.SUPPRESS, help="print the report as JSON")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default=argparse.SUPPRESS,
                   help="report format")


def _host_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--user", help="only hosts with this user")
    p.add_argument("-p", "--port", type=_int, help="only hosts with this port")
    p.add_argument("-g", "--group", help="only hosts sharing a group with grp0[:grp1...]")
    p.add_argument("--at", metavar="REV", help="as of revision REV")


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
    top = Parser(prog=prog, description="Administer PAXOS memcache/CSS clusters.")
    top.add_argument("--version", action="store_true", help="print the version and exit")
    top.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml",
                     help="report format (default yaml)")
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
        p.add_argument("--at", metavar="REV", help="as of revision REV")
        p = _object(sub, name, "memcache", f"{name} memcache instances")
        if name == "show":
            p.add_argument("-i", "--id", type=_int, help="only this id")
            p.add_argument("-c", "--css", help="only instances of this cell")
            p.add_argument("-N", "--name-space", dest="name_space", help="only this name space")
        p.add_argument("--at", metavar="REV", help="as of revision REV")

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
    p = verbs.add_parser("diff", help="diff of the rendered files between two revisions")
    p.set_defaults(command="diff")
    p.add_argument("rev1", metavar="REV1")
    p.add_argument("rev2", metavar="REV2", nargs="?", default="HEAD")
    p = verbs.add_parser("undo", help="undo the last command not yet undone")
    p.set_defaults(command="undo")
    p = verbs.add_parser("revert", help="restore the topology as of REV (a new event)")
    p.set_defaults(command="revert")
    p.add_argument("rev", metavar="REV")
    p = verbs.add_parser("verify", help="rebuild every commit from the events and compare")
    p.set_defaults(command="verify")
    p = verbs.add_parser("replay", help="verify, then rewrite $PAXOS_HOME/etc from the events")
    p.set_defaults(command="replay")
    for action in verbs.choices.values():
        _attach_output(action)
    return top


def _attach_output(p: argparse.ArgumentParser) -> None:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        _output_opts(p)
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
