from __future__ import annotations

from paxoslog.cli.completion import candidates
from paxoslog.cli.grammar import build
from paxoslog.core.model import Cell, Host, Memcache, Topology

T = Topology(hosts=(Host("h1"), Host("h2", groups=("g",))), cells=(Cell("css0", ()),),
             memcaches=(Memcache(3, "css0"),))
P = build()


def test_verbs_objects_and_options() -> None:
    assert "register" in candidates(P, [], T) and "undo" in candidates(P, [], T)
    assert candidates(P, ["register"], T) == ["css", "host", "memcache", "pair"]
    assert "--user" in candidates(P, ["register", "host"], T)


def test_registry_keys_complete_values() -> None:
    assert candidates(P, ["unregister", "host"], T)[-2:] == ["h1", "h2"]
    assert candidates(P, ["show", "css", "-n"], T) == ["css0"]
    assert candidates(P, ["unregister", "memcache", "--id"], T) == ["3"]
    assert candidates(P, ["register", "memcache", "-c"], T) == ["css0"]
    assert candidates(P, ["show", "host", "-g"], T) == ["g"]
