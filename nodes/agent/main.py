"""`paxos-node [--home DIR] [--format json|msgpack] <verb> <object> [args]` (spec nodes.md §4).

stdout carries exactly one document `{ok, command, host, deployed, result | error}`; stderr
only human diagnostics; the exit code is one of §4.1 (0-7). No traceback ever reaches the
admin: anything unexpected becomes exit 1 with a one-line message."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn

# Start-up time is most of a short call's cost on a host (the admin runs one `paxos-node` per
# member and command): modules only some verbs need (msgpack output, the log) are
# imported where they are used.
from . import css, memcache, replace
from .errors import AgentError, BadEtc, Usage, clean
from .etc import deployed_commit
from .paths import Home, cell_name, member_no, seconds

VERSION = "0.1.0"  # only when no paxoslog distribution is installed (run from a source tree)
MUTATING = {"start", "stop", "wipe", "replace", "apply"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise Usage(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise Usage(message or f"{self.prog}: usage error")


def _cfg_version(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"not a configuration version: {text[:40]!r}")
    return int(text)


def _comment(text: str) -> str:
    if len(text) > 200 or not text.isprintable():
        raise argparse.ArgumentTypeError("at most 200 printable characters")
    return text


def build_parser() -> _Parser:
    p = _Parser(prog="paxos-node", add_help=False)
    p.add_argument("--home")
    p.add_argument("--format", choices=["json", "msgpack"], default="json")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    verbs.add_parser("version", add_help=False)
    objs_of: dict[str, Any] = {}

    def css_parser(verb: str) -> _Parser:
        objs = verbs.add_parser(verb, add_help=False).add_subparsers(
            dest="object", required=True, parser_class=_Parser)
        objs_of[verb] = objs
        sp = objs.add_parser("css", add_help=False)
        sp.add_argument("cell", type=cell_name)
        return sp

    sp = css_parser("start")
    sp.add_argument("no", type=member_no)
    sp.add_argument("--init", action="store_true")
    sp.add_argument("--cell-id")
    sp = css_parser("stop")
    sp.add_argument("no", type=member_no)
    sp.add_argument("--force", action="store_true")
    sp.add_argument("--timeout", type=seconds, default=30.0)
    sp.add_argument("--comment", type=_comment, default="")
    sp = css_parser("status")
    sp.add_argument("no", type=member_no, nargs="?")
    sp.add_argument("--long", action="store_true")
    sp.add_argument("--check", action="store_true")
    sp = css_parser("wipe")
    sp.add_argument("no", type=member_no)
    sp.add_argument("--yes", action="store_true")
    sp = css_parser("replace")
    sp.add_argument("no", type=member_no)
    sp.add_argument("--step", required=True, choices=list(replace.STEPS))
    sp.add_argument("--timeout", type=seconds, default=300.0)
    sp.add_argument("--expect-cfg", type=_cfg_version)
    memcache.add_parsers(verbs, objs_of, _Parser)
    return p


def _home(arg: str | None) -> Home:
    root = arg if arg is not None else os.path.expanduser("~")
    if not os.path.isabs(root) or not os.path.isdir(root):
        raise Usage(f"--home {root[:200]!r}: not an absolute path to a directory")
    return Home(os.path.realpath(root))


def run(a: argparse.Namespace, ctx: css.Ctx) -> dict:
    if a.verb == "version":
        from nodes.css import PROTOCOL
        from nodes.css import VERSION as CSS_VERSION

        # the package's version and build (what `paxos install` put here), so the admin can
        # tell an agent that is not its own version
        version, build = package_version()
        return {"agent": version, "build": build, "css": CSS_VERSION, "protocol": PROTOCOL,
                "python": sys.version.split()[0]}
    if getattr(a, "object", None) in ("memcache", "pair"):
        return memcache.run(a, ctx)
    if a.verb == "start":
        return css.start(ctx, a.cell, a.no, a.init, a.cell_id)
    if a.verb == "stop":
        return css.stop(ctx, a.cell, a.no, a.force, a.timeout, a.comment)
    if a.verb == "status":
        return css.status(ctx, a.cell, a.no, a.long, a.check)
    if a.verb == "wipe":
        return css.wipe(ctx, a.cell, a.no, a.yes)
    if a.verb == "replace":
        return replace.step(ctx, a.cell, a.no, a.step, a.timeout, a.expect_cfg)
    raise Usage(f"unknown verb {a.verb}")


def package_version() -> tuple[str, str | None]:
    """(version, build) of the installed paxoslog: the build id is in `paxoslog/BUILD` of a
    wheel `paxos install` made; a source checkout has none."""
    import importlib.metadata

    import paxoslog

    try:
        version = importlib.metadata.version("paxoslog")
    except importlib.metadata.PackageNotFoundError:
        version = VERSION
    try:
        path = os.path.join(os.path.dirname(paxoslog.__file__), "BUILD")
        with open(path, "rb") as f:
            build = f.read(64).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        build = None
    return version, (build if build and build.isalnum() and len(build) <= 40 else None)


def _command(argv: list[str]) -> str:
    return " ".join(w if w.isprintable() else repr(w) for w in argv)[:1000]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # os.uname().nodename is what socket.gethostname() returns, without importing socket
    doc: dict[str, Any] = {"ok": False, "command": _command(argv), "host": os.uname().nodename,
                           "deployed": None}
    fmt = "msgpack" if _wants_msgpack(argv) else "json"
    code = 0
    a = None
    ctx = None
    try:
        a = build_parser().parse_args(argv)
        ctx = css.Ctx(_home(a.home))
        try:
            doc["deployed"] = deployed_commit(ctx.home.etc("DEPLOYED"))
        except BadEtc as e:
            # stopping and looking must stay possible with a bad stamp; the rest refuses
            if a.verb not in ("stop", "status"):
                raise
            ctx.warnings.append(str(e))
        doc["result"] = run(a, ctx)
        doc["ok"] = True
    except AgentError as e:
        code = e.exit_code
        doc["error"] = {"code": e.kind, "exit": code, "message": clean(e.message)}
    except Exception as e:  # the last line of defence: one line, never a traceback
        code = 1
        doc["error"] = {"code": "failed", "exit": 1,
                        "message": clean(f"internal error: {e.__class__.__name__}: {e}", 400)}
    if ctx is not None and ctx.warnings:
        doc["warnings"] = ctx.warnings
    if a is not None and ctx is not None and a.verb in MUTATING:
        _log(ctx, a, doc, code)
    _emit(doc, fmt)
    if not doc["ok"]:
        print(f"paxos-node: {doc['error']['message']}", file=sys.stderr)
    return code


def _wants_msgpack(argv: list[str]) -> bool:
    """--format before the verb, found even when the rest does not parse (usage errors get
    their document in the format asked for)."""
    i = 0
    while i < len(argv):
        w = argv[i]
        if w.startswith("--format="):
            return w == "--format=msgpack"
        if w in ("--format", "--home"):
            if w == "--format":
                return argv[i + 1: i + 2] == ["msgpack"]
            i += 2
            continue
        if not w.startswith("-") or w == "--":
            return False
        i += 1
    return False


def _log(ctx: css.Ctx, a: argparse.Namespace, doc: dict, code: int) -> None:
    from . import log

    try:
        ctx.home.ensure_log()
        result = doc.get("result") or {}
        fields = {"exit": code, "changed": result.get("changed"), "deployed": doc["deployed"],
                  "user": os.environ.get("SSH_CLIENT", "local").split(" ")[0]}
        message = doc["command"] if code == 0 else \
            f"{doc['command']}: {doc['error']['message']}"
        log.append(ctx.home.log, log.line("INFO" if code == 0 else "ERROR", message, fields))
    except OSError as e:
        print(f"paxos-node: cannot write ~/log/paxos-node.log: {e.strerror}", file=sys.stderr)


def _emit(doc: dict, fmt: str) -> None:
    if fmt == "msgpack":
        import msgpack

        sys.stdout.buffer.write(msgpack.packb(doc, use_bin_type=True))
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(json.dumps(doc, sort_keys=True, default=str) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
