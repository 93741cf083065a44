"""Global -v / --debug FILE (§2.2) and the small input rules the spec leaves open."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Paxos


def test_verbose_and_debug_file(paxos: Paxos, tmp_path: Path) -> None:
    debug = tmp_path / "debug.log"
    proc = paxos("-v", "--debug", str(debug), "register", "host", "h1")
    assert proc.returncode == 0
    assert re.search(r"^INFO: appended rev 1 \([0-9a-f]{12}\) host_registered: register host h1$",
                     proc.stderr, re.M)
    line = [x for x in debug.read_text().splitlines() if "appended rev 1" in x][0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO:session\.py:\d+: appended rev 1 ", line)
    # default level is WARNING: nothing but the report
    proc = paxos("register", "host", "h2")
    assert proc.returncode == 0 and proc.stderr == ""


_LOG_BOTH = """
import logging, sys
from paxoslog.cli.main import configure_logging
import paxoslog.remote.paramikoload
configure_logging(int(sys.argv[1]), None)
logging.getLogger("paramiko.transport").error("Exception (client): Error reading SSH banner")
logging.getLogger("paxoslog.remote.ssh").info("ours")
"""


@pytest.mark.parametrize("verbose,want", [
    (0, []),
    (1, ["INFO: ours"]),
    (2, ["ERROR: Exception (client): Error reading SSH banner", "INFO: ours"]),
])
def test_paramiko_records_reach_the_terminal_only_at_vv(verbose: int, want: list[str]) -> None:
    """paramiko's transport thread logs a lost connection with a traceback at ERROR; it used
    to reach the terminal through Python's last-resort handler, and at -v through ours."""
    r = subprocess.run([sys.executable, "-c", _LOG_BOTH, str(verbose)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == want


def test_empty_user_is_refused(paxos: Paxos) -> None:
    for args in (["register", "host", "-u", "", "h"], ["register", "host", "-u", "a b", "h"]):
        proc = paxos(*args)
        assert (proc.returncode, proc.stderr.strip()) == (1, "illegal user name")
    paxos.ok("register", "host", "h")
    proc = paxos("modify", "host", "-u", "", "h")
    assert (proc.returncode, proc.stderr.strip()) == (1, "illegal user name")


def test_negative_max_count_is_a_usage_error(paxos: Paxos) -> None:
    proc = paxos("log", "-n", "-1")
    assert proc.returncode == 2 and "error: argument -n/--max-count" in proc.stderr
