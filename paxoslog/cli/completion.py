"""Tab completion driven by the grammar: verbs, objects, options, and registry keys as values."""

from __future__ import annotations

import argparse

from paxoslog.core.model import Topology

# Which registry keys complete the value of an option (by dest) or a positional.
_VALUE_SOURCES = {
    ("host", "hostname"): "hosts",
    ("css", "name"): "cells",
    ("memcache", "css"): "cells",
    ("memcache", "id"): "ids",
    ("pair", "id"): "ids",
    ("host", "group"): "groups",
    ("", "hostname"): "hosts",
    ("deploy", "hostname"): "hosts",
    ("", "group"): "groups",
    ("deploy", "group"): "groups",
}


def _children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _keys(topology: Topology, source: str) -> list[str]:
    if source == "hosts":
        return [h.hostname for h in topology.hosts]
    if source == "cells":
        return [c.name for c in topology.cells]
    if source == "ids":
        return [str(m.id) for m in topology.memcaches]
    return sorted({g for h in topology.hosts for g in h.groups})


def candidates(parser: argparse.ArgumentParser, words: list[str], topology: Topology) -> list[str]:
    """What may come next after the complete `words` of a command line."""
    node, obj, i = parser, "", 0
    while i < len(words) and _children(node):
        child = _children(node).get(words[i])
        if child is None:
            return []
        if node is not parser:
            obj = words[i]
        node, i = child, i + 1
    rest = words[i:]
    children = _children(node)
    if children:
        return sorted(children)
    options = {s: a for a in node._actions for s in a.option_strings}
    if rest and rest[-1] in options and options[rest[-1]].nargs != 0:
        source = _VALUE_SOURCES.get((obj, options[rest[-1]].dest))
        return _keys(topology, source) if source else []
    out = sorted(s for s in options if s.startswith("--"))
    positional = [a for a in node._actions if not a.option_strings]
    for action in positional:
        source = _VALUE_SOURCES.get((obj, action.dest))
        if source:
            out += _keys(topology, source)
    return out
