"""Fixtures of the proxy tests: real memcached, real CSS cells, real proxies; always stopped."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "css"))

from css_cell import Cell  # noqa: E402
from mc_procs import Memcached, ProxyProc  # noqa: E402


@pytest.fixture
def memcached():
    started: list[Memcached] = []

    def make(**kw) -> Memcached:
        m = Memcached(**kw).start()
        started.append(m)
        return m

    try:
        yield make
    finally:
        for m in started:
            m.kill()


@pytest.fixture
def cell(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PAXOS_CELL_CONFIG", raising=False)
    c = Cell(str(tmp_path))
    try:
        c.start_all(init=True)
        asyncio.run(c.wait_leader())
        yield c
    finally:
        c.close()


@pytest.fixture
def proxies(cell):
    made: list[ProxyProc] = []

    def make(backend_port: int, pid: int | None = None, start: bool = True,
             **kw) -> ProxyProc:
        p = ProxyProc(cell.home, len(made) if pid is None else pid, cell.name, backend_port,
                      **kw)
        made.append(p)
        return p.start() if start else p

    try:
        yield make
    finally:
        for p in made:
            p.kill()


class Env:
    """One CSS cell, one memcached, one proxy in front of it (shared by a test module)."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.cell = Cell(home)
        self.mc = Memcached()
        self.proxies: list[ProxyProc] = []

    def start(self) -> Env:
        self.cell.start_all(init=True)
        asyncio.run(self.cell.wait_leader())
        self.mc.start()
        self.proxy = self.add_proxy()
        return self

    def add_proxy(self, **kw) -> ProxyProc:
        p = ProxyProc(self.home, len(self.proxies) + 1, self.cell.name, self.mc.port, **kw)
        self.proxies.append(p)
        return p.start()

    def close(self) -> None:
        for p in self.proxies:
            p.kill()
        self.mc.kill()
        self.cell.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = str(tmp_path_factory.mktemp("mcenv"))
    old = os.environ.get("HOME")
    os.environ["HOME"] = home
    e = Env(home)
    try:
        yield e.start()
    finally:
        e.close()
        if old is not None:
            os.environ["HOME"] = old


@pytest.fixture
def fenv(tmp_path, monkeypatch):
    """A fresh cell, memcached and proxy for one fault test."""
    monkeypatch.setenv("HOME", str(tmp_path))
    e = Env(str(tmp_path))
    try:
        yield e.start()
    finally:
        e.close()
