"""Bad input: oversized keys, lines and values, a client leaving mid-value, 1,000 idle
connections. Each gets memcached's own error line (or memcached's close) and the proxy keeps
serving everyone else."""

from __future__ import annotations

import socket
import time

from mc_procs import talk

OK_PROBE = b"set bi 0 0 2\r\nok\r\nget bi\r\n"
OK_REPLY = b"STORED\r\nVALUE bi 0 2\r\nok\r\nEND\r\n"


def both(env, data: bytes, until: bytes | None = None) -> tuple[bytes, bytes]:
    return talk(env.mc.port, data, until), talk(env.proxy.port, data, until)


def test_oversized_key_in_each_command(env):
    long = b"k" * 251
    for req in (b"get " + long + b"\r\n", b"gets a " + long + b"\r\n",
                b"set " + long + b" 0 0 1\r\nx\r\n", b"delete " + long + b"\r\n",
                b"incr " + long + b" 1\r\n", b"touch " + long + b" 1\r\n"):
        direct, proxied = both(env, req)
        assert proxied == direct and proxied.startswith(b"CLIENT_ERROR bad command line format")
    assert talk(env.proxy.port, OK_PROBE, b"END\r\n") == OK_REPLY


def test_oversized_value_is_consumed_and_refused(env):
    big = b"v" * ((1 << 20) + 10)
    req = b"set bv 0 0 %d\r\n%s\r\nget bv\r\n" % (len(big), big)
    assert talk(env.proxy.port, b"set bv 0 0 1\r\no\r\n", b"\r\n") == b"STORED\r\n"
    out = talk(env.proxy.port, req, b"END\r\n", timeout=15)
    # the data block is swallowed (not read as commands) and, as memcached does for a set,
    # the old value is gone
    assert out == b"SERVER_ERROR object too large for cache\r\nEND\r\n"


def test_overlong_lines(env):
    # a non-get line over 2048 bytes without a newline: memcached closes the connection
    assert talk(env.proxy.port, b"set " + b"x" * 3000, b"<EOF>") == b"<EOF>"
    # a multi-get over 64 KiB is refused with a line, then closed
    huge = b"get " + b"key " * 20000
    assert talk(env.proxy.port, huge, b"<EOF>") == b"CLIENT_ERROR line too long\r\n<EOF>"
    # a long multi-get within the limit is served
    keys = b" ".join(b"bi" for _ in range(5000))
    talk(env.proxy.port, OK_PROBE, b"END\r\n")
    out = talk(env.proxy.port, b"get " + keys + b"\r\n", b"END\r\n", timeout=30)
    assert out == b"VALUE bi 0 2\r\nok\r\n" * 5000 + b"END\r\n"


def test_malformed_commands_and_binary_protocol(env):
    for req in (b"bogus\r\n", b"\r\n", b"set a b c d\r\n", b"incr k x\r\n",
                b"delete k 7\r\n", b"flush_all soon\r\n", b"verbosity\r\n", b"cas k 0 0 1\r\n"):
        direct, proxied = both(env, req)
        assert proxied == direct, req
    # binary protocol (v1 non-goal): closed, logged
    assert talk(env.proxy.port, b"\x80\x0a\x00\x00" + b"\x00" * 20, b"<EOF>") == b"<EOF>"
    assert "binary protocol" in env.proxy.log()
    assert talk(env.proxy.port, OK_PROBE, b"END\r\n") == OK_REPLY


def test_client_disconnecting_mid_value(env):
    for cut in (5, 20, 1000):
        s = socket.create_connection(("127.0.0.1", env.proxy.port))
        s.sendall((b"set mid 0 0 5000\r\n" + b"z" * 5000)[:cut])
        s.close()
    assert talk(env.proxy.port, b"get mid\r\n", b"END\r\n") == b"END\r\n"  # nothing stored
    assert talk(env.proxy.port, OK_PROBE, b"END\r\n") == OK_REPLY


def test_thousand_idle_connections(env):
    socks = []
    try:
        for _ in range(1000):
            socks.append(socket.create_connection(("127.0.0.1", env.proxy.port), 10))
        t0 = time.monotonic()
        assert talk(env.proxy.port, OK_PROBE, b"END\r\n") == OK_REPLY
        assert time.monotonic() - t0 < 5
        # and every idle connection still works
        for s in socks[::100]:
            s.sendall(b"get bi\r\n")
            s.settimeout(10)
            buf = b""
            while not buf.endswith(b"END\r\n"):
                buf += s.recv(4096)
            assert buf == b"VALUE bi 0 2\r\nok\r\nEND\r\n"
    finally:
        for s in socks:
            s.close()
    assert env.proxy.proc.poll() is None
