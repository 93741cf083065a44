"""PAXOS memcache proxy (`paxos-memcache`): memcached's text protocol, coherent through CSS."""

VERSION = "0.1.0"
