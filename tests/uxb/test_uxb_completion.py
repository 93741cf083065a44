"""`paxos completion bash|zsh` and the man page, both generated from the grammar (issue 12,
item 5); the bash script is exercised by a real interactive bash in a tmux pty."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tmux(socket: str, *args: str) -> str:
    proc = subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, (args, proc.stderr)
    return proc.stdout


def _wait_line(socket: str, want: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = _tmux(socket, "capture-pane", "-p", "-J", "-t", "t")
        lines = [x.rstrip() for x in screen.splitlines() if x.strip()]
        if lines and lines[-1] == want:
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {want!r}; screen:\n{screen}")
        time.sleep(0.05)


def test_bash_completes_sh_tab_h_tab(paxos, tmp_path):
    script = tmp_path / "paxos.bash"
    script.write_text(paxos.ok("completion", "bash"))
    rc = tmp_path / "rc"
    rc.write_text(f"PS1='$ '\nsource {shlex.quote(str(script))}\n")
    socket = f"uxb-compl-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    _tmux(socket, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "120", "-y", "40",
          "env", "TERM=screen", "bash", "--noprofile", "--rcfile", str(rc), "-i")
    try:
        _wait_line(socket, "$")
        _tmux(socket, "send-keys", "-t", "t", "-l", "paxos sh")
        _tmux(socket, "send-keys", "-t", "t", "Tab")
        _wait_line(socket, "$ paxos show")
        _tmux(socket, "send-keys", "-t", "t", "-l", "h")
        _tmux(socket, "send-keys", "-t", "t", "Tab")
        _wait_line(socket, "$ paxos show host")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)


def test_zsh_script_and_bad_shell(paxos):
    out = paxos.ok("completion", "zsh")
    assert out.startswith("#compdef paxos")
    assert "register" in out and "--max-cache-item" in out
    proc = paxos("completion", "fish")
    assert proc.returncode == 2 and "bash or zsh" in proc.stderr and proc.stdout == ""


def test_completion_does_not_slow_ordinary_commands(paxos):
    # shtab and argparse-manpage are imported only by the meta commands
    code = ("import sys; from paxoslog.cli.main import main; main(['list', 'host']); "
            "bad = [m for m in ('shtab', 'argparse_manpage', 'cmd2', 'paramiko') "
            "if m in sys.modules]; sys.stderr.write(repr(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=paxos.env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "[]"


def test_man_page_is_current_and_installed_with_the_package(paxos):
    page = paxos.ok("man")
    assert page.startswith('.TH PAXOS "1"')
    assert "\\fBshow host\\fR" in page and ".SH REVISIONS" in page
    # regenerate with: paxos man > docs/man/paxos.1
    assert (ROOT / "docs" / "man" / "paxos.1").read_text() == page
    assert '"share/man/man1" = ["docs/man/paxos.1"]' in (ROOT / "pyproject.toml").read_text()


def test_help_verbs_are_listed_by_bare_paxos_help(paxos):
    out = paxos.ok("help")
    for word in ("completion", "register", "status"):
        assert word in out
