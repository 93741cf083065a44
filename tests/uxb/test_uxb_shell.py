"""Shell bugs of issue 12 part B: aliases and macros run the expanded command; a shell fed
from a pipe exits 1 when any command failed."""

from __future__ import annotations


def test_piped_shell_exits_1_after_a_refused_command(paxos):
    proc = paxos(input="register host a\nregister host a\nlist host\n")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.split() == ["a"]
    assert "ERROR: host already exists" in proc.stderr


def test_piped_shell_exits_1_after_a_usage_error(paxos):
    proc = paxos(input="show hots\nlist host\n")
    assert proc.returncode == 1, proc.stderr


def test_piped_shell_exits_0_when_all_succeed(paxos):
    proc = paxos(input="register host a\nlist host\n")
    assert proc.returncode == 0, proc.stderr


def test_alias_runs_the_expanded_command(seeded_copy):
    proc = seeded_copy(input="alias create lh list host\nlh\nlh -u nobody\n")
    assert proc.returncode == 0, proc.stderr
    assert "invalid choice" not in proc.stderr
    assert proc.stdout.count("192.168.1.10\n") == 1, proc.stdout
    assert proc.stdout.count("192.168.1.11\n") == 1, proc.stdout


def test_macro_runs_the_expanded_command_with_quoted_args(seeded_copy):
    proc = seeded_copy(input="macro create reg register host -g {1} {2}\n"
                             "reg 'g1:g2' newhost\nshow host newhost\n")
    assert proc.returncode == 0, proc.stderr
    assert 'hostname: "newhost"' in proc.stdout
    assert "group: [g1, g2]" in proc.stdout or "g1" in proc.stdout, proc.stdout
    # the commit message is the command that ran, not the macro's name
    assert "register host -g g1:g2 newhost" in seeded_copy.ok("log", "-n", "1")


def test_piped_shell_exits_1_after_a_failed_builtin(paxos):
    proc = paxos(input="alias delete nosuchalias\n")
    assert proc.returncode == 1, proc.stderr
    proc = paxos(input="help nosuchverb\n")
    assert proc.returncode == 1, proc.stderr
