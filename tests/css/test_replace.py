"""Replace member 0 by a new process on another address while a client writes; aborted and
abandoned joins (remove_learner, learner timeout) leave the cell repairable."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from css_cell import FAST
from css_joiner import Joiner, leader_lag
from css_workload import Workload, verify

from nodes.css.client import CssClient
from nodes.css.core.reconfig import PROMOTE_MAX_LAG
from nodes.css.errors import RequestError
from nodes.css.probe import leader_request, remove_learner, replace, status
from nodes.css.shell.auth import Auth
from nodes.css.wire import pack


def test_replace_member_under_load(running_cell, tmp_path) -> None:
    cell = running_cell
    # the new host: its own home whose cell file names 127.0.0.4 for member 0
    home2 = tmp_path / "newhost"
    (home2 / "etc" / "cell").mkdir(parents=True)
    shutil.copy(cell.config_path, home2 / "etc" / "cell" / "cell0.conf")
    conf = (home2 / "etc" / "cell" / "cell0.conf").read_text().splitlines()
    conf[0] = f"0 127.0.0.4 {cell.base} 127.0.0.4 {cell.base + 100}"
    (home2 / "etc" / "cell" / "cell0.conf").write_text("\n".join(conf) + "\n")
    cell.copy_key(str(home2 / "etc" / "cell"))
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


# ---- aborted and abandoned joins (issue 13 item 4) -------------------------------------------
async def _cli(cell, *args: str) -> tuple[int, str, str]:
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nodes.css.cli", "--cell", cell.name, *args, env=cell.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(p.communicate(), 60)
    return p.returncode, out.decode(), err.decode()


async def _until(pred, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(every)


async def _config(cell) -> dict:
    return await leader_request(cell.addrs(), {"t": "config"}, 15.0)


async def _replace_when_caught_up(cell, no: int, mid: str, timeout: float = 45.0) -> dict:
    """As the admin does: ENOT_CAUGHT_UP is a refusal that changed nothing; retry."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await replace(cell.addrs(), no, mid)
        except RequestError as e:
            assert e.code == "ENOT_CAUGHT_UP", e
            assert time.monotonic() < deadline, f"learner never caught up: {e}"
            await asyncio.sleep(0.1)


def test_abort_at_every_step_of_replace_then_a_fresh_replace_succeeds(running_cell,
                                                                      tmp_path) -> None:
    cell = running_cell
    js = [Joiner(cell, tmp_path, f"127.0.0.{4 + i}") for i in range(4)]
    w = Workload(cell.addrs() + [js[3].addr], seed=13)

    async def faults() -> None:
        async def progress(n: int) -> None:
            start = w.ok_count
            await _until(lambda: _true(w.ok_count >= start + n), 30, "workload progress")

        await progress(20)
        # 1. right after JOIN was admitted: the CLI removes the learner by member id
        j = js[0]
        j.start()
        await asyncio.to_thread(j.ready)
        mid = await j.admitted()
        rc, out, err = await _cli(cell, "remove-learner", mid)
        assert rc == 0, err
        assert json.loads(out)["removed"] is True and json.loads(out)["member_id"] == mid
        assert await j.exited() == 11, j.log()
        cfg = await _config(cell)
        assert mid in cfg["retired"] and all(m["role"] == "voter"
                                             for m in cfg["members"].values())
        rc, out, err = await _cli(cell, "remove-learner", mid)  # a retry: already gone
        assert rc == 0 and json.loads(out)["removed"] is False, err
        # its identity is retired: restarting its data directory is refused
        j.start(join=False)
        assert await j.exited() == 11

        # 2. during catch-up (the learner hears nothing, so it falls behind): the library
        # aborts by line number
        j = js[1]
        j.start()
        await asyncio.to_thread(j.ready)
        mid = await j.admitted()
        assert (await j.control({"t": "drop", "peer": -1, "dir": "in", "prob": 1.0}))["ok"]

        async def lagging() -> bool:
            lag = await leader_lag(cell, mid)
            return lag is not None and lag > PROMOTE_MAX_LAG
        await _until(lagging, 30, "learner lagging")
        with pytest.raises(RequestError) as e:
            await replace(cell.addrs(), 0, mid)
        assert e.value.code == "ENOT_CAUGHT_UP"
        res = await remove_learner(cell.addrs(), no=0)
        assert res["removed"] is True and res["member_id"] == mid
        # when it hears the cell again it is told REMOVED and stops
        assert (await j.control({"t": "drop", "peer": -1, "dir": "in", "prob": 0.0}))["ok"]
        assert await j.exited() == 11, j.log()

        # 3. caught up, before REPLACE: the client library, compare-and-set on the version
        j = js[2]
        j.start()
        await asyncio.to_thread(j.ready)
        mid = await j.admitted()

        async def caught_up() -> bool:
            lag = await leader_lag(cell, mid)
            return lag is not None and lag <= PROMOTE_MAX_LAG
        await _until(caught_up, 30, "learner caught up")
        version = (await _config(cell))["version"]
        cl = CssClient(cell.addrs(), request_timeout=15)
        try:
            with pytest.raises(RequestError) as e:
                await cl.remove_learner(mid, expect_cfg=version - 1)
            assert e.value.code == "ECONFIG_CHANGED"
            res = await cl.remove_learner(mid, expect_cfg=version)
        finally:
            await cl.aclose()
        assert res == {"cfg": version + 1, "removed": True, "member_id": mid}
        assert await j.exited() == 11, j.log()

        # 4. a fresh learner replaces member 0; after REPLACE/FINALIZE abort is refused
        j = js[3]
        j.start()
        await asyncio.to_thread(j.ready)
        mid = await j.admitted()
        res = await _replace_when_caught_up(cell, 0, mid)
        assert res["cfg"] == version + 4  # add_learner, replace, finalize
        for args in (("remove-learner", mid), ("abort-join", "0")):
            rc, out, err = await _cli(cell, *args)
            assert rc == 1 and "ENOT_LEARNER" in err, (rc, out, err)
        await _until(lambda: _true(cell.procs[0].poll() is not None), 30, "old member 0 stops")
        assert cell.procs.pop(0).returncode == 11
        await progress(20)

    try:
        asyncio.run(w.run(faults))
        verify(w)
        cfg = asyncio.run(_config(cell))
        assert sorted(m["no"] for m in cfg["members"].values()) == [0, 1, 2]
        assert all(m["role"] == "voter" for m in cfg["members"].values())
        assert set(cfg["retired"]) >= {js[i].member_id for i in range(3)}
        assert len(cfg["retired"]) == 4  # three aborted learners and the replaced member 0
    finally:
        for j in js:
            j.close()


async def _true(v: bool) -> bool:
    return v


def test_dead_and_forged_learners_are_dropped_after_the_learner_timeout(cell,
                                                                        tmp_path) -> None:
    timeout = ["--learner-timeout", "3"]
    cell.extra = timeout
    cell.start_all(init=True)
    asyncio.run(cell.wait_leader())
    j1 = Joiner(cell, tmp_path, "127.0.0.4", extra=timeout)
    j2 = Joiner(cell, tmp_path, "127.0.0.5", extra=timeout)

    async def learners() -> dict[str, str]:
        cfg = await _config(cell)
        return {m["member_id"]: m["role"] for m in cfg["members"].values()}

    async def go() -> None:
        # a JOIN naming a member id that no process holds, signed with the cell secret (an
        # unsigned one is dropped: test_peer_auth), as a joiner that died at once would send
        forged = os.urandom(8).hex()
        with open(cell.key_path, "rb") as f:
            auth = Auth(f.read())
        join = auth.sign(pack({"t": "JOIN", "cno": 0, "member_id": forged, "udp": ["127.0.0.9", cell.base],
                     "tcp": ["127.0.0.9", cell.base + 100], "cell_id": cell.cell_id,
                     "no": -1, "from": forged}))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        try:
            async def admitted() -> bool:
                for h in cell.hosts:  # UDP: repeat until the leader took it
                    sock.sendto(join, (h, cell.base))
                return (await learners()).get(forged) == "learner"
            await _until(admitted, 20, "forged JOIN admitted", every=0.3)
        finally:
            sock.close()
        await _until(lambda: _retired(cell, forged), 30, "forged learner dropped")
        assert all(r == "voter" for r in (await learners()).values())

        # a real learner killed -9 after its admission is dropped the same way
        j1.start()
        await asyncio.to_thread(j1.ready)
        mid1 = await j1.admitted()
        j1.kill()
        await _until(lambda: _retired(cell, mid1), 30, "killed learner dropped")
        j1.start(join=False)  # its data directory: the retired identity may not come back
        assert await j1.exited() == 11, j1.log()

        # a live learner is kept past the timeout, then replaces member 0
        j2.start()
        await asyncio.to_thread(j2.ready)
        mid2 = await j2.admitted()
        kept_until = time.monotonic() + 3 + 2
        while time.monotonic() < kept_until:
            assert (await learners()).get(mid2) == "learner", "a live learner was dropped"
            await asyncio.sleep(0.3)
        await _replace_when_caught_up(cell, 0, mid2)
        async with CssClient([cell.tcp(1), cell.tcp(2), j2.addr], request_timeout=15) as cl:
            await cl.write("after/replace", b"ok")
            assert (await cl.read("after/replace"))["data"] == b"ok"
        cfg = await _config(cell)
        assert {forged, mid1} <= set(cfg["retired"])
        assert mid2 in {m["member_id"] for m in cfg["members"].values() if m["no"] == 0}

    try:
        asyncio.run(go())
        assert "learner dropped: timeout" not in j2.log()
    finally:
        j1.close()
        j2.close()


async def _retired(cell, member_id: str) -> bool:
    return member_id in (await _config(cell))["retired"]
