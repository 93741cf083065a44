import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from agent_env import AgentCell  # noqa: E402


@pytest.fixture
def acell(tmp_path):
    c = AgentCell(str(tmp_path))
    try:
        yield c
    finally:
        c.close()
