"""`-o table` for show/list/log, and log's --author, --since, --oneline and -p (issue 12
item 4), through the console script with piped output."""

from __future__ import annotations

import json

import yaml


def _columns(line: str, header: str) -> list[str]:
    """Split a table line at the header's column starts."""
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]


def test_show_host_table(seeded_copy):
    px = seeded_copy
    px.ok("modify", "host", "-g", "web:db", "-p", "2222", "192.168.1.11")
    out = px.ok("-o", "table", "show", "host")
    lines = out.splitlines()
    assert lines[0].split() == ["HOSTNAME", "USER", "PORT", "GROUP", "USE_SSH_CONFIG"]
    rows = {r[0]: r for r in (_columns(x, lines[0]) for x in lines[1:])}
    assert rows["192.168.1.10"] == ["192.168.1.10", "paxos", "-", "-", "no"]
    assert rows["192.168.1.11"] == ["192.168.1.11", "paxos", "2222", "db,web", "no"] or \
        rows["192.168.1.11"] == ["192.168.1.11", "paxos", "2222", "web,db", "no"]
    assert len(rows) == 5
    # after the object too, and the same rows as the YAML report
    assert px.ok("show", "host", "-o", "table") == out
    assert len(list(yaml.safe_load_all(px.ok("show", "host")))) == 5


def test_show_css_and_memcache_tables(seeded_copy):
    px = seeded_copy
    lines = px.ok("-o", "table", "show", "css").splitlines()
    assert lines[0].split() == ["NAME", "NO", "UDP", "TCP"]
    assert _columns(lines[3], lines[0]) == ["css0", "2", "192.168.1.102:24111",
                                            "192.168.1.102:24111"]
    lines = px.ok("-o", "table", "show", "memcache").splitlines()
    assert lines[0].split() == ["ID", "CSS", "NAME_SPACE", "PAIR"]
    assert _columns(lines[1], lines[0]) == ["0", "css0", "space0",
                                            "127.0.0.1:11211>192.168.1.200:11211"]


def test_list_table_and_empty(seeded_copy, paxos):
    assert seeded_copy.ok("-o", "table", "list", "css") == "NAME\ncss0\n"
    assert seeded_copy.ok("-o", "table", "list", "memcache") == "ID\n0\n"
    assert paxos.ok("-o", "table", "list", "host") == "HOSTNAME\n"
    assert paxos.ok("-o", "table", "show", "host").split() == [
        "HOSTNAME", "USER", "PORT", "GROUP", "USE_SSH_CONFIG"]


def test_log_table_and_oneline(seeded_copy):
    px = seeded_copy
    lines = px.ok("-o", "table", "log", "-n", "2").splitlines()
    assert lines[0].split() == ["REV", "COMMIT", "TIME", "AUTHOR", "COMMAND"]
    assert lines[1].startswith("5    ") and lines[1].endswith(
        "register pair --id 0 --server-address 192.168.1.200")
    docs = json.loads(px.ok("--json", "log"))
    assert px.ok("log", "--oneline", "-n", "2", "--reverse").splitlines() == [
        f"4 {docs[1]['commit'][:12]} register memcache --css css0",
        f"5 {docs[0]['commit'][:12]} register pair --id 0 --server-address 192.168.1.200"]


def test_log_author_and_since(seeded_copy):
    px = seeded_copy
    px.env["PAXOS_AUTHOR"] = "Alice Admin <alice@example.invalid>"
    px.ok("register", "host", "alice-host")
    docs = json.loads(px.ok("--json", "log", "--author", "ALICE"))
    assert [d["command"] for d in docs] == ["register host alice-host"]
    assert len(json.loads(px.ok("--json", "log", "--author", "operator"))) == 5
    assert len(json.loads(px.ok("--json", "log", "--author", "operator", "-n", "2"))) == 2
    assert px.ok("log", "--author", "nobody") == ""
    assert len(json.loads(px.ok("--json", "log", "--since", "2000-01-01"))) == 6
    assert len(json.loads(px.ok("--json", "log", "--since", "1 hour ago"))) == 6
    assert json.loads(px.ok("--json", "log", "--since", "2999-01-01T00:00+02:00")) == []
    proc = px("log", "--since", "yesterday-ish")
    assert proc.returncode == 2 and "argument --since: not a date" in proc.stderr
    assert proc.stdout == ""


def test_log_patch_is_yaml_with_the_rendered_diff(seeded_copy):
    px = seeded_copy
    out = px.ok("log", "-p", "-n", "2")
    docs = list(yaml.safe_load_all(out))
    assert [d["rev"] for d in docs] == [5, 4]
    assert docs[0]["diff"].startswith("--- a/etc/paxos_memcache.conf\n+++ b/etc/")
    assert '+      - server_address: "192.168.1.200"\n' in docs[0]["diff"]
    assert docs[0]["diff"] == px.ok("diff", "4", "5")
    assert json.loads(px.ok("--json", "log", "-p", "-n", "1"))[0]["diff"] == docs[0]["diff"]
    # the first commit's diff creates the files
    first = json.loads(px.ok("--json", "log", "-p", "--reverse"))[0]
    assert first["diff"].startswith("--- /dev/null\n+++ b/etc/paxos_memcache.conf\n")
    proc = px("log", "-p", "--oneline")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


def test_table_cells_are_one_line_each():
    from paxoslog.cli.table import render_table

    out = render_table([{"reason": "bad\nhost\x1b[31m", "n": None, "ok": True, "l": [1, 2]}])
    assert out == ("REASON             N  OK   L\n"
                   "bad\\nhost\\x1b[31m  -  yes  1,2\n")


def test_oneline_escapes_control_characters_of_a_message():
    from paxoslog.cli.commands.loglist import _line

    assert _line("register host a\n\x1b]0;owned\x07") == "register host a \\x1b]0;owned\\x07"


def test_patch_literal_stays_yaml_with_control_characters():
    from paxoslog.cli.commands.loglist import _literal

    text = _literal("diff", "+a\x1b[2J\r\n-b\n", colour=False)
    assert yaml.safe_load(text) == {"diff": "+a\\x1b[2J\\r\n-b\n"}


def test_diff_escapes_control_characters_of_a_crafted_log():
    import io
    from types import SimpleNamespace

    from paxoslog.cli.commands.loglist import coloured_diff

    out = coloured_diff(SimpleNamespace(out=io.StringIO()), "+a\x1b]0;owned\x07\r\n-b\tc\n")
    assert out == "+a\\x1b]0;owned\\x07\\r\n-b\tc\n"
