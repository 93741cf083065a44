"""A multi-host failure is one line per host; the shell prefixes each with `ERROR: `."""

from __future__ import annotations

import io

from paxoslog.app.session import Session
from paxoslog.cli.dispatch import fail
from paxoslog.errors import RemoteError
from paxoslog.store.home import Home


def test_each_failed_host_is_its_own_error_line(tmp_path) -> None:
    err = io.StringIO()
    session = Session(Home(str(tmp_path)), out=io.StringIO(), err=err)
    assert fail(session, RemoteError("h1: cannot connect\nh2: timeout: x"), True) == 1
    assert err.getvalue() == "ERROR: h1: cannot connect\nERROR: h2: timeout: x\n"
    err.truncate(0)
    err.seek(0)
    fail(session, RemoteError("h1: cannot connect\nh2: timeout: x"), False)
    assert err.getvalue() == "h1: cannot connect\nh2: timeout: x\n"
