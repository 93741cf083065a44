"""Issue 11 item 4: limits answered with clear errors; a full disk (ENOSPC on a small tmpfs)
stops a member from acknowledging without corrupting its WAL, and it recovers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time

import pytest

from nodes.css.client import CssClient
from nodes.css.errors import RequestError, Unavailable
from nodes.css.probe import status
from nodes.css.shell.storage import Storage


def test_state_and_request_limits(cell) -> None:
    cell.extra = ["--max-state-bytes", str(1 << 20)]
    cell.start_all(init=True)

    async def go() -> None:
        await cell.wait_leader()
        async with CssClient(cell.addrs()) as cl:
            hello = await cl.hello()
            assert hello["limits"]["max_state_bytes"] == 1 << 20
            with pytest.raises(RequestError) as e:
                await cl.write("big", b"x" * (64 * 1024 + 1))
            assert e.value.code == "ETOOBIG"
            with pytest.raises(RequestError) as e:
                await cl.write("n" * 600, b"")
            assert e.value.code == "EINVAL"
            written = []
            with pytest.raises(RequestError) as e:
                for i in range(40):
                    await cl.write(f"fill/{i}", os.urandom(60 << 10))
                    written.append(i)
            assert e.value.code == "ENOSPC" and e.value.info["limit"] == 1 << 20
            assert 10 <= len(written) <= 17
            st = await status(cell.tcp(await cell.wait_leader()))
            assert st["counts"]["state_bytes"] <= 1 << 20
            await cl.delete("fill/0")  # deleting is always allowed, and makes room
            await cl.write("fill/again", os.urandom(30 << 10))
            assert len((await cl.read(f"fill/{written[-1]}"))["data"]) == 60 << 10
    asyncio.run(go())


@pytest.fixture
def tmpfs_cell(cell):
    dirs = [os.path.join(cell.home, "data", cell.name, str(no)) for no in range(3)]
    for d in dirs:
        os.makedirs(d)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", d], check=True)
    try:
        yield cell, dirs
    finally:
        cell.close()
        for d in dirs:
            subprocess.run(["umount", "-l", d], check=False)


def _resize(dirs: list[str], size: str) -> None:
    for d in dirs:
        subprocess.run(["mount", "-o", f"remount,size={size}", d], check=True)


def test_full_disk_stops_acks_and_recovers(tmpfs_cell, caplog) -> None:
    cell, dirs = tmpfs_cell
    cell.start_all(init=True)
    acked: dict[str, bytes] = {}

    async def fill() -> str:
        await cell.wait_leader()
        cl = CssClient(cell.addrs(), request_timeout=8)
        await cl.open()
        try:
            for i in range(400):
                v = os.urandom(24 << 10)
                try:
                    await cl.write(f"d/{i}", v)
                except RequestError as e:
                    return e.code
                except Unavailable:
                    return "Unavailable"
                acked[f"d/{i}"] = v
        finally:
            await cl.aclose()
        return "never full"

    outcome = asyncio.run(fill())
    assert outcome in ("ENOSPC", "Unavailable"), outcome
    assert len(acked) > 10

    async def full() -> None:
        deadline = time.monotonic() + 20
        while True:
            sts = await cell.statuses()
            if sum(s["disk_full"] for s in sts.values()) >= 2:
                return
            assert time.monotonic() < deadline, {n: s["disk_full"] for n, s in sts.items()}
            await asyncio.sleep(0.1)
    asyncio.run(full())
    for no, p in cell.procs.items():
        assert p.poll() is None, f"member {no} exited: {cell.log(no)[-1500:]}"
    assert any("disk full" in cell.log(no) for no in range(3))

    _resize(dirs, "64m")  # space returns

    async def recovered() -> None:
        deadline = time.monotonic() + 30
        async with CssClient(cell.addrs(), request_timeout=30) as cl:
            await cl.write("after/space", b"back")
            for k, v in acked.items():
                assert (await cl.read(k))["data"] == v, k
        while True:
            sts = await cell.statuses()
            if len(sts) == 3 and not any(s["disk_full"] for s in sts.values()):
                return
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    asyncio.run(recovered())
    for no in range(3):
        p = cell.procs.pop(no)
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0, cell.log(no)[-3000:]
    caplog.set_level(logging.WARNING, logger="css.storage")
    for d in dirs:  # every record of every segment verifies: nothing torn, nothing truncated
        _slot, _blob, records = Storage(d).load()
        assert records
    assert "torn write" not in caplog.text and "corrupt" not in caplog.text
