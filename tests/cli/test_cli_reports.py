"""Reports, filters, `--at`, `log`, `diff`, modify semantics and the event log files
(admin.md §3.2-§3.5, §3.11, §4.1-§4.4, §4.7, §5.1-§5.3)."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import AUTHOR, SEED_CELL, Paxos, git_head, ok_many

SHOW_HOST_42 = """\
---
hostname: "192.168.1.10"
user: "paxos"
---
hostname: "192.168.1.100"
user: "paxos"
group: [css0]
---
hostname: "192.168.1.11"
port: 2022
group: [a, b]
use_ssh_config: yes
"""

JSON_HOST_42 = [
    {"hostname": "192.168.1.10", "user": "paxos"},
    {"hostname": "192.168.1.100", "user": "paxos", "group": ["css0"]},
    {"hostname": "192.168.1.11", "port": 2022, "group": ["a", "b"], "use_ssh_config": True},
]

MEMCACHE_44 = """\
---
id: 0
css: css0
name space: space0
pair:
    - ["127.0.0.1", 11211, "192.168.1.200", 11211]
---
id: 1
css: css0
max cache item: 1000
checksum: False
checksum interval: 100
expire interval: 100
worker: 10
name space: space1
pair:
"""

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")


def git(home, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(home / "var" / "paxoslog.git"), *args],
                          capture_output=True, text=True, errors="replace", timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def docs(text: str) -> list:
    return list(yaml.safe_load_all(text))


def assert_json_equivalent(px: Paxos, *args: str, every_form: bool = False) -> str:
    """YAML output and `--json` agree (§4.1); with every_form, also `-o json` before the verb,
    `--output=json`, and `--json`/`-o json` after the object."""
    out = px.ok(*args)
    if out:
        assert out.startswith("---\n"), out
        assert out.count("\n---\n") + 1 == len(docs(out))
    expected = json.loads(json.dumps(docs(out)))  # keys as strings
    verb = 1 if args[0] in ("show", "list") else 0  # where the object ends
    variants = [
        ["--json", *args],
        ["-o", "json", *args],
        ["--output=json", *args],
        [*args[:verb + 1], "--json", *args[verb + 1:]],
        [*args, "-o", "json"],
    ]
    if not every_form:
        variants = variants[:1]
    for variant in variants:
        js = px.ok(*variant)
        assert js.endswith("\n"), variant
        assert json.loads(js) == expected, variant
    return out


@pytest.fixture(scope="module")
def ro(tmp_path_factory, seeded_template) -> Paxos:
    """A richer shared home for read-only report tests (never modified by the tests)."""
    home = tmp_path_factory.mktemp("reports") / "home"
    shutil.copytree(seeded_template, home, symlinks=True)
    px = Paxos(home)
    px.ok("register", "host", "-p", "2022", "-g", "a:b", "--use-ssh-config", "192.168.1.12")
    px.ok("register", "host", "-u", "admin", "-p", "2022", "-g", "b:css0", "192.168.1.13")
    px.ok("register", "memcache", "-c", "css0", "-I", "1000", "-s", "-C", "100", "-E", "100",
          "-W", "10", "-N", "space1")
    px.ok("register", "css", "-n", "css1", "192.168.1.110:1", "192.168.1.110:2",
          "192.168.1.111:1", "192.168.1.111:2", "192.168.1.112:1", "192.168.1.112:2")
    px.ok("register", "memcache", "-c", "css1", "-S", "-i", "7")
    px.ok("register", "pair", "-i", "7", "-a", "localhost", "-p", "11300", "-A", "127.0.0.2",
          "-P", "11301")
    return px  # rev 11


# --- §4.2 hosts ----------------------------------------------------------------------------------

def test_show_host_exact_format_and_json(paxos):
    paxos.ok("register", "host", "192.168.1.10")
    paxos.ok("register", "host", "-g", "css0", "192.168.1.100")
    paxos.ok("register", "host", "--use-ssh-config", "-p", "2022", "-g", "a:b", "192.168.1.11")
    out = assert_json_equivalent(paxos, "show", "host", every_form=True)
    assert out == SHOW_HOST_42
    assert json.loads(paxos.ok("--json", "show", "host")) == JSON_HOST_42
    assert paxos.ok("list", "host") == "192.168.1.10\n192.168.1.100\n192.168.1.11\n"
    assert json.loads(paxos.ok("--json", "list", "host")) == [
        "192.168.1.10", "192.168.1.100", "192.168.1.11"]


def test_group_rule_g(paxos):
    paxos.ok("register", "host", "-g", ":b::a:b:", "h1")
    paxos.ok("register", "host", "-g", "", "h2")
    assert docs(paxos.ok("show", "host")) == [
        {"hostname": "h1", "user": "paxos", "group": ["b", "a"]},
        {"hostname": "h2", "user": "paxos"},
    ]
    paxos.ok("modify", "host", "-g", "", "h1")
    assert paxos.ok("show", "host", "h1") == '---\nhostname: "h1"\nuser: "paxos"\n'


def test_list_and_show_empty_registry(paxos):
    cmds = [[*fmt, verb, obj] for obj in ("host", "css", "memcache") for verb in ("show", "list")
            for fmt in ([], ["--json"])] + [["log"], ["--json", "log"]]
    for args, out in zip(cmds, ok_many(paxos, *cmds), strict=True):
        assert out == ("[]\n" if "--json" in args else ""), (args, out)


def test_show_host_filters(ro):
    def names(*args):
        return [d["hostname"] for d in docs(ro.ok("show", "host", *args))]

    everyone = ["192.168.1.10", "192.168.1.11", "192.168.1.100", "192.168.1.101",
                "192.168.1.102", "192.168.1.12", "192.168.1.13", "192.168.1.110",
                "192.168.1.111", "192.168.1.112"]
    assert names() == everyone
    assert ro.ok("list", "host").splitlines() == everyone
    assert names("-g", "css0") == ["192.168.1.100", "192.168.1.101", "192.168.1.102",
                                   "192.168.1.13"]
    assert names("-g", "a:css0") == ["192.168.1.100", "192.168.1.101", "192.168.1.102",
                                     "192.168.1.12", "192.168.1.13"]
    assert names("-p", "2022") == ["192.168.1.12", "192.168.1.13"]
    assert names("-p", "2022", "-g", "css0") == ["192.168.1.13"]
    assert names("-u", "admin") == ["192.168.1.13"]
    assert names("-u", "paxos", "-g", "b") == []
    assert names("-u", "paxos", "192.168.1.13", "192.168.1.10", "nosuch") == ["192.168.1.10"]
    # names select, output stays in registration order
    assert names("192.168.1.12", "192.168.1.10") == ["192.168.1.10", "192.168.1.12"]
    proc = ro("show", "host", "nosuch")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert ro.ok("list", "host", "-g", "css0").splitlines() == [
        "192.168.1.100", "192.168.1.101", "192.168.1.102", "192.168.1.13"]
    assert ro.ok("list", "host", "-p", "2022", "-u", "admin") == "192.168.1.13\n"
    assert ro.ok("list", "host", "-g", "nosuch") == ""
    assert_json_equivalent(ro, "show", "host", "-g", "b")


# --- §4.3 css ------------------------------------------------------------------------------------

def test_show_css_filters_and_json(ro):
    out = assert_json_equivalent(ro, "show", "css")
    assert [d["name"] for d in docs(out)] == ["css0", "css1"]
    assert docs(ro.ok("show", "css", "-n", "css1")) == [{"name": "css1", "server": [
        {"No.": n, "address_udp": f"192.168.1.11{n}", "port_udp": 1,
         "address_tcp": f"192.168.1.11{n}", "port_tcp": 2} for n in range(3)]}]
    proc = ro("show", "css", "-n", "unknown")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert ro.ok("list", "css") == "css0\ncss1\n"
    assert json.loads(ro.ok("list", "css", "--json")) == ["css0", "css1"]
    assert_json_equivalent(ro, "show", "css", "--name", "css0")


# --- §4.4 memcache -------------------------------------------------------------------------------

def test_show_memcache_exact_format(ro):
    out = ro.ok("show", "memcache")
    assert out.startswith(MEMCACHE_44)
    assert out[len(MEMCACHE_44):] == (
        "---\nid: 7\ncss: css1\nchecksum: True\nname space: space0\npair:\n"
        '    - ["127.0.0.2", 11301, "localhost", 11300]\n')
    assert json.loads(ro.ok("--json", "show", "memcache", "-i", "1")) == [
        {"id": 1, "css": "css0", "max cache item": 1000, "checksum": False,
         "checksum interval": 100, "expire interval": 100, "worker": 10,
         "name space": "space1", "pair": None}]
    assert json.loads(ro.ok("--json", "show", "memcache", "-i", "7"))[0]["checksum"] is True
    assert_json_equivalent(ro, "show", "memcache")


def test_show_memcache_filters(ro):
    def ids(*args):
        return [d["id"] for d in docs(ro.ok("show", "memcache", *args))]

    assert ids() == [0, 1, 7]
    assert ids("-i", "1") == [1]
    assert ids("--id", "99") == []
    assert ids("-c", "css0") == [0, 1]
    assert ids("--css", "css1") == [7]
    assert ids("-c", "nosuch") == []
    assert ids("-N", "space0") == [0, 7]
    assert ids("--name-space", "space0", "-c", "css0") == [0]
    assert ids("-N", "space1", "-i", "0") == []
    assert ro.ok("list", "memcache") == "0\n1\n7\n"
    assert json.loads(ro.ok("--json", "list", "memcache")) == [0, 1, 7]
    proc = ro("show", "memcache", "-i", "99")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_pair_rows_store_values_exactly(seeded_copy):
    px = seeded_copy
    px.ok("register", "pair", "-i", "0", "-a", "192.168.1.201", "-p", "11212", "-A",
          "localhost", "-P", "11213")
    px.ok("register", "pair", "-i", "0", "-a", "192.168.1.202", "-A", "127.0.0.3")
    assert px.ok("show", "memcache", "-i", "0") == (
        "---\nid: 0\ncss: css0\nname space: space0\npair:\n"
        '    - ["127.0.0.1", 11211, "192.168.1.200", 11211]\n'
        '    - ["localhost", 11213, "192.168.1.201", 11212]\n'
        '    - ["127.0.0.3", 11211, "192.168.1.202", 11211]\n')
    conf = yaml.safe_load((px.home / "etc" / "paxos_memcache.conf").read_text())
    assert isinstance(conf, dict)


# --- §4.1 quoting --------------------------------------------------------------------------------

TRICKY = ["yes", "null", "~", "123", "0x1f", "#x", "*a", "&a", "!x", "[x", "{x", "'x", '"x',
          "@x", "%x", "`x", "|", ">", "-", "?", "a,b", "x #y", "True", "1.5", "2024-01-01",
          "=", "<<", "a]b", ".inf", "-1", "off", "plain",
          # odd whitespace and other YAML-significant forms (control characters other than TAB
          # cannot be typed since issue 7: see test_hostile_input.py)
          "a\tb", "\u2028", "\ufeff",
          " lead", "trail ", "- x", "0o17", "!!str", "%TAG", "...", "---", "y", "NULL", "-.inf",
          ".NaN", "\U0001F600", "\\"]


def _contains(tree, value) -> bool:
    if tree == value:
        return True
    if isinstance(tree, dict):
        return any(_contains(v, value) for v in tree.values())
    if isinstance(tree, list):
        return any(_contains(v, value) for v in tree)
    return False


def test_tricky_strings_load_back_as_strings(paxos):
    paxos.ok("register", "host", "-u", 'a"b\\c', "-g", ":".join(TRICKY), "h")
    out = paxos.ok("show", "host")
    [doc] = docs(out)
    assert doc == {"hostname": "h", "user": 'a"b\\c', "group": TRICKY}
    assert json.loads(paxos.ok("--json", "show", "host")) == [doc]
    assert out.splitlines()[2] == 'user: "a\\"b\\\\c"'
    assert "plain" in out.split("group: ")[1] and '"plain"' not in out
    # the rendered configuration file holds the same strings (§5.3: loads with safe_load)
    conf = yaml.safe_load((paxos.home / "etc" / "paxos_memcache.conf").read_text(encoding="utf-8"))
    assert _contains(conf, TRICKY)
    assert _contains(conf, 'a"b\\c')
    proc = paxos("register", "host", "-g", "line\nbreak", "h2")
    assert proc.returncode == 2 and "control character (U+000A)" in proc.stderr
    assert docs(paxos.ok("verify"))[0]["status"] == "ok"
    paxos.ok("register", "css", "-n", "c", *[f"127.0.0.{n}:1" for n in (1, 1, 2, 2, 3, 3)])
    for ns in ("yes", "#x", "123", "a,b"):
        paxos.ok("register", "memcache", "-c", "c", "-N", ns)
    spaces = [d["name space"] for d in docs(paxos.ok("show", "memcache"))]
    assert spaces == ["yes", "#x", "123", "a,b"]
    assert '\nname space: "yes"\n' in paxos.ok("show", "memcache", "-i", "0")


def test_quoting_1e3_is_double_quoted(paxos):
    """§4.1 names `1e3` among the plain forms that MUST be double-quoted."""
    paxos.ok("register", "host", "-g", "1e3", "h")
    assert paxos.ok("show", "host") == '---\nhostname: "h"\nuser: "paxos"\ngroup: ["1e3"]\n'


def test_non_ascii_plain_string_is_not_quoted(paxos):
    """§4.1: a string is plain unless the plain form would load as something else."""
    paxos.ok("register", "host", "-g", "é", "h")
    assert paxos.ok("show", "host") == '---\nhostname: "h"\nuser: "paxos"\ngroup: [é]\n'


# --- --at ----------------------------------------------------------------------------------------

def test_at_revisions(ro):
    commits = git(ro.home, "rev-list", "--reverse", "refs/heads/main").split()
    assert len(commits) == 11
    revs = ["1", "HEAD~10", commits[0][:7], commits[1], "0", "00", "000001", "HEAD~9", "HEAD",
            "HEAD~0", "11"]
    outs = ok_many(ro, *[["list", "host", "--at", r] for r in revs], ["list", "host"])
    hosts = {r: out.splitlines() for r, out in zip(revs, outs, strict=False)}
    assert hosts["1"] == ["192.168.1.10"]
    assert hosts["HEAD~10"] == ["192.168.1.10"]
    assert hosts[commits[0][:7]] == ["192.168.1.10"]
    assert hosts[commits[1]] == ["192.168.1.10", "192.168.1.11"]
    assert hosts["0"] == []
    assert hosts["00"] == []
    assert hosts["000001"] == ["192.168.1.10"]
    assert hosts["HEAD~9"] == ["192.168.1.10", "192.168.1.11"]
    assert hosts["HEAD"] == outs[-1].splitlines()
    assert hosts["HEAD~0"] == hosts["11"] == hosts["HEAD"]
    (show_prev, show_now, mc_prev, mc7_prev, mc3, mc5, css_h3, css2, css0_3, css0_now, host_g3,
     json2) = ok_many(
        ro, ["show", "host", "--at", "HEAD~1"], ["show", "host"],
        ["list", "memcache", "--at", "HEAD~1"], ["show", "memcache", "-i", "7", "--at", "HEAD~1"],
        ["list", "memcache", "--at", "3"], ["show", "memcache", "--at", "5"],
        ["list", "css", "--at", "HEAD~3"], ["show", "css", "--at", "2"],
        ["show", "css", "-n", "css0", "--at", "3"], ["show", "css", "-n", "css0"],
        ["show", "host", "-g", "css0", "--at", "3"], ["--json", "list", "host", "--at", "2"])
    assert show_prev == show_now
    assert mc_prev == "0\n1\n7\n"
    assert mc7_prev.endswith("pair:\n")
    assert mc3 == ""
    assert mc5 == ("---\nid: 0\ncss: css0\nname space: space0\npair:\n"
                   '    - ["127.0.0.1", 11211, "192.168.1.200", 11211]\n')
    assert css_h3 == "css0\n"
    assert css2 == ""
    assert css0_3 == css0_now
    assert host_g3.count("---") == 3
    assert json.loads(json2) == ["192.168.1.10", "192.168.1.11"]
    assert_json_equivalent(ro, "show", "memcache", "--at", "HEAD~2")


# --- §4.7 log ------------------------------------------------------------------------------------

def test_log_fields(ro):
    out = assert_json_equivalent(ro, "log", every_form=True)
    entries = docs(out)
    commits = git(ro.home, "rev-list", "refs/heads/main").split()
    assert [e["rev"] for e in entries] == list(range(11, 0, -1))
    assert [e["commit"] for e in entries] == commits
    for e in entries:
        assert list(e) == ["rev", "commit", "time", "author", "command"]
        assert re.fullmatch(r"[0-9a-f]{40}", e["commit"])
        assert ISO.match(e["time"]), e["time"]
        when = dt.datetime.fromisoformat(e["time"])
        assert when.utcoffset() is not None
        assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 3600
        assert e["author"] == AUTHOR
    # every quoted field is double-quoted
    for key in ("commit", "time", "author", "command"):
        assert all(line.startswith(f'{key}: "') for line in out.splitlines()
                   if line.startswith(f"{key}:"))
    assert entries[0]["command"] == ("register pair -i 7 -a localhost -p 11300 -A 127.0.0.2 "
                                     "-P 11301")
    assert entries[-1]["command"] == "register host --user paxos 192.168.1.10"
    assert docs(ro.ok("log", "--reverse")) == entries[::-1]
    assert docs(ro.ok("log", "-n", "2")) == entries[:2]
    assert docs(ro.ok("log", "--max-count", "3", "--reverse")) == entries[:3][::-1]
    # the author is also the git author and committer
    assert git(ro.home, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "refs/heads/main") == (
        f"{AUTHOR}|{AUTHOR}\n")


def test_log_command_excludes_global_options(paxos):
    paxos.ok("-o", "json", "register", "host", "h1")
    paxos.ok("--json", "-v", "--trust-new-hosts", "register", "host", "-g", "a b", "h2")
    paxos.ok("--output", "yaml", "register", "host", "-u", "it's", "h3")
    commands = [e["command"] for e in docs(paxos.ok("log", "--reverse"))]
    assert commands == ["register host h1", "register host -g 'a b' h2",
                        "register host -u 'it'\"'\"'s' h3"]
    assert git(paxos.home, "log", "-1", "--format=%B", "refs/heads/main").strip() == commands[-1]


def test_log_author_from_environment(paxos):
    paxos.env["PAXOS_AUTHOR"] = "Someone Else <else@example.invalid>"
    paxos.ok("register", "host", "h1")
    [entry] = docs(paxos.ok("log"))
    assert entry["author"] == "Someone Else <else@example.invalid>"


# --- §3.11 diff ----------------------------------------------------------------------------------

def _files_at(home, commit) -> dict[str, str]:
    names = git(home, "ls-tree", "-r", "--name-only", commit).split()
    return {n: git(home, "show", f"{commit}:{n}") for n in names if n.startswith("etc/")}


def _expected_diff(home, c1, c2) -> str:
    old, new = _files_at(home, c1), _files_at(home, c2)
    paths = sorted(set(old) | set(new),
                   key=lambda p: (p != "etc/paxos_memcache.conf", p))
    out = []
    for p in paths:
        a, b = old.get(p), new.get(p)
        if a == b:
            continue
        out.extend(difflib.unified_diff(
            (a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True),
            "/dev/null" if a is None else f"a/{p}", "/dev/null" if b is None else f"b/{p}", n=3))
    return "".join(out)


def test_diff_register_css(seeded_copy):
    px = seeded_copy
    out = px.ok("diff", "2", "3")
    lines = out.splitlines()
    assert lines[:2] == ["--- a/etc/paxos_memcache.conf", "+++ b/etc/paxos_memcache.conf"]
    i = lines.index("--- /dev/null")
    assert lines[i + 1] == "+++ b/etc/cell/css0.conf"
    assert lines[i + 3:] == ["+0 192.168.1.100 24111 192.168.1.100 24111",
                             "+1 192.168.1.101 24111 192.168.1.101 24111",
                             "+2 192.168.1.102 24111 192.168.1.102 24111"]
    assert "event.msgpack" not in out
    commits = git(px.home, "rev-list", "--reverse", "refs/heads/main").split()
    assert out == _expected_diff(px.home, commits[1], commits[2])
    js = json.loads(px.ok("--json", "diff", "2", "3"))
    assert [(d["path"], d["change"]) for d in js] == [
        ("etc/paxos_memcache.conf", "modify"), ("etc/cell/css0.conf", "create")]
    assert "".join(d["diff"] for d in js) == out
    # REV2 defaults to HEAD; equal revisions print nothing
    assert px.ok("diff", "HEAD~2") == px.ok("diff", "3", "5")
    assert px("diff", "5", "HEAD", check=True).stdout == ""
    assert json.loads(px.ok("--json", "diff", "4", "4")) == []
    # reverse direction shows a removal
    back = px.ok("diff", "3", "2")
    assert "--- a/etc/cell/css0.conf\n+++ /dev/null\n" in back


def test_diff_orders_cell_files_by_name(seeded_copy):
    px = seeded_copy
    px.ok("register", "css", "-n", "zeta", *[f"127.0.0.{n}:1" for n in (1, 1, 2, 2, 3, 3)])
    px.ok("register", "css", "-n", "alpha", *[f"127.0.0.{n}:2" for n in (1, 1, 2, 2, 3, 3)])
    px.ok("unregister", "memcache", "-i", "0")
    px.ok("unregister", "css", "-n", "css0")
    out = px.ok("diff", "5")
    headers = [line for line in out.splitlines() if line.startswith(("--- ", "+++ "))]
    assert headers == [
        "--- a/etc/paxos_memcache.conf", "+++ b/etc/paxos_memcache.conf",
        "--- /dev/null", "+++ b/etc/cell/alpha.conf",
        "--- a/etc/cell/css0.conf", "+++ /dev/null",
        "--- /dev/null", "+++ b/etc/cell/zeta.conf",
    ]
    commits = git(px.home, "rev-list", "--reverse", "refs/heads/main").split()
    assert out == _expected_diff(px.home, commits[4], commits[-1])
    js = json.loads(px.ok("diff", "5", "--json"))
    assert [(d["path"], d["change"]) for d in js] == [
        ("etc/paxos_memcache.conf", "modify"), ("etc/cell/alpha.conf", "create"),
        ("etc/cell/css0.conf", "delete"), ("etc/cell/zeta.conf", "create")]
    assert sorted(p.name for p in (px.home / "etc" / "cell").iterdir()) == [
        "alpha.conf", "zeta.conf"]


# --- §3.2 modify host ----------------------------------------------------------------------------

def test_modify_host_semantics(paxos):
    paxos.ok("register", "host", "-u", "alice", "-p", "2200", "-g", "a:b", "h1")
    paxos.ok("modify", "host", "--use-ssh-config", "h1")  # keeps the user
    assert docs(paxos.ok("show", "host", "h1")) == [
        {"hostname": "h1", "user": "alice", "port": 2200, "group": ["a", "b"],
         "use_ssh_config": True}]
    paxos.ok("modify", "host", "-g", "c", "h1")  # groups replaced; flag unchanged
    assert docs(paxos.ok("show", "host", "h1"))[0] == {
        "hostname": "h1", "user": "alice", "port": 2200, "group": ["c"], "use_ssh_config": True}
    paxos.ok("modify", "host", "--not-use-ssh-config", "h1")  # user kept (not none)
    assert paxos.ok("show", "host", "h1") == (
        '---\nhostname: "h1"\nuser: "alice"\nport: 2200\ngroup: [c]\n')
    # a host registered with --use-ssh-config has no user
    paxos.ok("register", "host", "--use-ssh-config", "h2")
    assert paxos.ok("show", "host", "h2") == '---\nhostname: "h2"\nuse_ssh_config: yes\n'
    paxos.ok("modify", "host", "-p", "22", "h2")  # neither flag: user and flag unchanged
    assert paxos.ok("show", "host", "h2") == (
        '---\nhostname: "h2"\nport: 22\nuse_ssh_config: yes\n')
    paxos.ok("modify", "host", "--not-use-ssh-config", "h2")  # user none -> paxos
    assert paxos.ok("show", "host", "h2") == '---\nhostname: "h2"\nuser: "paxos"\nport: 22\n'
    paxos.ok("modify", "host", "-u", "bob", "--use-ssh-config", "h2")
    assert paxos.ok("show", "host", "h2") == (
        '---\nhostname: "h2"\nuser: "bob"\nport: 22\nuse_ssh_config: yes\n')
    assert paxos.log_count() == 8


def test_register_css_keeps_registered_hosts_settings_and_adds_the_cell_group(paxos):
    # issue 12: a member host registered before joins the cell's group (so `-g css0` selects
    # every member); its own settings and groups stay
    paxos.ok("register", "host", "-u", "root", "-g", "mine", "192.168.1.101")
    paxos.ok("register", "css", "-n", "css0", *SEED_CELL)
    assert docs(paxos.ok("show", "host")) == [
        {"hostname": "192.168.1.101", "user": "root", "group": ["mine", "css0"]},
        {"hostname": "192.168.1.100", "user": "paxos", "group": ["css0"]},
        {"hostname": "192.168.1.102", "user": "paxos", "group": ["css0"]},
    ]


# --- §3.4 memcache -------------------------------------------------------------------------------

def test_modify_memcache_replaces_only_given_options(seeded_copy):
    px = seeded_copy
    px.ok("register", "memcache", "-c", "css0", "-N", "spaceB", "-I", "5", "-s")
    px.ok("modify", "memcache", "-i", "1", "-S", "-E", "9")
    assert px.ok("show", "memcache", "-i", "1") == (
        "---\nid: 1\ncss: css0\nmax cache item: 5\nchecksum: True\nexpire interval: 9\n"
        "name space: spaceB\npair:\n")
    px.ok("modify", "memcache", "-i", "1", "-s", "-N", "spaceC", "-C", "3", "-W", "2", "-I", "6")
    assert px.ok("show", "memcache", "-i", "1") == (
        "---\nid: 1\ncss: css0\nmax cache item: 6\nchecksum: False\nchecksum interval: 3\n"
        "expire interval: 9\nworker: 2\nname space: spaceC\npair:\n")
    # modify keeps the pairs of memcache 0
    px.ok("modify", "memcache", "-i", "0", "-W", "3")
    assert px.ok("show", "memcache", "-i", "0").endswith(
        'worker: 3\nname space: space0\npair:\n    - ["127.0.0.1", 11211, "192.168.1.200", 11211]\n')


def test_memcache_id_counter_never_reuses(paxos):
    paxos.ok("register", "css", "-n", "c", *[f"127.0.0.{n}:1" for n in (1, 1, 2, 2, 3, 3)])
    paxos.ok("register", "memcache", "-c", "c")
    paxos.ok("register", "memcache", "-c", "c")
    paxos.ok("unregister", "memcache", "-i", "1")
    paxos.ok("register", "memcache", "-c", "c")
    assert paxos.ok("list", "memcache") == "0\n2\n"
    # undo of the last register does not lower the counter
    paxos.ok("undo")
    paxos.ok("register", "memcache", "-c", "c")
    assert paxos.ok("list", "memcache") == "0\n3\n"
    # nor does a revert to an old revision
    paxos.ok("revert", "2")
    assert paxos.ok("list", "memcache") == "0\n"
    paxos.ok("register", "memcache", "-c", "c")
    assert paxos.ok("list", "memcache") == "0\n4\n"
    # an explicit id above the counter raises it
    paxos.ok("register", "memcache", "-c", "c", "-i", "10")
    paxos.ok("register", "memcache", "-c", "c")
    # an explicit id below the counter is allowed when free
    paxos.ok("register", "memcache", "-c", "c", "-i", "1")
    assert paxos.ok("list", "memcache") == "0\n4\n10\n11\n1\n"


# --- undo / revert / verify reports -----------------------------------------------------------

def test_undo_revert_verify_reports(seeded_copy):
    px = seeded_copy
    out = assert_json_equivalent(px, "verify")
    head = git_head(px.home)
    assert docs(out) == [{"head": 5, "commit": head, "status": "ok"}]
    assert out == f'---\nhead: 5\ncommit: "{head}"\nstatus: ok\n'
    undo = px.ok("--json", "undo")
    assert json.loads(undo) == [{"rev": 6, "undone": 5, "command":
                                 "register pair --id 0 --server-address 192.168.1.200"}]
    revert = px.ok("revert", "2")
    assert revert == "---\nrev: 7\nreverted_to: 2\n"
    assert px.ok("list", "host") == "192.168.1.10\n192.168.1.11\n"
    assert px.ok("list", "css") == ""
    assert not (px.home / "etc" / "cell" / "css0.conf").exists()
    # undo of the revert brings everything back as of rev 6
    assert docs(px.ok("undo")) == [{"rev": 8, "undone": 7, "command": "revert 2"}]
    assert px.ok("show", "memcache") == "---\nid: 0\ncss: css0\nname space: space0\npair:\n"
    assert (px.home / "etc" / "cell" / "css0.conf").exists()
    # the next undo skips the undo events and walks back to rev 5's target... rev 5 is undone
    assert docs(px.ok("undo"))[0]["undone"] == 4
    js = json.loads(px.ok("revert", "5", "--json"))
    assert js == [{"rev": 10, "reverted_to": 5}]
    assert px.ok("diff", "5") == ""
    assert docs(px.ok("verify")) == [{"head": 10, "commit": git_head(px.home), "status": "ok"}]


def test_etc_equals_head_rendering(ro):
    head = git_head(ro.home)
    files = _files_at(ro.home, head)
    assert sorted(files) == ["etc/cell/css0.conf", "etc/cell/css1.conf",
                             "etc/paxos_memcache.conf"]
    for path, text in files.items():
        assert (ro.home / path).read_text() == text
    conf = yaml.safe_load(files["etc/paxos_memcache.conf"])
    assert isinstance(conf, dict)
    assert files["etc/paxos_memcache.conf"].endswith("\n")
    assert "&" not in files["etc/paxos_memcache.conf"].replace('"&', "")
    assert files["etc/cell/css1.conf"] == (
        "0 192.168.1.110 1 192.168.1.110 2\n"
        "1 192.168.1.111 1 192.168.1.111 2\n"
        "2 192.168.1.112 1 192.168.1.112 2\n")


# --- §5.1 the git repository ---------------------------------------------------------------------

def test_event_log_repository(ro):
    home = ro.home
    assert git(home, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(home, "rev-parse", "--is-bare-repository").strip() == "true"
    commits = git(home, "rev-list", "--reverse", "refs/heads/main").split()
    assert len(commits) == 11
    # linear history: every commit but the first has exactly one parent
    parents = git(home, "rev-list", "--reverse", "--parents", "refs/heads/main").splitlines()
    assert [len(line.split()) for line in parents] == [1] + [2] * 10
    for c in commits:
        names = git(home, "ls-tree", "-r", "--name-only", c).split()
        assert "event.msgpack" in names
        assert "etc/paxos_memcache.conf" in names
        assert all(n in ("event.msgpack", "etc/paxos_memcache.conf") or
                   re.fullmatch(r"etc/cell/[A-Za-z0-9_]+\.conf", n) for n in names), names
    assert git(home, "ls-tree", "-r", "--name-only", commits[1]).split() == [
        "etc/paxos_memcache.conf", "event.msgpack"]
    assert "etc/cell/css1.conf" in git(home, "ls-tree", "-r", "--name-only", commits[-1])
    patch = git(home, "log", "-p", "refs/heads/main")
    assert "+0 192.168.1.100 24111 192.168.1.100 24111" in patch
    assert "diff --git a/etc/cell/css0.conf b/etc/cell/css0.conf" in patch
    assert '+  - hostname: "192.168.1.12"' in patch


def test_event_blob_is_msgpack(ro):
    import msgpack

    home = ro.home
    proc = subprocess.run(["git", "--git-dir", str(home / "var" / "paxoslog.git"), "cat-file",
                           "blob", "refs/heads/main:event.msgpack"], capture_output=True,
                          timeout=30)
    assert proc.returncode == 0
    event = msgpack.unpackb(proc.stdout, raw=False)
    assert event["v"] == 1
    assert event["type"] == "pair_registered"
    assert isinstance(event["data"], dict)
    first = subprocess.run(["git", "--git-dir", str(home / "var" / "paxoslog.git"), "cat-file",
                            "blob", "refs/heads/main~10:event.msgpack"], capture_output=True,
                           timeout=30).stdout
    assert msgpack.unpackb(first, raw=False)["type"] == "host_registered"


def test_version(paxos):
    from importlib.metadata import version

    proc = paxos("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"paxos {version('paxoslog')}\n"
    assert re.fullmatch(r"paxos \d+\.\d+\.\d+.*\n", proc.stdout)


def test_log_time_has_the_local_offset(paxos):
    paxos.env["TZ"] = "JST-9"
    paxos.ok("register", "host", "h1")
    [entry] = docs(paxos.ok("log"))
    assert entry["time"].endswith("+09:00"), entry
    when = dt.datetime.fromisoformat(entry["time"])
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 3600
    # the stored commit time keeps its offset whatever the reader's zone
    paxos.env["TZ"] = "UTC"
    assert docs(paxos.ok("log"))[0]["time"] == entry["time"]


def test_replay_rewrites_etc(seeded_copy):
    px = seeded_copy
    clean = assert_json_equivalent(px, "replay")
    head = git_head(px.home)
    assert docs(clean) == [{"head": 5, "commit": head, "status": "ok", "rewritten": []}]
    conf = px.home / "etc" / "paxos_memcache.conf"
    cell = px.home / "etc" / "cell" / "css0.conf"
    good_conf, good_cell = conf.read_text(), cell.read_text()
    conf.write_text(good_conf + "junk: 1\n")
    cell.unlink()
    stale = px.home / "etc" / "cell" / "old.conf"
    stale.write_text("0 a 1 a 1\n")
    out = docs(px.ok("replay"))
    assert len(out) == 1
    assert list(out[0]) == ["head", "commit", "status", "rewritten"]
    assert out[0]["status"] == "ok"
    assert sorted(out[0]["rewritten"]) == sorted(
        ["etc/paxos_memcache.conf", "etc/cell/css0.conf", "etc/cell/old.conf"])
    assert conf.read_text() == good_conf
    assert cell.read_text() == good_cell
    assert not stale.exists()
    assert git_head(px.home) == head


def test_replay_rewritten_entries_are_plain(seeded_copy):
    """§4.1: only the listed fields are always double-quoted; `rewritten` is not among them."""
    px = seeded_copy
    (px.home / "etc" / "cell" / "css0.conf").unlink()
    assert px.ok("replay").endswith("rewritten:\n  - etc/cell/css0.conf\n")


def test_undo_targets_skip_undone_and_undo_events(paxos):
    paxos.ok("register", "host", "a")  # 1
    paxos.ok("register", "host", "b")  # 2
    assert docs(paxos.ok("undo")) == [{"rev": 3, "undone": 2, "command": "register host b"}]
    paxos.ok("register", "host", "c")  # 4
    assert docs(paxos.ok("undo")) == [{"rev": 5, "undone": 4, "command": "register host c"}]
    assert docs(paxos.ok("undo")) == [{"rev": 6, "undone": 1, "command": "register host a"}]
    assert paxos.ok("list", "host") == ""
    proc = paxos("undo")
    assert (proc.returncode, proc.stdout, proc.stderr.strip()) == (1, "", "nothing to undo")
    paxos.ok("revert", "2")  # 7: a and b again
    assert paxos.ok("list", "host") == "a\nb\n"
    assert docs(paxos.ok("undo")) == [{"rev": 8, "undone": 7, "command": "revert 2"}]
    assert paxos.ok("list", "host") == ""
    assert docs(paxos.ok("verify"))[0]["status"] == "ok"


def _events(home) -> list[dict]:
    import msgpack

    repo = str(home / "var" / "paxoslog.git")
    commits = git(home, "rev-list", "--reverse", "refs/heads/main").split()
    out = []
    for c in commits:
        blob = subprocess.run(["git", "--git-dir", repo, "cat-file", "blob", f"{c}:event.msgpack"],
                              capture_output=True, timeout=30, check=True).stdout
        out.append(msgpack.unpackb(blob, raw=False))
    return out


def test_one_event_per_command_with_its_type(paxos):
    cell = [f"127.0.0.{n}:1" for n in (1, 1, 2, 2, 3, 3)]
    commands = [
        ["register", "css", "-n", "c", *cell],
        ["register", "memcache", "-c", "c"],
        ["register", "pair", "-i", "0", "-a", "localhost"],
        ["unregister", "pair", "-i", "0", "-a", "127.0.0.1", "-p", "11211", "-A", "localhost"],
        ["modify", "host", "-u", "x", "127.0.0.1"],
        ["undo"],
        ["modify", "memcache", "-i", "0", "-W", "3"],
        ["unregister", "memcache", "-i", "0"],
        ["unregister", "css", "-n", "c"],
        ["unregister", "host", "127.0.0.1"],
        ["revert", "1"],
        ["register", "host", "h"],
    ]
    for args in commands:
        paxos.ok(*args)
    events = _events(paxos.home)
    assert [e["type"] for e in events] == [
        "css_registered", "memcache_registered", "pair_registered", "pair_unregistered",
        "host_modified", "topology_restored", "memcache_modified", "memcache_unregistered",
        "css_unregistered", "host_unregistered", "topology_restored", "host_registered"]
    assert all(e["v"] == 1 and isinstance(e["data"], dict) for e in events)
    # the unregistered pair is named exactly as stored (no resolution at replay)
    assert events[3]["data"] == {"id": 0, "shost": "localhost", "sport": None, "chost": None,
                                 "cport": None}
    assert events[5]["data"]["reason"] == "undo"
    assert events[5]["data"]["target_rev"] == 5
    assert events[10]["data"]["reason"] == "revert"
    assert events[10]["data"]["target_rev"] == 1
    assert [e["command"] for e in docs(paxos.ok("log", "--reverse"))] == [
        " ".join(c) for c in commands]
    assert docs(paxos.ok("verify"))[0]["status"] == "ok"


def test_event_map_has_exactly_v_type_data(seeded_copy):
    """§5.1: `event.msgpack` is the map {"v": 1, "type": <str>, "data": <map>}."""
    for event in _events(seeded_copy.home):
        assert sorted(event) == ["data", "type", "v"], event
