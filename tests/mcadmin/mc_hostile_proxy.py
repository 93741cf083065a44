"""A hostile stand-in for paxos-memcache: it holds the pid file's lock like the real proxy and
answers its control socket with a status whose pairs and options are garbage.

    python -m tests.mcadmin.mc_hostile_proxy RUN_DIR ID
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys

from nodes.css.wire import frame, read_frame

STATUS = {"id": 0, "pid": 1, "css": "cell0\x1b[31m", "name_space": "space0",
          "options": {"worker": "many", "checksum": "yes", "max_cache_item": [1]},
          "session": {"sid": 7, "valid": "yes"},
          "pairs": [{"client": "../../etc/passwd", "server": 11211}, "x"]}


async def serve(sock: str) -> None:
    async def one(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while await read_frame(r) is not None:
            w.write(frame({"t": "reply", "ok": True, "res": STATUS}))
            await w.drain()
        w.close()

    server = await asyncio.start_unix_server(one, sock)
    print(f"READY {os.getpid()}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    run, mid = sys.argv[1], sys.argv[2]
    os.makedirs(run, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(run, f"paxos-memcache-{mid}.pid"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\n".encode())
    asyncio.run(serve(os.path.join(run, f"paxos-memcache-{mid}.sock")))


if __name__ == "__main__":
    main()
