"""The agent's start-up cost (issue 9 speed): `status css` runs once per member and admin
command, so its path imports only what it needs, and the control socket exchange (a plain
blocking socket, not asyncio) keeps one deadline for the whole exchange."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import msgpack
import pytest
from test_agent_hostile import _fake_member, _frame, serve_control

from nodes.agent import probe
from nodes.agent.errors import Failed, TimedOut

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAVY = ("asyncio", "dataclasses", "subprocess", "concurrent.futures", "nodes.agent.log")
REPLY = _frame({"v": 1, "t": "reply", "ok": True,
                "res": {"role": "leader", "leader": 0, "next_seq": 5, "commit": 4}})


def _status_in_fresh_process(home: str) -> tuple[dict, list[str]]:
    code = ("import json, sys\n"
            "from nodes.agent import main\n"
            f"rc = main.main(['--home', {home!r}, 'status', 'css', 'cell0'])\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    doc_line, heavy_line = p.stdout.strip().splitlines()
    return json.loads(doc_line), json.loads(heavy_line)


def test_status_css_imports_only_what_it_needs(acell):
    home = acell.homes[0]
    fd, srv = _fake_member(home, [REPLY])
    try:
        doc, heavy = _status_in_fresh_process(home)
    finally:
        srv.close()
        os.close(fd)
    (entry,) = doc["result"]["members"]
    assert entry["status"] == "running" and entry["master"] is True, entry
    assert entry["next_sequence"] == 5
    assert heavy == []


def test_control_reply_in_many_pieces(tmp_path):
    path = str(tmp_path / "c.sock")

    def drip(conn: socket.socket) -> None:
        for i in range(len(REPLY)):
            conn.sendall(REPLY[i:i + 1])
    srv = serve_control(path, [drip])
    try:
        res = probe.control(path, {"t": "status"}, 10.0)
    finally:
        srv.close()
    assert res["role"] == "leader" and res["next_seq"] == 5


def test_control_deadline_is_for_the_whole_exchange(tmp_path):
    """A member that keeps sending a byte now and then never resets the deadline."""
    path = str(tmp_path / "c.sock")
    body = msgpack.packb({"v": 1, "t": "reply", "ok": True, "res": {"x": "y" * 100}})
    raw = struct.pack(">I", len(body)) + body
    stop = threading.Event()

    def slow(conn: socket.socket) -> None:
        for b in raw:
            if stop.wait(0.2):
                return
            conn.sendall(bytes([b]))
    srv = serve_control(path, [slow])
    start = time.monotonic()
    try:
        with pytest.raises(TimedOut, match="no answer within 1 s"):
            probe.control(path, {"t": "status"}, 1.0)
    finally:
        stop.set()
        srv.close()
    assert time.monotonic() - start < 5.0


def test_control_oversized_frame_is_refused_before_reading_it(tmp_path):
    path = str(tmp_path / "c.sock")
    srv = serve_control(path, [lambda conn: conn.sendall(struct.pack(">I", (1 << 20) + 1))])
    try:
        with pytest.raises(Failed, match="EFRAME"):
            probe.control(path, {"t": "status"}, 5.0)
    finally:
        srv.close()
