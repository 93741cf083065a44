"""Placeholder until the runtime commands land (issues #9, #10)."""

from paxoslog.errors import PaxosError


def start_memcache(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: start_memcache")


def stop_memcache(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: stop_memcache")


def status_memcache(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: status_memcache")


def apply_pair(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: apply_pair")
