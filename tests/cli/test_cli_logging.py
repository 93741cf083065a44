"""Global -v / --debug FILE (§2.2) and the small input rules the spec leaves open."""

from __future__ import annotations

import re
from pathlib import Path

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
