"""Hand-written YAML emitter for the reports of §4: fixed key order and the original's quoting.

PyYAML would cost its import on every one-shot command and cannot reproduce the original's
layout, so reports are emitted here; tests load every output back with yaml.safe_load_all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

# PyYAML's implicit resolvers (YAML 1.1): a plain scalar matching one of these would not load
# back as the same string, so it must be quoted.
_IMPLICIT_RE = r"""^(?:
      yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    | ~|null|Null|NULL|<<|=
    | [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
    | [-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*)
    | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    | [0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?.*
    | [-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    )$"""
# The last line is YAML 1.2's float (`1e3`): PyYAML reads it as a string, other readers do not.
_PLAIN_CHARS_RE = r"[^\W][\w./+-]*\Z"  # letters and digits of any script


@cache
def _regexes() -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    # Compiled on first use: one-shot commands that print no plain scalar never pay for them.
    return (re.compile(_IMPLICIT_RE, re.X), re.compile(_PLAIN_CHARS_RE),
            re.compile(_NON_PRINTABLE_RE))


_NON_PRINTABLE_RE = ("[^\\x09\\x0a\\x0d\\x20-\\x7e\\xa0-\\u2027\\u202a-\\ud7ff\\ue000-\\ufffd\\U00010000-\\U0010ffff]")


def dq(text: str) -> str:
    """Double-quoted with JSON escaping (a JSON string is a valid YAML one), plus escapes for
    the characters YAML refuses or folds when read raw (DEL, C1 controls, NEL, U+2028...)."""
    if text.isascii() and text.isprintable():  # the common case, without the regexes
        if '"' not in text and "\\" not in text:
            return f'"{text}"'  # what json.dumps returns for it, several times faster
        return json.dumps(text)
    quoted = json.dumps(text, ensure_ascii=False)
    return _regexes()[2].sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def sq(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def plain(text: str) -> str:
    """Plain when YAML reads it back as the same string, else double-quoted."""
    implicit, plain_chars, _ = _regexes()
    if plain_chars.match(text) and not implicit.match(text):
        return text
    return dq(text)


def scalar(value: Any, *, quote: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    return dq(value) if quote else plain(value)


def flow(items: Iterable[Any], *, quote: str = "") -> str:
    """`[a, b]`; quote="dq" or "sq" quotes every string item."""
    out = []
    for item in items:
        if isinstance(item, str) and quote == "sq":
            out.append(sq(item))
        else:
            out.append(scalar(item, quote=quote == "dq"))
    return "[" + ", ".join(out) + "]"


def flat_doc(doc: Mapping[str, Any], quoted: frozenset[str] = frozenset(),
             block: frozenset[str] = frozenset(), yes: frozenset[str] = frozenset(),
             sq_lists: frozenset[str] = frozenset()) -> str:
    """One `---` document of scalar and list values; keys in the mapping's order.

    quoted: keys whose string values (and list items) are double-quoted;
    block: list keys printed as `  - item` lines; yes: booleans printed yes/no;
    sq_lists: list keys with single-quoted items.
    """
    lines = ["---"]
    for key, value in doc.items():
        if isinstance(value, list):
            if key in block:
                lines.append(f"{key}:" if value else f"{key}: []")
                lines += [f"  - {scalar(v, quote=key in quoted)}" for v in value]
            else:
                q = "sq" if key in sq_lists else ("dq" if key in quoted else "")
                lines.append(f"{key}: {flow(value, quote=q)}")
        elif isinstance(value, bool) and key in yes:
            lines.append(f"{key}: {'yes' if value else 'no'}")
        else:
            lines.append(f"{key}: {scalar(value, quote=key in quoted)}")
    return "\n".join(lines) + "\n"


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) + "\n"
