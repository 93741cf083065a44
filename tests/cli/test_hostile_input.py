"""Hostile input typed by the operator (issue 7 items 6-9): the shell driven through stdin, the
one-shot console script, and the boundaries that must still be accepted.

Table-driven refusals of single one-shot commands live in test_cli_errors.py (REFUSED, USAGE);
the bounded fuzzer is test_fuzz_cli.py.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PAXOS, Paxos, etc_snapshot, git_head
from tests.inproc import InProc

MAX_ID = 2**63 - 2
MAX_INT = 2**63 - 1


def shell(px: Paxos, data: bytes, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """The shell reading `data` from a pipe (not a tty), stdout and stderr as text."""
    proc = subprocess.run([PAXOS], input=data, capture_output=True, timeout=timeout,
                          env={**px.env, **env})
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode("utf-8", "replace"),
                                       proc.stderr.decode("utf-8", "replace"))


def fsck(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", str(home / "var" / "paxoslog.git"), "fsck",
                           "--strict", "--no-progress"], capture_output=True, text=True,
                          timeout=60)


def assert_clean_stderr(stderr: str) -> None:
    """No traceback, and nothing that only an unexpected exception prints in cmd2."""
    for needle in ("Traceback", "To enable full traceback", "Error:"):
        assert needle not in stderr, stderr


class Unchanged:
    """Asserts the log head and $PAXOS_HOME/etc are the same after the block."""

    def __init__(self, px: Paxos) -> None:
        self.px = px

    def __enter__(self) -> Unchanged:
        self.head, self.etc = git_head(self.px.home), etc_snapshot(self.px.home)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert git_head(self.px.home) == self.head, "event appended"
            assert etc_snapshot(self.px.home) == self.etc, "etc changed"


# --- item 6: numbers --------------------------------------------------------------------------

def test_huge_id_is_refused_and_the_log_stays_readable(seeded_copy):
    px = seeded_copy
    with Unchanged(px):
        proc = px("register", "memcache", "-c", "css0", "--id", "18446744073709551615")
        assert (proc.returncode, proc.stderr) == (1, f"id should be {MAX_ID} or less\n")
        proc = px("register", "memcache", "-c", "css0", "-W", "9" * 24)
        assert (proc.returncode, proc.stderr) == (1, f"--worker should be {MAX_INT} or less\n")
    assert json.loads(px.ok("--json", "log", "-n", "1"))[0]["rev"] == 5
    assert json.loads(px.ok("--json", "verify"))[0]["status"] == "ok"


def test_largest_values_are_accepted_and_read_back(seeded_copy):
    px = seeded_copy
    px.ok("register", "memcache", "-c", "css0", "--id", str(MAX_ID), "-W", str(MAX_INT),
          "-I", str(MAX_INT), "-C", str(MAX_INT), "-E", str(MAX_INT))
    shown = json.loads(px.ok("--json", "show", "memcache", "-i", str(MAX_ID)))
    assert [(m["id"], m["worker"], m["expire interval"]) for m in shown] == [
        (MAX_ID, MAX_INT, MAX_INT)]
    # The id counter is now MAX_ID + 1: nothing is left to allocate, and it says so.
    with Unchanged(px):
        proc = px("register", "memcache", "-c", "css0")
        assert proc.returncode == 1
        assert proc.stderr == (f"no memcache id left to allocate (the counter is past {MAX_ID});"
                               " give a free id with --id\n")
    px.ok("register", "memcache", "-c", "css0", "--id", "7")  # a free id still works
    px.ok("undo")
    px.ok("revert", "5")  # a topology_restored event carries the counter
    assert json.loads(px.ok("--json", "log", "-n", "1"))[0]["rev"] == 9
    assert json.loads(px.ok("--json", "verify"))[0]["status"] == "ok"
    assert fsck(px.home).returncode == 0


def test_parse_int_stands_in_for_numbers_too_long_to_convert():
    from paxoslog.core.rules import parse_int

    assert parse_int("9" * 5000) == 10**19 > MAX_INT
    assert parse_int("-" + "9" * 5000) == -(10**19)
    assert parse_int("+" + "0" * 5000 + "42") == 42  # leading zeros are not significant
    assert parse_int(str(MAX_INT)) == MAX_INT
    assert parse_int("9" * 19) == 10**19 - 1


def test_decide_checks_every_range_before_an_event_exists():
    """The pure core refuses out-of-range values whatever the caller (not only the CLI)."""
    from paxoslog.core.decide import Command, decide
    from paxoslog.core.events import encode, fold
    from paxoslog.errors import Refused

    cell = ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.3:1"]
    t = fold(decide(fold([]), Command("register css", {"name": "c0", "endpoints": cell})))

    def refused(name: str, **opts: object) -> str:
        with pytest.raises(Refused) as exc:
            decide(t, Command(name, opts))
        return exc.value.message

    assert refused("register memcache", css="c0", id=2**64 - 1) == f"id should be {MAX_ID} or less"
    assert refused("register memcache", css="c0", worker=10**23) == (
        f"--worker should be {MAX_INT} or less")
    assert refused("register memcache", css="c0", checksum_interval=0) == (
        "--checksum-interval should be 1 or more")
    t = fold(decide(t, Command("register memcache", {"css": "c0", "id": MAX_ID,
                                                     "worker": MAX_INT})), t)
    assert refused("modify memcache", id=MAX_ID, expire_interval=MAX_INT + 1) == (
        f"--expire-interval should be {MAX_INT} or less")
    assert refused("register memcache", css="c0").startswith("no memcache id left")
    assert refused("register pair", id=MAX_ID, server_address="a..b") == "illegal host name"
    # what was accepted encodes: msgpack raised OverflowError on 2**64 after the log changed
    (event,) = decide(t, Command("modify memcache", {"id": MAX_ID, "max_cache_item": MAX_INT}))
    assert encode(event)


# --- item 7: odd input ------------------------------------------------------------------------

def test_shell_quoting_errors_are_one_line_each(seeded_copy):
    px = seeded_copy
    with Unchanged(px):
        proc = shell(px, b'register host "abc\nregister host abc\\\nshow host \'x\n'
                         b'help "register\n')
    assert proc.returncode == 1  # refused lines: a piped shell exits 1 (issue 12)
    assert_clean_stderr(proc.stderr)
    assert proc.stderr.splitlines() == [
        "paxos: error: cannot split the line: a quotation mark is not closed",
        "paxos: error: cannot split the line: the line ends with a backslash",
        "paxos: error: cannot split the line: a quotation mark is not closed",
        "paxos: error: cannot split the line: a quotation mark is not closed",
    ]


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_shell_line_that_is_not_utf8(seeded_copy, locale):
    px = seeded_copy
    with Unchanged(px):
        proc = shell(px, b"register host a\xffb\nshow host \xc3\nlist host\n",
                     LANG=locale, LC_ALL=locale)
    assert proc.returncode == 1  # refused lines: a piped shell exits 1 (issue 12), proc.stderr
    assert_clean_stderr(proc.stderr)
    assert proc.stderr.splitlines() == ["paxos: error: the line is not valid UTF-8"] * 2
    assert proc.stdout.split() == ["192.168.1.10", "192.168.1.11", "192.168.1.100",
                                   "192.168.1.101", "192.168.1.102"]  # the shell went on


def test_unresolvable_names_are_never_looked_up():
    """Rule (E) falls back to the literal name; the resolver's own errors (IDNA, NUL) are not
    resolution failures and used to escape as UnicodeError/TypeError."""
    from paxoslog.app.facts import _resolve

    for name in ("a..b", "a" * 64, "é" * 64, "a\x00b", "a\udcffb", "."):
        assert _resolve(name) == name
    assert _resolve("localhost") == "127.0.0.1"


def test_nul_in_an_address_in_process(tmp_path, seeded_template):
    """argv cannot hold a NUL; the in-process path (and the shell) can."""
    import shutil

    shutil.copytree(seeded_template, tmp_path / "h", symlinks=True)
    px = InProc(tmp_path / "h")
    before = px.head()[0]
    for words in (["register", "pair", "-i", "0", "-a", "a\x00b"],
                  ["unregister", "pair", "-i", "0", "-a", "a\x00b"],
                  ["register", "host", "\x00"]):
        code, out, err = px.run_list(words)
        assert (code, out) == (2, ""), (words, err)
        assert err.endswith("contains a control character (U+0000)\n"), err
    assert px.head()[0] == before


def test_debug_file_in_a_missing_directory(paxos, tmp_path):
    missing = str(tmp_path / "missing" / "debug.log")
    message = (f"paxos: error: argument --debug: can't open {missing!r}: "
               "No such file or directory\n")
    for args in (["--debug", missing, "list", "host"], ["--debug", missing]):
        proc = paxos(*args, input="register host a\n")
        assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message), args
    assert paxos.ok("list", "host") == ""
    assert git_head(paxos.home) is None


def test_history_edit_is_disabled(seeded_copy, tmp_path):
    px = seeded_copy
    marker = tmp_path / "edited"
    with Unchanged(px):
        proc = shell(px, f"list css\nhistory -e\nhistory -e 1\nhistory --edit\n"
                         f"set editor 'touch {marker}'\nhistory -e\n".encode(),
                     EDITOR=f"touch {marker}", VISUAL=f"touch {marker}")
    assert proc.returncode == 1  # refused lines: a piped shell exits 1 (issue 12)
    assert_clean_stderr(proc.stderr)
    lines = proc.stderr.splitlines()
    refusal = "ERROR: history -e is disabled in the paxos shell (it runs an editor)"
    assert lines == [refusal] * 3 + ["Parameter 'editor' not supported (type 'set' for list "
                                     "of parameters)."] + [refusal], lines
    assert not marker.exists()
    # `list css` ran once: the edited history never re-ran (the last newline is the shell's, at
    # the end of its input)
    assert proc.stdout == "css0\n\n"


# --- item 8: control characters ---------------------------------------------------------------

def test_control_characters_never_reach_the_log(seeded_copy):
    px = seeded_copy
    lines = [b"register host a\x00b", b"register host a\x01b", b"register host -g \x1b[31m h",
             b"register host a\x7fb", "register host a\x85b".encode(),
             b"register memcache -c css0 -N ns\x07", b"register host a\rb", b"\x04"]
    with Unchanged(px):
        proc = shell(px, b"\n".join(lines) + b"\n")
    assert proc.returncode == 1  # refused lines: a piped shell exits 1 (issue 12)
    assert_clean_stderr(proc.stderr)
    codes = ["0000", "0001", "001B", "007F", "0085", "0007", "000D", "0004"]
    assert proc.stderr.splitlines() == [
        f"paxos: error: the line contains a control character (U+{c})" for c in codes]
    assert px.log_count() == 5
    check = fsck(px.home)
    assert check.returncode == 0 and check.stderr == "", check.stderr


def test_tab_still_separates_words_in_the_shell(seeded_copy):
    px = seeded_copy
    proc = shell(px, b"register\thost\ttabbed\n")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert px.ok("list", "host").splitlines()[-1] == "tabbed"


# --- item 9: big input ------------------------------------------------------------------------

def test_big_shell_lines_are_refused_at_once(seeded_copy):
    px = seeded_copy
    data = (b"register host " + b"a" * (512 * 1024) + b"\n"
            + b"show host " + b"b" * (10 * 1024 * 1024) + b"\nlist css\n")
    start = time.monotonic()
    with Unchanged(px):
        proc = shell(px, data, timeout=60)  # the 10 MB line never finished before
    elapsed = time.monotonic() - start
    assert proc.returncode == 1  # refused lines: a piped shell exits 1 (issue 12)
    assert_clean_stderr(proc.stderr)
    assert proc.stderr.splitlines() == [
        "paxos: error: command too long: 524302 bytes (the limit is 65536)",
        "paxos: error: command too long: 10485770 bytes (the limit is 65536)",
    ]
    assert proc.stdout == "css0\n\n"
    assert elapsed < 30, elapsed  # was 14 s for the first line alone; now well under 1 s


def test_commands_just_under_the_limit_are_accepted(seeded_copy):
    px = seeded_copy
    name = "a." * 32700  # 65400 characters: a valid DNS-style name with 1-letter labels
    words = ["register", "host", name]
    assert len(" ".join(words)) < 65536
    px.ok(*words)
    assert px.ok("list", "host").splitlines()[-1] == name
    proc = shell(px, ("show host " + "b" * 65000 + "\n").encode())
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "\n", "")
    assert json.loads(px.ok("--json", "log", "-n", "1"))[0]["command"] == f"register host {name}"
    assert fsck(px.home).returncode == 0
