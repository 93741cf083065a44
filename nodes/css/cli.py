"""`paxos-css-cli`: small operator tool: status, get, put, lock, counter.

Usage: paxos-css-cli [--cell C | --members H:P,...] <command> [args]
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

Exit codes: 0 done, 1 failed (the server's error code is printed), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from .client import CssClient
from .config import load_cell_config
from .errors import CssError
from .probe import member_status


def _members(a: argparse.Namespace) -> dict[int, dict]:
    if a.members:
        out = {}
        for i, hp in enumerate(a.members.split(",")):
            h, p = hp.rsplit(":", 1)
            out[i] = {"tcp": [h, int(p)]}
        return out
    return load_cell_config(a.cell, a.config)


async def admin(a: argparse.Namespace, members: dict[int, dict]) -> int:
    """remove-learner / abort-join: no session, the request goes to the leader."""
    if len(a.args) != 1:
        return usage(f"{a.cmd} takes exactly one argument")
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

    path = key_path(a.config or config_path(a.cell), a.cell)
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
        nos = [a.args[0]] if a.args else sorted(members)
        if a.members:
            from .probe import status
            res = [await status(tuple(members[int(n)]["tcp"])) for n in nos]
        else:
            res = [await member_status(a.cell, int(n), members) for n in nos]
        print(json.dumps(res, indent=2, default=str))
        return 0
    cl = CssClient([tuple(m["tcp"]) for _, m in sorted(members.items())],
                   client_name="paxos-css-cli", request_timeout=a.timeout)
    async with cl:
        if a.cmd == "get":
            r = await cl.read(a.args[0])
            sys.stdout.buffer.write(r["data"] + b"\n")
        elif a.cmd == "put":
            print(await cl.write(a.args[0], a.args[1].encode()))
        elif a.cmd == "del":
            await cl.delete(a.args[0])
        elif a.cmd == "ls":
            r = await cl.list(a.args[0] if a.args else "")
            for n, v in r["names"]:
                print(f"{v}\t{n}")
        elif a.cmd == "lock":
            mode = a.args[1] if len(a.args) > 1 else "W"
            r = await cl.lock(a.args[0], mode, wait=True)
            print(json.dumps(r))
            await asyncio.sleep(a.hold)
            await cl.unlock(a.args[0])
        elif a.cmd == "incr":
            print(await cl.counter_add(a.args[0], int(a.args[1]) if len(a.args) > 1 else 1))
        else:
            print(f"unknown command {a.cmd!r}", file=sys.stderr)
            return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="paxos-css-cli")
    p.add_argument("--cell", default="cell0")
    p.add_argument("--config")
    p.add_argument("--members", help="comma-separated host:port list instead of --cell")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--hold", type=float, default=0.0)
    p.add_argument("--expect-cfg", type=int, default=None,
                   help="remove-learner/abort-join: only if the configuration version is N")
    p.add_argument("cmd")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    try:
        return asyncio.run(run(a))
    except CssError as e:
        print(f"paxos-css-cli: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
