"""The cell file: host names (the admin's rule H allows them in `register css`) are resolved,
and a cell whose file names a member by host name runs.

Only `localhost` is resolved for real: it comes from /etc/hosts, so no test asks a DNS server
(nothing may leave loopback). Failures of resolution are driven through the `resolve`
argument."""

from __future__ import annotations

import asyncio
import socket

import pytest

from nodes.css.client import CssClient
from nodes.css.config import parse_cell_config, resolve_host
from nodes.css.errors import ConfigError

TEXT = """# names and addresses mixed
0 node-a 14000 node-a 14100
1 127.0.0.2 14000 127.0.0.2 14100
2 node-c 14000 127.0.0.3 14100
"""


def test_host_names_are_resolved_once_to_addresses() -> None:
    asked = []

    def resolve(name: str) -> str:
        asked.append(name)
        return {"node-a": "127.0.0.1", "node-c": "127.0.0.3"}[name]

    m = parse_cell_config(TEXT, "c.conf", resolve)
    assert m[0] == {"udp": ["127.0.0.1", 14000], "tcp": ["127.0.0.1", 14100]}
    assert m[2] == {"udp": ["127.0.0.3", 14000], "tcp": ["127.0.0.3", 14100]}
    assert asked == ["node-a", "node-a", "node-c"]  # addresses are never looked up


def test_an_unresolvable_name_names_file_line_and_host() -> None:
    def resolve(name: str) -> str:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ConfigError) as e:
        parse_cell_config(TEXT, "c.conf", resolve)
    assert str(e.value) == "c.conf:2: cannot resolve host 'node-a': Name or service not known"


@pytest.mark.parametrize("bad", ["a@b", "a:b", "a/b", "x" * 254, "a\x1bb"])
def test_what_is_neither_address_nor_host_name_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="neither an IP address nor a host name"):
        parse_cell_config(f"0 {bad} 1 127.0.0.1 2\n", "c.conf", lambda n: "127.0.0.9")


def test_two_names_of_one_endpoint_are_one_endpoint() -> None:
    text = "0 localhost 1 127.0.0.1 2\n1 127.0.0.1 1 127.0.0.2 2\n2 127.0.0.3 1 127.0.0.3 2\n"
    with pytest.raises(ConfigError, match="udp endpoint 127.0.0.1:1 used twice"):
        parse_cell_config(text, "c.conf")


def test_localhost_prefers_ipv4() -> None:
    assert resolve_host("localhost") == "127.0.0.1"


def test_a_cell_with_a_member_named_by_host_name_runs(cell) -> None:
    with open(cell.config_path) as f:
        text = f.read()
    assert text.startswith("0 127.0.0.1 ")
    with open(cell.config_path, "w") as f:
        f.write(text.replace("127.0.0.1", "localhost"))
    cell.start_all(init=True)

    async def go() -> None:
        leader = await cell.wait_leader()
        async with CssClient(cell.addrs()) as cl:
            v = await cl.write("named", b"yes")
            assert await cl.read("named") == {"data": b"yes", "version": v}
        st = (await cell.statuses())[leader]
        assert st["config_drift"] is False  # the file's name and the address agree
        assert sorted(tuple(m["udp"]) for m in st["members"])[0][0] == "127.0.0.1"
    asyncio.run(go())
