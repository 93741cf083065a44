"""Fixtures of the CSS tests: real cells on loopback, always torn down."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from css_cell import Cell, Firewall  # noqa: E402


@pytest.fixture
def cell(tmp_path, monkeypatch):
    # the probe and the tools resolve ~/etc, ~/data and ~/run like the agent does
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PAXOS_CELL_CONFIG", raising=False)
    c = Cell(str(tmp_path))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def running_cell(cell):
    cell.start_all(init=True)
    asyncio.run(cell.wait_leader())
    return cell


@pytest.fixture
def firewall():
    fw = Firewall()
    try:
        yield fw
    finally:
        fw.close()


@pytest.fixture
def far_cell(tmp_path, monkeypatch):
    """A cell on 127.0.0.11-13, so that the clients (source 127.0.0.1) are never cut off."""
    monkeypatch.setenv("HOME", str(tmp_path))
    c = Cell(str(tmp_path), hosts=("127.0.0.11", "127.0.0.12", "127.0.0.13"))
    try:
        c.start_all(init=True)
        asyncio.run(c.wait_leader())
        yield c
    finally:
        c.close()
