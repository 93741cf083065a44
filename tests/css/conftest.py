"""Fixtures of the CSS tests: real cells on loopback, always torn down."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from css_cell import Cell  # noqa: E402


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
