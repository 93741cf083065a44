"""Rebuilding a member's Paxos state from its WAL records."""

from __future__ import annotations

from typing import Any

from .types import ZERO, Ballot


def _b(x: Any) -> Ballot:
    return (int(x[0]), int(x[1]))


class Recovered:
    """What survives a restart: promise, accepted values, decided values above a snapshot."""

    def __init__(self) -> None:
        self.promised: Ballot = ZERO
        self.accepted: dict[int, tuple[Ballot, Any]] = {}
        self.decided: dict[int, Any] = {}
        self.snap_slot = 0

    def feed(self, rec: dict) -> None:
        """Replay one WAL record (records come in write order)."""
        r = rec["r"]
        if r == "PROMISE":
            self.promised = max(self.promised, _b(rec["b"]))
        elif r == "ACCEPT":
            s, b = int(rec["s"]), _b(rec["b"])
            self.promised = max(self.promised, b)
            if s > self.snap_slot:
                self.accepted[s] = (b, rec["val"])
        elif r == "CHOSEN":
            b = _b(rec["b"])
            for s in range(int(rec["from"]), int(rec["to"]) + 1):
                acc = self.accepted.get(s)
                if s > self.snap_slot and acc is not None and acc[0] == b:
                    self.decided[s] = acc[1]
        elif r == "LEARNED":
            s = int(rec["s"])
            if s > self.snap_slot:
                self.decided[s] = rec["val"]
