"""Placeholder until the runtime commands land (issues #9, #10)."""

from paxoslog.errors import PaxosError


def start_css(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: start_css")


def stop_css(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: stop_css")


def status_css(session, ns, message):  # noqa: ANN001, ANN201
    raise PaxosError("not built yet: status_css")
