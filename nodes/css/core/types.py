"""Inputs, actions and timing shared by the pure core and its shells."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Ballot = tuple[int, int]  # (round, member number); compared as tuples
ZERO: Ballot = (0, -1)


@dataclass
class Timing:
    """Timing values of spec 2.11, in seconds: failover under 1 s (issue 11)."""

    tick: float = 0.01
    heartbeat: float = 0.05
    lease: float = 0.5
    election_min: float = 0.6
    election_max: float = 1.0
    rho: float = 0.05
    retransmit: float = 0.1
    pipeline_window: int = 64
    drain_timeout: float = 5.0
    recall_repeat: float = 1.0
    catchup_batch: int = 512
    snapshot_every: int = 10000
    log_retain: int = 5000
    max_batch: int = 256
    max_state_bytes: int = 256 << 20  # writes beyond it fail with ENOSPC (spec 2.5)
    # a learner the leader has not heard from for this long is removed (remove_learner): a
    # join whose process died or was forged must not block every later replace
    learner_timeout: float = 60.0

    def check(self) -> None:
        if not self.lease < self.election_min <= self.election_max:
            raise ValueError("timing: lease must be below election_min <= election_max")
        if min(self.tick, self.heartbeat, self.retransmit, self.learner_timeout) <= 0:
            raise ValueError("timing: tick, heartbeat, retransmit and learner_timeout must be "
                             "positive")
        if self.learner_timeout <= 5 * self.heartbeat:
            # a live learner answers every heartbeat; a shorter timeout would drop it on loss
            raise ValueError("timing: learner_timeout must be above 5 heartbeat intervals")


# ---- inputs -------------------------------------------------------------------------------
@dataclass
class Peer:
    frm: int
    msg: dict


@dataclass
class Client:
    conn: Any
    msg: dict


@dataclass
class Tick:
    pass


@dataclass
class Flush:
    """End of one shell loop iteration: propose what was batched."""


@dataclass
class Closed:
    conn: Any


# ---- actions ------------------------------------------------------------------------------
@dataclass
class Persist:
    records: list[dict]
    token: int
    # nothing waits for it (a follower's CHOSEN, which spec 2.5 lets be written lazily): in order,
    # never fsynced on its own; the next fsync of the same WAL makes it durable
    lazy: bool = False


@dataclass
class Send:
    to: int
    msg: dict
    after: int | None = None


@dataclass
class Reply:
    conn: Any
    msg: dict
    after: int | None = None


@dataclass
class Push:
    conn: Any
    msg: dict


@dataclass
class TakeSnapshot:
    """Store `blob` (state after `slot`) and start a new WAL segment that begins with `carry`."""

    slot: int
    blob: bytes
    carry: list[dict]
    token: int
    installed: bool = False  # True when the snapshot came from a peer (catch-up)
    state: dict | None = None  # a Service.cut() to encode off the loop, instead of `blob`


@dataclass
class OfferSnapshot:
    """Member `to` needs log this member no longer keeps: offer it the newest snapshot file
    (the shell streams it in chunks, spec 2.7)."""

    to: int


@dataclass
class Fatal:
    reason: str
    exit_code: int = 11


@dataclass
class Out:
    """What one call of a core handler produced."""

    actions: list = field(default_factory=list)
    applied: list = field(default_factory=list)  # (slot, value, token|None) in slot order
    became_leader: bool = False
    stepped_down: bool = False
    installed: tuple[int, bytes] | None = None  # snapshot taken from a peer
