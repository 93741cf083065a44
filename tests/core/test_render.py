"""Rendering is deterministic and reversible: the rendered config is the snapshot."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from paxoslog.core.model import Cell, Host, Memcache, Pair, Server, Topology
from paxoslog.core.render import parse_conf, render, render_conf
from paxoslog.yamlfmt import plain

text = st.text(min_size=1, max_size=12)
# What the rules of admin.md §3.1 let through: reading back validates them (schema).
hostnames = text.filter(lambda s: not any(c.isspace() or c in "@:/" for c in s))
groups = text.filter(lambda s: ":" not in s)
spaces = text.filter(lambda s: not any(c.isspace() for c in s))
cell_names = st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True)
ports = st.one_of(st.none(), st.integers(1, 65535))
hosts = st.builds(Host, hostnames, st.one_of(st.none(), text), ports,
                  st.lists(groups, max_size=3).map(tuple), st.booleans())
servers = st.builds(lambda n, a, b: tuple(Server(i, a, 1 + i, b, 2 + i) for i in range(n)),
                    st.just(3), hostnames, hostnames)
cells = st.builds(Cell, cell_names, servers)
pairs = st.builds(Pair, hostnames, ports, st.one_of(st.none(), hostnames), ports)
memcaches = st.builds(Memcache, st.integers(0, 2**63 - 1), cell_names, spaces, ports,
                      st.one_of(st.none(), st.booleans()), ports, ports, ports,
                      st.lists(pairs, max_size=2).map(tuple))
topologies = st.builds(Topology,
                       st.lists(hosts, max_size=3, unique_by=lambda h: h.hostname).map(tuple),
                       st.lists(cells, max_size=2, unique_by=lambda c: c.name).map(tuple),
                       st.lists(memcaches, max_size=2, unique_by=lambda m: m.id).map(tuple),
                       st.integers(0, 2**63))


@given(topologies)
def test_conf_round_trips(t: Topology) -> None:
    data = render_conf(t)
    assert parse_conf(data) == t
    assert render_conf(parse_conf(data)) == data
    assert isinstance(yaml.safe_load(data), dict)


def test_cell_file_matches_the_guide() -> None:
    cell = Cell("css0", tuple(Server(i, f"192.168.1.10{i}", 24111, f"192.168.1.10{i}", 24111)
                              for i in range(3)))
    assert render(Topology(cells=(cell,)))["etc/cell/css0.conf"] == (
        b"0 192.168.1.100 24111 192.168.1.100 24111\n"
        b"1 192.168.1.101 24111 192.168.1.101 24111\n"
        b"2 192.168.1.102 24111 192.168.1.102 24111\n")


@given(st.text(min_size=1, max_size=20))
def test_plain_scalars_load_back_unchanged(s: str) -> None:
    assert yaml.safe_load(f"k: {plain(s)}") == {"k": s}
