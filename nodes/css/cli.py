"""`paxos-css-cli`: small operator tool: status, get, put, lock, counter.

Usage: paxos-css-cli [--cell C [--home DIR | --config FILE] | --members H:P,...] <command> [args]
(`paxos-css-cli COMMAND --help` for each command; the cell file is HOME/etc/cell/C.conf, HOME
being --home, else $PAXOS_HOME, else ~.)
  status [no]            status of every member (or one), JSON
  get NAME               print a file's data
  put NAME DATA          write a file (creates it)
  del NAME               delete a file
  ls [PREFIX]            list files
  lock NAME [R|W] [--hold S]  take a lock (blocking), hold it, release it
  incr NAME [DELTA]      add to a counter, print the new value
  remove-learner MEMBER_ID [--expect-cfg N]
                         remove a learner from the replicated configuration (its member id is
                         retired); JSON {cfg, removed, member_id}; already retired: removed false
  gen-key                create the cell secret <cell>.key beside the cell file (mode 0600,
                         32 random bytes); refuses to overwrite one. Run once per cell by
                         whoever creates it; every member host needs the same file
  abort-join NO [--expect-cfg N]
                         the same for the learner joining as line NO (abort of a replace before
                         REPLACE is decided; refused with ENOT_LEARNER afterwards)

Exit codes: 0 done, 1 failed (the server's error code is printed), 2 usage error, 3 no member
answered (status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys

from .client import CssClient
from .config import load_cell_config
from .errors import ConfigError, CssError

_CELL = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Usage(Exception):
    """A bad command line found after parsing: exit 2."""


def _home(a: argparse.Namespace) -> str | None:
    """--home, else $PAXOS_HOME (as the admin tool and paxos-node find their files), else
    None: the node's own home (~)."""
    root = a.home if a.home is not None else os.environ.get("PAXOS_HOME") or None
    if root is not None and (not os.path.isabs(root) or not os.path.isdir(root)):
        raise Usage(f"--home {root[:200]!r}: not an absolute path to a directory")
    return root


def _config_file(a: argparse.Namespace) -> str | None:
    if a.config:
        return a.config
    root = _home(a)
    if a.home is None and os.environ.get("PAXOS_CELL_CONFIG"):
        return None  # config_path() takes it
    return None if root is None else os.path.join(root, "etc", "cell", f"{a.cell}.conf")


def _members(a: argparse.Namespace) -> dict[int, dict]:
    if a.members:
        out = {}
        for i, hp in enumerate(a.members.split(",")):
            h, _, p = hp.rpartition(":")
            if not h or not p.isdigit() or not 1 <= int(p) <= 65535:
                raise Usage(f"--members: {hp[:80]!r} is not host:port")
            out[i] = {"tcp": [h, int(p)]}
        return out
    try:
        return load_cell_config(a.cell, _config_file(a))
    except ConfigError as e:
        raise Usage(str(e)) from None


async def _status(a: argparse.Namespace, members: dict[int, dict]) -> int:
    """Every member's status (or one's); exit 3 when no member answered."""
    from .errors import RequestError
    from .probe import status, stopped_status

    nos = [a.no] if a.no is not None else sorted(members)
    if any(n not in members for n in nos):
        raise Usage(f"no member {a.no} in the cell")
    res, answered = [], 0
    for n in nos:
        addr = tuple(members[n]["tcp"])
        try:
            res.append(await status(addr, min(a.timeout, 2.0)))
            answered += 1
        except (TimeoutError, OSError, RequestError, ConnectionError) as e:
            if a.members:
                res.append({"running": False, "no": n, "address": list(addr),
                            "error": str(e)[:200] or type(e).__name__})
            else:
                root = _home(a)
                path = os.path.join(root, "data", a.cell, str(n)) if root else None
                res.append(stopped_status(a.cell, n, path))
    print(json.dumps(res, indent=2, default=str))
    if not answered:
        where = f"cell {a.cell}" if not a.members else "--members"
        print(f"paxos-css-cli: no member of {where} answered", file=sys.stderr)
        return 3
    return 0


async def admin(a: argparse.Namespace, members: dict[int, dict]) -> int:
    """remove-learner / abort-join: no session, the request goes to the leader."""
    if len(a.args) != 1:
        return usage(f"{a.cmd} takes exactly one argument")
    # SUPPRESS default: --expect-cfg may come before the command or after it
    a.expect_cfg = getattr(a, "expect_cfg", None)
    kw: dict = {"expect_cfg": a.expect_cfg}
    if a.cmd == "abort-join":
        try:
            kw["no"] = int(a.args[0])
        except ValueError:
            return usage(f"abort-join: member number {a.args[0]!r} is not an integer")
    else:
        kw["member_id"] = a.args[0]
    cl = CssClient([tuple(m["tcp"]) for _, m in sorted(members.items())],
                   client_name="paxos-css-cli", request_timeout=a.timeout)
    try:
        print(json.dumps(await cl.remove_learner(**kw)))
    finally:
        await cl.aclose()
    return 0


def usage(msg: str) -> int:
    print(f"paxos-css-cli: {msg}", file=sys.stderr)
    return 2


def gen_key(a: argparse.Namespace) -> int:
    from .config import config_path
    from .shell.auth import generate_key, key_path

    path = key_path(_config_file(a) or config_path(a.cell), a.cell)
    generate_key(path)
    print(path)
    return 0


async def run(a: argparse.Namespace) -> int:
    if a.cmd == "gen-key":
        return gen_key(a)
    members = _members(a)
    if a.cmd in ("remove-learner", "abort-join"):
        return await admin(a, members)
    if a.cmd == "status":
        return await _status(a, members)
    cl = CssClient([tuple(m["tcp"]) for _, m in sorted(members.items())],
                   client_name="paxos-css-cli", request_timeout=a.timeout)
    async with cl:
        if a.cmd == "get":
            r = await cl.read(a.name)
            sys.stdout.buffer.write(r["data"] + b"\n")
        elif a.cmd == "put":
            print(await cl.write(a.name, a.data.encode()))
        elif a.cmd == "del":
            await cl.delete(a.name)
        elif a.cmd == "ls":
            r = await cl.list(a.prefix)
            for n, v in r["names"]:
                print(f"{v}\t{n}")
        elif a.cmd == "lock":
            r = await cl.lock(a.name, a.mode, wait=True)
            print(json.dumps(r))
            await asyncio.sleep(getattr(a, "hold", 0.0))
            await cl.unlock(a.name)
        elif a.cmd == "incr":
            print(await cl.counter_add(a.name, a.delta))
    return 0


def _cell(text: str) -> str:
    if not _CELL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"bad cell name {text[:80]!r}: letters, digits, '_' and '-', at most 64")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paxos-css-cli", description="Small operator tool for one CSS cell.",
        epilog="Exit codes: 0 done, 1 failed (the server's error code is printed), 2 usage "
               "error, 3 no member answered (status).")
    p.add_argument("--cell", default="cell0", type=_cell, help="cell name (default cell0)")
    p.add_argument("--config", help="cell file (default HOME/etc/cell/CELL.conf)")
    p.add_argument("--home", help="home holding etc/cell (default $PAXOS_HOME, else ~)")
    p.add_argument("--members", help="comma-separated host:port list instead of --cell")
    p.add_argument("--timeout", type=float, default=10.0, help="request timeout in seconds")
    # accepted before the command too, as in earlier versions
    p.add_argument("--hold", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--expect-cfg", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text)

    sp = cmd("status", "status of every member (or one), JSON")
    sp.add_argument("no", type=int, nargs="?", help="only this member")
    cmd("get", "print a file's data").add_argument("name", metavar="NAME")
    sp = cmd("put", "write a file (creates it)")
    sp.add_argument("name", metavar="NAME")
    sp.add_argument("data", metavar="DATA")
    cmd("del", "delete a file").add_argument("name", metavar="NAME")
    cmd("ls", "list files").add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    sp = cmd("lock", "take a lock (blocking), hold it, release it")
    sp.add_argument("name", metavar="NAME")
    sp.add_argument("mode", metavar="MODE", nargs="?", default="W", choices=("R", "W"),
                    help="R or W (default W)")
    sp.add_argument("--hold", type=float, default=argparse.SUPPRESS,
                    help="seconds to hold the lock (default 0)")
    sp = cmd("incr", "add to a counter, print the new value")
    sp.add_argument("name", metavar="NAME")
    sp.add_argument("delta", metavar="DELTA", type=int, nargs="?", default=1)
    sp = cmd("remove-learner", "remove a learner from the replicated configuration (its "
             "member id is retired); JSON {cfg, removed, member_id}")
    # nargs="*": the count is checked by `admin`, with its own message
    sp.add_argument("args", metavar="MEMBER_ID", nargs="*")
    sp.add_argument("--expect-cfg", type=int, default=argparse.SUPPRESS,
                    help="only if the configuration version is N")
    cmd("gen-key", "create the cell secret <cell>.key beside the cell file (mode 0600); "
        "refuses to overwrite one")
    sp = cmd("abort-join", "abort the join of the learner for line NO (before REPLACE is "
             "decided)")
    sp.add_argument("args", metavar="NO", nargs="*")
    sp.add_argument("--expect-cfg", type=int, default=argparse.SUPPRESS,
                    help="only if the configuration version is N")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(a))
    except Usage as e:
        return usage(str(e))
    except CssError as e:
        print(f"paxos-css-cli: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
