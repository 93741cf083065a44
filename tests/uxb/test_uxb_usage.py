"""Usage errors of one-shot mode (issue 12 part B, item 6): printed once, by the parser of the
command the error is in, with a suggestion for a near miss."""

from __future__ import annotations


def test_bad_global_option_value_prints_one_usage(paxos):
    proc = paxos("-o", "xml", "show", "host")
    assert proc.returncode == 2
    assert proc.stderr.count("usage:") == 1, proc.stderr
    assert proc.stderr.count("error:") == 1, proc.stderr
    assert proc.stdout == ""


def test_unknown_global_option_is_named(paxos):
    proc = paxos("--foo", "show", "host")
    assert proc.returncode == 2
    assert "choose from )" not in proc.stderr, proc.stderr
    assert "unrecognized arguments: --foo" in proc.stderr, proc.stderr
    assert proc.stderr.count("usage:") == 1


def test_unknown_option_after_object_gets_that_objects_usage(paxos):
    proc = paxos("show", "host", "--usr", "x")
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: paxos show host "), proc.stderr
    assert "paxos show host: error: unrecognized arguments: --usr" in proc.stderr
    assert "did you mean '--user'?" in proc.stderr


def test_did_you_mean_verb_and_object(paxos):
    proc = paxos("shwo", "host")
    assert proc.returncode == 2
    assert "invalid choice: 'shwo'" in proc.stderr
    assert "did you mean 'show'?" in proc.stderr
    proc = paxos("show", "hots")
    assert proc.returncode == 2
    assert "did you mean 'host'?" in proc.stderr, proc.stderr
    # nothing near: no suggestion
    proc = paxos("show", "zzzzzz")
    assert "did you mean" not in proc.stderr


def test_one_shot_help_verb_object(paxos):
    out = paxos.ok("help", "show", "host")
    assert out.startswith("usage: paxos show host")
    assert "example:" in out.lower()
    assert paxos.ok("help").startswith("usage: paxos")
    proc = paxos("help", "show", "nothing")
    assert proc.returncode == 2
    assert "no help on 'show nothing'" in proc.stderr
