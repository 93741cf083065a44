"""The interactive shell (admin.md §2.1, A1), driven like a person would, in a real tmux pty."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml

from tests.conftest import Paxos
from tests.tmuxpane import TmuxPane

PROMPT = "(paxos) "


def is_prompt(line: str) -> bool:
    # capture-pane drops trailing spaces: an empty prompt reads "(paxos)"
    line = line.rstrip()
    return line == PROMPT.rstrip() or line.startswith(PROMPT)


class Term(TmuxPane):
    """One `paxos` shell in a private tmux server, typed into like a person would."""

    def wait_for(self, needle: str, timeout: float = 10.0) -> str:
        return self.wait(lambda s: needle in s, timeout, needle)

    def prompt_count(self) -> int:
        return sum(1 for line in self.screen().splitlines() if is_prompt(line))

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)

    def settle(self, quiet: float = 0.15, timeout: float = 10.0) -> str:
        """Wait until the screen has not changed for `quiet` seconds (the prompt is ready)."""
        deadline = time.monotonic() + timeout
        last, since = self.screen(), time.monotonic()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never settled:\n{last}")
            time.sleep(0.03)
            now = self.screen()
            if now != last:
                last, since = now, time.monotonic()
        return last

    def run(self, line: str, timeout: float = 10.0) -> str:
        """Type a line, press Enter, wait for the next prompt; return the output in between."""
        self.settle()
        before = self.prompt_count()
        self.type(line)
        self.wait(lambda s: self.last_line(s) == (PROMPT + line).rstrip(), timeout,
                  f"typed {line!r}")
        self.keys("Enter")
        screen = self.wait(
            lambda s: sum(1 for x in s.splitlines() if is_prompt(x)) > before
            and self.last_line(s) == PROMPT.rstrip(),
            timeout, f"prompt after {line!r}")
        lines = screen.splitlines()
        starts = [i for i, x in enumerate(lines) if is_prompt(x)]
        cmd_at = starts[before - 1]
        assert lines[cmd_at].rstrip() == (PROMPT + line).rstrip(), (line, screen)
        out = lines[cmd_at + 1:starts[before]]
        return "".join(x + "\n" for x in out)

    @staticmethod
    def last_line(screen: str) -> str:
        lines = [x for x in screen.splitlines() if x.strip()]
        return lines[-1].rstrip() if lines else ""

    def current_line(self) -> str:
        return self.last_line(self.screen())


@pytest.fixture
def term(tmp_path):
    assert shutil.which("tmux"), "tmux is required for the shell tests"
    terms: list[Term] = []

    def start(px: Paxos, *args: str) -> Term:
        t = Term(px, tmp_path, args)
        terms.append(t)
        t.wait(lambda s: s.rstrip().endswith(PROMPT.rstrip()), 15, "first prompt")
        return t

    try:
        yield start
    finally:
        for t in terms:
            t.close()


def test_session_register_show_undo(paxos, term):
    t = term(paxos)
    assert t.run("register host 192.168.1.10") == ""
    out = t.run("show host")
    assert out == '---\nhostname: "192.168.1.10"\nuser: "paxos"\n'
    out = t.run("undo")
    assert yaml.safe_load(out) == {"rev": 2, "undone": 1, "command": "register host 192.168.1.10"}
    assert "undone: 1" in out
    assert t.run("show host") == ""
    assert t.run("") == ""  # an empty line is ignored
    # a refused command: ERROR: line, shell continues
    t.run("register host 192.168.1.11")
    out = t.run("register host 192.168.1.11")
    assert out.strip() == "ERROR: host already exists"
    out = t.run("unregister css -n nosuch")
    assert out.strip() == "ERROR: not found: nosuch"
    # a usage error: usage and error:, shell continues
    out = t.run("register host -p xxx h")
    assert "usage:" in out
    assert "error: argument -p/--port: invalid int value: 'xxx'" in out
    out = t.run("frobnicate host")
    assert "error:" in out
    # cmd2's quoting: one word with a space
    t.run("register host -g 'a b:c' h3")
    assert yaml.safe_load(t.run("show host h3")) == {
        "hostname": "h3", "user": "paxos", "group": ["a b", "c"]}
    t.keys("C-d")
    assert t.exit_code() == 0
    # the commands went to the event log with the line as typed
    log = list(yaml.safe_load_all(paxos.ok("log", "--reverse")))
    assert [e["command"] for e in log] == [
        "register host 192.168.1.10", "undo", "register host 192.168.1.11",
        "register host -g 'a b:c' h3"]


def test_quit_exits_0(paxos, term):
    t = term(paxos)
    t.type("quit")
    t.keys("Enter")
    assert t.exit_code() == 0


def test_upper_case_quit_exits_0(paxos, term):
    t = term(paxos)
    t.run("list host")
    t.type("QUIT")
    t.keys("Enter")
    assert t.exit_code() == 0


def test_ctrl_d_exits_0_after_a_failure(paxos, term):
    t = term(paxos)
    assert t.run("unregister host nosuch").strip() == "ERROR: not found: nosuch"
    assert "error:" in t.run("register")
    t.keys("C-d")
    assert t.exit_code() == 0


def test_global_options_apply_to_shell(seeded_copy, term):
    t = term(seeded_copy, "--json")

    assert json.loads(t.run("show host 192.168.1.10")) == [
        {"hostname": "192.168.1.10", "user": "paxos"}]
    assert json.loads(t.run("list memcache")) == [0]
    t.type("quit")
    t.keys("Enter")
    assert t.exit_code() == 0


def test_ctrl_c_discards_the_line(paxos, term):
    t = term(paxos)
    t.settle()
    t.type("register host discarded")
    t.wait(lambda s: t.last_line(s) == PROMPT + "register host discarded", 10, "typed")
    t.keys("C-c")
    t.wait(lambda s: t.last_line(s) == PROMPT.rstrip(), 10, "fresh prompt")
    assert t.run("list host") == ""
    t.keys("C-d")
    assert t.exit_code() == 0
    assert paxos.log_count() == 0


def test_help(paxos, term):
    t = term(paxos)
    out = t.run("help")
    for verb in ("register", "unregister", "modify", "show", "list", "log", "diff", "undo",
                 "revert", "verify"):
        assert verb in out, verb
    out = t.run("help register")
    assert "host" in out and "memcache" in out
    out = t.run("help register host")
    assert "usage:" in out
    assert "--port" in out and "--use-ssh-config" in out and "hostname" in out
    out = t.run("help register memcache")
    assert "--max-cache-item" in out and "--css" in out
    t.keys("C-d")
    assert t.exit_code() == 0


def test_arbitrary_code_builtins_disabled(paxos, term, tmp_path):
    t = term(paxos)
    marker = tmp_path / "pwned"
    for line in (f"shell touch {marker}", f"py open({str(marker)!r}, 'w')",
                 "ipy", f"run_pyscript {marker}", "edit", f"!touch {marker}"):
        out = t.run(line)
        assert "Traceback" not in out, (line, out)
        assert out.strip(), line  # refused visibly
        assert not marker.exists(), line
    # nor through the history editor (issue 7), whatever EDITOR says
    out = t.run("history -e")
    assert out.strip() == "ERROR: history -e is disabled in the paxos shell (it runs an editor)"
    # nor through an alias or a macro
    t.run(f"alias create sneaky shell touch {marker}")
    t.run("sneaky")
    t.run(f"macro create sneaky2 shell touch {marker}")
    t.run("sneaky2")
    assert not marker.exists()
    help_text = t.run("help -v") + t.run("help")
    words = {w.strip(",.") for line in help_text.splitlines() for w in line.split()
             if not line.startswith("shell commands:")}
    for name in ("shell", "py", "ipy", "run_pyscript", "edit"):
        assert name not in words, (name, help_text)
    t.keys("C-d")
    assert t.exit_code() == 0


def prompt_line(screen: str) -> str:
    lines = [x.rstrip() for x in screen.splitlines() if is_prompt(x)]
    return lines[-1] if lines else ""


def menu(screen: str) -> list[str]:
    """The completion menu: the words on the lines below the last prompt line."""
    lines = screen.rstrip().splitlines()
    at = max(i for i, x in enumerate(lines) if is_prompt(x))
    return [w for x in lines[at + 1:] for w in x.split()]


def test_tab_completion(seeded_copy, term):
    px = seeded_copy
    px.ok("register", "css", "-n", "beta", *[f"127.0.0.{n}:1" for n in (1, 1, 2, 2, 3, 3)])
    px.ok("register", "css", "-n", "cssB", *[f"127.0.0.{n}:2" for n in (1, 1, 2, 2, 3, 3)])
    t = term(px)
    t.settle()

    def complete(text: str, line: str, candidates: list[str] | None = None) -> None:
        t.type(text)
        t.keys("Tab")
        screen = t.wait(lambda s: prompt_line(s) == PROMPT + line
                        and (candidates is None or menu(s) == candidates), 10, line)
        if candidates is None:
            assert menu(screen) == [], screen
        t.keys("C-a", "C-k")
        t.wait(lambda s: t.last_line(s) == PROMPT.rstrip(), 10, "cleared line")

    complete("reg", "register")
    complete("register ho", "register host")
    complete("unregister host 192.168.1.1", "unregister host 192.168.1.1",
             ["192.168.1.10", "192.168.1.100", "192.168.1.101", "192.168.1.102", "192.168.1.11"])
    complete("unregister host 192.168.1.11", "unregister host 192.168.1.11")
    complete("unregister host 192.168.1.10", "unregister host 192.168.1.10",
             ["192.168.1.10", "192.168.1.100", "192.168.1.101", "192.168.1.102"])
    complete("unregister host 192.168.1.102", "unregister host 192.168.1.102")
    complete("show css -n c", "show css -n css", ["css0", "cssB"])
    complete("show css -n b", "show css -n beta")
    complete("show css -n cssB", "show css -n cssB")
    complete("unregister css --name cs", "unregister css --name css", ["css0", "cssB"])
    complete("register memcache -c b", "register memcache -c beta")
    complete("register memcache --wor", "register memcache --worker")
    complete("unregister memcache -i ", "unregister memcache -i 0")
    complete("modify host --use", "modify host --use", ["--use-ssh-config", "--user"])
    complete("unreg", "unregister")
    # the completed line runs
    t.type("unregister host 192.168.1.1")
    t.keys("1", "Tab")
    t.wait(lambda s: prompt_line(s) == PROMPT + "unregister host 192.168.1.11", 10, "completed")
    t.settle()
    t.keys("Enter")
    t.wait(lambda s: t.last_line(s) == PROMPT.rstrip(), 10, "next prompt")
    t.keys("C-d")
    assert t.exit_code() == 0
    assert "192.168.1.11" not in px.ok("list", "host").splitlines()


def test_history_persists(paxos, term):
    history = paxos.home / ".paxos_history"
    t = term(paxos)
    t.run("register host hist-one")
    t.run("list host")
    t.keys("C-d")
    assert t.exit_code() == 0
    assert history.exists()
    t2 = term(paxos)
    # up-arrow recalls the previous session's lines (newest first)
    t2.settle()
    t2.keys("Up")
    t2.wait(lambda s: t2.current_line() == PROMPT + "list host", 10, "list host recall")
    t2.keys("Up")
    t2.wait(lambda s: t2.current_line() == PROMPT + "register host hist-one", 10, "recall")
    t2.keys("C-a", "C-k")
    t2.wait(lambda s: t2.current_line() == PROMPT.rstrip(), 10, "cleared line")
    out = t2.run("history -a")  # cmd2's history, persisted entries included
    assert "register host hist-one" in out and "list host" in out
    assert out.index("register host hist-one") < out.index("list host")
    t2.keys("C-d")
    assert t2.exit_code() == 0


def test_piped_stdin(seeded_copy):
    px = seeded_copy
    proc = px(input="register host a\nshow host a\n\nregister host a\nregister host -p x b\n"
                    "show memcache\n")
    assert proc.returncode == 1, proc.stderr  # a command failed (issue 12)
    assert '---\nhostname: "a"\nuser: "paxos"\n' in proc.stdout
    assert '    - ["127.0.0.1", 11211, "192.168.1.200", 11211]\n' in proc.stdout
    assert "ERROR: host already exists" in proc.stderr
    assert "error: argument -p/--port: invalid int value: 'x'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert px.ok("list", "host").splitlines()[-1] == "a"
    assert px.log_count() == 6


def test_piped_stdin_quit_stops_reading(paxos):
    proc = paxos(input="register host a\nquit\nregister host b\n")
    assert proc.returncode == 0, proc.stderr
    assert paxos.ok("list", "host") == "a\n"
    proc = paxos(input="")
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr
