"""Pager and colour (issue 12 item 4): on a terminal (a tmux pty) long `log`/`diff` output goes
through the pager and diff lines and statuses are coloured; piped, or with NO_COLOR, the
output is plain and no pager runs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Paxos
from tests.tmuxpane import TmuxPane


class Pty(TmuxPane):
    """One command with the pane read with its escape codes; NO_COLOR and PAGER unset."""

    def __init__(self, px: Paxos, tmp: Path, args: list[str], env: dict[str, str],
                 height: int = 50) -> None:
        super().__init__(px, tmp, args, env=env, unset=("NO_COLOR", "PAGER"), width=150,
                         height=height, capture=("-e",), linger=60)


def _many_commits(px: Paxos, n: int) -> None:
    # one shell session: n commands, one process
    px(input="".join(f"register host h{i}.example\n" for i in range(n)), check=True)


def test_long_log_goes_through_less_on_a_terminal(paxos, tmp_path):
    _many_commits(paxos, 30)
    t = Pty(paxos, tmp_path, ["log"], {}, height=20)
    try:
        # less -FRX holds the first screen and waits (the default pager, PAGER unset)
        t.wait(lambda s: s.strip() != "" and s.rstrip().splitlines()[-1].startswith(":"),
               what="the less prompt")
        assert not t.exit_file.exists()
        t.tmux("send-keys", "-t", "t", "q")
        assert t.exit_code() == 0
    finally:
        t.close()


def test_pager_command_runs_only_on_a_terminal(paxos, tmp_path):
    _many_commits(paxos, 3)
    marker = tmp_path / "paged"
    pager = f"sh -c 'echo used > {marker}; cat'"
    t = Pty(paxos, tmp_path, ["log", "--oneline"], {"PAGER": pager})
    try:
        assert t.exit_code() == 0
        assert marker.read_text() == "used\n"
        assert "register host h2.example" in t.screen()
    finally:
        t.close()
    marker.unlink()
    paxos.env["PAGER"] = pager
    proc = paxos("log", "--oneline")
    assert proc.returncode == 0 and "register host h2.example" in proc.stdout
    assert not marker.exists()  # piped: no pager


def test_diff_and_status_colour_on_a_terminal_only(paxos, tmp_path):
    _many_commits(paxos, 2)
    t = Pty(paxos, tmp_path, ["diff", "0"], {"PAGER": "cat"})
    try:
        assert t.exit_code() == 0
        screen = t.screen()
        # tmux repeats no attribute that is already on: one code per run of lines
        assert "\x1b[32m+version: 1" in screen, repr(screen)  # added lines green
        assert "\x1b[1m--- /dev/null\n+++ b/etc/paxos_memcache.conf" in screen, repr(screen)
    finally:
        t.close()
    t = Pty(paxos, tmp_path, ["diff", "0"], {"PAGER": "cat", "NO_COLOR": "1"})
    try:
        assert t.exit_code() == 0
        screen = t.screen()
        assert "+++ b/etc/paxos_memcache.conf" in screen and "\x1b[" not in screen, repr(screen)
    finally:
        t.close()
    proc = paxos("diff", "0")
    assert proc.returncode == 0 and "+++ b/etc/paxos_memcache.conf" in proc.stdout
    assert "\x1b[" not in proc.stdout


def test_table_statuses_coloured_on_a_terminal():
    from paxoslog.cli import colour
    from paxoslog.cli.table import render_table

    rows = [{"hostname": "a", "status": "current"}, {"hostname": "bb", "status": "error"}]
    out = render_table(rows, styles={"status": colour.status})
    lines = out.splitlines()
    assert lines[1] == "a         \x1b[32mcurrent\x1b[0m"
    assert lines[2] == "bb        \x1b[31merror\x1b[0m"
    assert render_table(rows).splitlines()[1] == "a         current"
