"""Placeholder until the runtime commands land (issues #9, #10)."""

from paxoslog.errors import PaxosError


def install(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: install")
