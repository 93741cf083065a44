"""Fixtures of the admin's memcache runtime tests: a real CSS cell, real memcached, real
proxies started by the admin through its own agent; all stopped at the end."""

from __future__ import annotations

import pytest

from tests.mcadmin.mcadmin_world import World


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    try:
        yield w.start()
    finally:
        w.close()
