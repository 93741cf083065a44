"""libmemcached's conformance tester (`memccapable`, Debian libmemcached-tools), ASCII mode:
every test it passes against memcached itself passes through the proxy."""

from __future__ import annotations

import re
import subprocess

from mc_procs import Memcached


def run_capable(port: int) -> dict[str, str]:
    out = subprocess.run(["memccapable", "-h", "127.0.0.1", "-p", str(port), "-a", "-t", "10"],
                         capture_output=True, text=True, timeout=300).stdout
    return dict(re.findall(r"^(ascii [\w ]+?)\s+\[(\w+)\]", out, re.M))


def test_memccapable_ascii_through_the_proxy(fenv):
    direct = Memcached().start()
    try:
        reference = run_capable(direct.port)
    finally:
        direct.kill()
    passed = {t for t, r in reference.items() if r == "pass"}
    assert len(passed) >= 25, reference
    proxied = run_capable(fenv.proxy.port)
    assert {t: proxied.get(t) for t in passed} == {t: "pass" for t in passed}
