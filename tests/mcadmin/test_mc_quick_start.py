"""The README quick start, memcache part (issue 10 item 3): a cell on the local cluster's
addresses 127.0.0.10-12, `register memcache` and `register pair`, `start memcache`, then a plain
memcached client stores and reads a value through the proxy. Here the cell is started by the
test (the quick start's `deploy` and `start css` belong to the CSS runtime commands), and the
client is what `printf 'set k 0 0 1\r\nv\r\nquit\r\n' | nc 127.0.0.1 11211` sends: raw bytes on a
socket that the proxy closes after `quit` (nc then exits)."""

from __future__ import annotations

import socket

from tests.mcadmin.mcadmin_world import World, free_port, wait_serving


def plain_client(port: int, data: bytes) -> bytes:
    """Send `data`, read until the proxy closes the connection (as nc does)."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.settimeout(10)
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_quick_start_stores_and_reads_a_value_through_the_proxy(tmp_path):
    w = World(tmp_path, hosts=("127.0.0.10", "127.0.0.11", "127.0.0.12"))
    try:
        w.start()  # register css --name cell0 127.0.0.10:P 127.0.0.10:Q ... (.11, .12)
        mc = w.memcached()
        port = free_port()
        w.px.ok("register", "memcache", "--css", "cell0")
        w.px.ok("register", "pair", "--id", "0", "--server-address", "127.0.0.1",
                "--server-port", str(mc.port), "--client-port", str(port))
        r = w.px("start", "memcache")
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
        assert w.px("status", "memcache", "--short").stdout == "0: running\n"
        wait_serving(port)  # the proxy's CSS session is open
        assert plain_client(port, b"set k 0 0 1\r\nv\r\nquit\r\n") == b"STORED\r\n"
        assert plain_client(port, b"get k\r\nquit\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
        r = w.px("stop", "memcache")
        assert (r.returncode, r.stderr) == (0, "")
        assert w.px("status", "memcache", "--short").stdout == "0: stopped\n"
    finally:
        w.close()
