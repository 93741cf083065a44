"""REV syntax of §3.11: HEAD, HEAD~k, a revision number, or a commit id prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from paxoslog.errors import LogError
from paxoslog.store.gitlog import EventLog

# Bounded: int() refuses more than 4300 digits, and no log has 10**18 revisions.
_HEAD_K = re.compile(r"HEAD(?:~([0-9]{1,18}))?\Z")
_NUMBER = re.compile(r"[0-9]{1,6}\Z")
_PREFIX = re.compile(r"[0-9a-fA-F]{7,40}\Z")


@dataclass(frozen=True)
class Rev:
    number: int  # 0 is the empty topology before the first event
    commit: bytes | None


def resolve(log: EventLog, text: str, head_rev: int | None = None) -> Rev:
    head = log.head()
    m = _HEAD_K.match(text)
    if m:
        steps = int(m.group(1) or 0)
        history = log.history(head)
        if steps > len(history):
            raise LogError(f"unknown revision: {text}")
        number = len(history) - steps
        return Rev(number, history[number - 1] if number else None)
    if _NUMBER.match(text):
        history = log.history(head)
        number = int(text)
        if number > len(history):
            raise LogError(f"unknown revision: {text}")
        return Rev(number, history[number - 1] if number else None)
    if _PREFIX.match(text):
        prefix = text.lower().encode()
        history = log.history(head)
        hits = [i for i, sha in enumerate(history, 1) if sha.startswith(prefix)]
        if len(hits) > 1:
            raise LogError(f"ambiguous revision: {text}")
        if hits:
            return Rev(hits[0], history[hits[0] - 1])
    raise LogError(f"unknown revision: {text}")
