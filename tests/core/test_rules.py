from __future__ import annotations

import pytest

from paxoslog.core import rules
from paxoslog.errors import Refused


@pytest.mark.parametrize("text,value", [("12", 12), ("-3", -3), ("+4", 4), ("0", 0)])
def test_int_accepts_sign_and_digits(text: str, value: int) -> None:
    assert rules.parse_int(text) == value


@pytest.mark.parametrize("text", ["1_0", " 12", "12 ", "١٢", "", "1.0", "0x1"])
def test_int_rejects_what_python_int_would_take(text: str) -> None:
    assert rules.parse_int(text) is None


@pytest.mark.parametrize("text,message", [
    ("h:1:2", "non-numeric value has been specified for the port number"),
    ("h", "non-numeric value has been specified for the port number"),
    ("h:x", "non-numeric value has been specified for the port number"),
    ("a@b:1", "illegal host name"),
    (":1", "illegal host name"),
    ("h:0", "port number should be 1 or more"),
    ("h:65536", "port number should be 65535 or less"),
])
def test_endpoint_rule(text: str, message: str) -> None:
    with pytest.raises(Refused, match=f"^{message}$"):
        rules.parse_endpoint(text)


def test_groups_drop_empty_and_repeated_names() -> None:
    assert rules.parse_groups("a::b:a:") == ("a", "b")
    assert rules.parse_groups("") == ()


def test_cell_names_are_ascii_only() -> None:
    rules.check_cell_name("css_0")
    for bad in ("cssé", "css-1", "", "ｃｓｓ"):
        with pytest.raises(Refused, match="illegal css name"):
            rules.check_cell_name(bad)
