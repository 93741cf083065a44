"""The package's layering rule (README, Development), checked on the source itself.

paxoslog/ is ground (errors, fsutil, yamlfmt) < core < store < remote < app < cli: a module
imports only its own layer and the layers below it, counting imports inside functions too.
core/ is pure: no file, socket, clock or process module, and no `open`. paxoslog never imports
nodes/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "paxoslog"
CLOCK_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "time_ns"}
ORDER = ["ground", "core", "store", "remote", "app", "cli"]
# What makes a module impure: I/O, clocks, randomness, processes, and the I/O libraries.
# `datetime` parses and formats times purely; only reading the clock (CLOCK_CALLS) is I/O.
IMPURE = {"os", "io", "socket", "time", "subprocess", "pathlib", "shutil", "tempfile",
          "fcntl", "threading", "asyncio", "random", "select", "selectors", "signal", "mmap",
          "ctypes", "glob", "logging", "sys", "dulwich", "paramiko", "cmd2", "uuid", "secrets"}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) <= 2:  # paxoslog, paxoslog.errors, ...
        return "ground"
    return parts[1]


def imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def test_every_module_sits_in_a_known_layer():
    unknown = {m for m in modules() if layer(m) not in ORDER}
    assert not unknown


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_only_downward(module):
    mine = ORDER.index(layer(module))
    known = modules()
    for name in imports(known[module], module):
        assert not name.split(".")[0] == "nodes", f"{module} imports {name}: paxoslog never imports nodes"
        if name in known and name != "paxoslog":
            theirs = ORDER.index(layer(name))
            assert theirs <= mine, f"{module} ({ORDER[mine]}) imports {name} ({ORDER[theirs]})"


@pytest.mark.parametrize("module", sorted(m for m in modules() if layer(m) == "core"))
def test_core_is_pure(module):
    path = modules()[module]
    tops = {name.split(".")[0] for name in imports(path, module)}
    assert not tops & IMPURE, f"{module} imports {sorted(tops & IMPURE)}"
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id in ("open", "print", "input")]
    assert not calls, f"{module} calls {calls[0].func.id}() at line {calls[0].lineno}"
    clock = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr in CLOCK_CALLS]
    assert not clock, f"{module} reads the clock ({clock[0].func.attr}) at line {clock[0].lineno}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule is not vacuous: an import of cli from core is found."""
    fake = tmp_path / "decide.py"
    fake.write_text("def f():\n    from paxoslog.cli import dispatch\n")
    found = imports(fake, "paxoslog.core.decide")
    assert "paxoslog.cli.dispatch" in found
    assert ORDER.index(layer("paxoslog.cli.dispatch")) > ORDER.index(layer("paxoslog.core.decide"))
    clocked = tmp_path / "clocked.py"
    clocked.write_text("import datetime\n\ndef f():\n    return datetime.datetime.now()\n")
    tree = ast.parse(clocked.read_text())
    assert [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)] == ["now"]
    relative = tmp_path / "events.py"
    relative.write_text("from ..store import home\nimport os\n")
    assert {"paxoslog.store", "paxoslog.store.home", "os"} <= imports(relative,
                                                                       "paxoslog.core.events")


NODE_CORES = sorted(p for d in ("css", "memcache") for p in (ROOT / "nodes" / d / "core").glob("*.py"))


@pytest.mark.parametrize("path", NODE_CORES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_node_cores_are_pure(path):
    """The Paxos core and the proxy's protocol and delegation core: handlers that return actions,
    no I/O. Randomness enters only as a seeded `random.Random` the caller controls."""
    module = "nodes." + ".".join(path.relative_to(ROOT / "nodes").with_suffix("").parts)
    tops = {name.split(".")[0] for name in imports(path, module)}
    assert not tops & (IMPURE - {"random"}), f"{path} imports {sorted(tops & IMPURE)}"
    tree = ast.parse(path.read_text())
    bad = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and (
        isinstance(n.func, ast.Name) and n.func.id in ("open", "print", "input")
        or isinstance(n.func, ast.Attribute) and n.func.attr in CLOCK_CALLS
        or isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "random" and n.func.attr != "Random")]
    assert not bad, f"{path}: impure call at line {bad[0].lineno}"
