"""Replace member 0 by a new process on another address while a client writes continuously."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

from css_cell import FAST

from nodes.css.client import CssClient
from nodes.css.errors import RequestError
from nodes.css.probe import replace, status


def test_replace_member_under_load(running_cell, tmp_path) -> None:
    cell = running_cell
    # the new host: its own home whose cell file names 127.0.0.4 for member 0
    home2 = tmp_path / "newhost"
    (home2 / "etc" / "cell").mkdir(parents=True)
    shutil.copy(cell.config_path, home2 / "etc" / "cell" / "cell0.conf")
    conf = (home2 / "etc" / "cell" / "cell0.conf").read_text().splitlines()
    conf[0] = f"0 127.0.0.4 {cell.base} 127.0.0.4 {cell.base + 100}"
    (home2 / "etc" / "cell" / "cell0.conf").write_text("\n".join(conf) + "\n")
    new_addr = ("127.0.0.4", cell.base + 100)
    env = {**os.environ, "HOME": str(home2)}
    joiner = subprocess.Popen([sys.executable, "-m", "nodes.css.server", "cell0", "0", "--join",
                               "--cell-id", cell.cell_id, "--log", "file", "--test-hooks", *FAST],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        assert joiner.stdout.readline().startswith(b"READY")
        failures: list[str] = []
        acked: dict[str, bytes] = {}

        async def go() -> None:
            stop = asyncio.Event()

            async def writer() -> None:
                async with CssClient(cell.addrs() + [new_addr], request_timeout=10) as cl:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        try:
                            await cl.write(f"r/{i % 50}", str(i).encode())
                            acked[f"r/{i % 50}"] = str(i).encode()
                        except Exception as e:  # any failure fails the test
                            failures.append(repr(e))
            w = asyncio.create_task(writer())
            await asyncio.sleep(0.5)
            deadline = time.monotonic() + 15
            while True:  # the learner is admitted and catches up
                st = await status(new_addr)
                if st["role"] == "learner" and st["members"] and st["commit"] > 0:
                    break
                assert time.monotonic() < deadline, f"learner not admitted: {st['role']}"
                await asyncio.sleep(0.1)
            # as the admin does (admin.md §6.6 step 3): wait until the learner has caught up
            # with a cell that keeps writing; ENOT_CAUGHT_UP is a refusal that changed nothing
            while True:
                try:
                    res = await replace(cell.addrs(), 0, st["member_id"])
                    break
                except RequestError as e:
                    assert e.code == "ENOT_CAUGHT_UP", e
                    assert time.monotonic() < deadline + 15, f"learner never caught up: {e}"
                    await asyncio.sleep(0.1)
            assert res["cfg"] >= 4  # add_learner, replace, finalize
            await asyncio.sleep(0.5)
            stop.set()
            await w
            # the old member 0 learns it was removed and stops with exit 11
            cell.procs[0].wait(10)
            assert cell.procs.pop(0).returncode == 11
            st = await status(new_addr)
            assert st["role"] in ("follower", "leader")
            assert st["config"]["voters"] == [0, 1, 2] and len(st["config"]["retired"]) == 1
            assert st["config_drift"] is False  # its file already names 127.0.0.4
            assert (await status(cell.tcp(2)))["config_drift"] is True  # until redeployed
            # without member 1, the cell (2 + the new 0) still serves everything acknowledged
            cell.kill(1)
            async with CssClient([cell.tcp(2), new_addr], request_timeout=15) as cl:
                for k, v in acked.items():
                    assert (await cl.read(k))["data"] == v
        asyncio.run(go())
        assert failures == []
    finally:
        joiner.kill()
        joiner.wait()
