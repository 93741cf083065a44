"""`paxos-css-cli`: small operator tool: status, get, put, lock, counter.

Usage: paxos-css-cli [--cell C | --members H:P,...] <command> [args]
  status [no]            status of every member (or one), JSON
  get NAME               print a file's data
  put NAME DATA          write a file (creates it)
  del NAME               delete a file
  ls [PREFIX]            list files
  lock NAME [R|W] [--hold S]  take a lock (blocking), hold it, release it
  incr NAME [DELTA]      add to a counter, print the new value
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


async def run(a: argparse.Namespace) -> int:
    members = _members(a)
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
