"""Parser of the memcached text protocol (pure): examples checked against memcached 1.6."""

from __future__ import annotations

from nodes.memcache.core.protocol import (
    BAD_CHUNK,
    BAD_DELETE,
    BAD_FORMAT,
    ERROR,
    Close,
    Command,
    Parser,
    Reply,
    strtol32,
    strtoul,
)


def items(data: bytes, item_size_max: int = 1 << 20) -> list:
    p = Parser(item_size_max)
    p.feed(data)
    out = []
    while (it := p.next()) is not None:
        out.append(it)
        if isinstance(it, Close):  # the connection ends here
            break
    return out


def test_storage_command_with_data_split_anywhere():
    data = b"set k 5 0 3\r\nabc\r\nget a b\r\n"
    for cut in range(len(data)):
        p = Parser()
        got = []
        for chunk in (data[:cut], data[cut:]):
            p.feed(chunk)
            while (it := p.next()) is not None:
                got.append(it)
        assert [(c.name, c.keys) for c in got] == [("set", [b"k"]), ("get", [b"a", b"b"])]
        assert got[0].data == b"abc" and got[0].flags == 5


def test_errors_as_memcached_writes_them():
    assert items(b"foo\r\n") == [Reply(ERROR)]
    assert items(b"get\r\n") == [Reply(ERROR)]
    assert items(b"set k 0 0\r\n") == [Reply(ERROR)]
    assert items(b"set k 0 0 x\r\n") == [Reply(BAD_FORMAT)]
    assert items(b"set k 0 0 2\r\nabc\r\n") == [Reply(BAD_CHUNK), Reply(ERROR)]
    assert items(b"get " + b"a" * 251 + b"\r\n") == [Reply(BAD_FORMAT)]
    assert items(b"delete k 5\r\n") == [Reply(BAD_DELETE)]
    assert items(b"set k 0 0 1 noreply\r\nabc\r\n") == [Reply(b"", True), Reply(ERROR)]


def test_noreply_and_numbers():
    (c,) = items(b"incr k 18446744073709551615 noreply\r\n")
    assert isinstance(c, Command) and c.noreply and c.delta == (1 << 64) - 1
    assert strtoul(b"18446744073709551616") is None
    assert strtoul(b"-1") is None and strtoul(b"-0") == 0
    assert strtoul(b"4294967296", 32) == 0  # memcached truncates flags
    assert strtol32(b"2147483648") == -(1 << 31) and strtol32(b"4294967296") == 0 and strtol32(b"-5") == -5
    assert strtol32(b"1\rx") == 1  # strtol stops at whitespace


def test_too_large_value_is_swallowed():
    got = items(b"set k 0 0 10\r\n0123456789\r\nget k\r\n", item_size_max=5)
    assert got[0].too_large and got[1].name == "get"


def test_long_lines():
    assert isinstance(items(b"x" * 3000)[0], Close)
    assert items(b"get " + b"k " * 2000) == []  # a long multi-get may still come
    assert isinstance(items(b"get " + b"k " * 40000)[0], Close)
    assert isinstance(items(b"\x80\x01\x00\x00")[0], Close)  # binary protocol
