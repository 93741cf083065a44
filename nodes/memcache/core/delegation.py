"""Delegation manager (spec 3.3) as a pure state machine.

The shell asks `request(name, key, mode)`; the answer says whether the caller may use the key now
(READY, then `hold`/`unhold`) or must wait for a change, and lists actions for the shell to run
against CSS: `("lock", name, mode)`, `("release", name, write)` (write the metadata when `write`
is a Meta, delete it when it is DELETE, leave it when None; then unlock), `("unlock", name)` for
an orphaned lock, `("ns_lock",)` and `("ns_unlock",)`. The shell reports results back with
`granted`, `failed`, `released`, `ns_granted`, `ns_released`. No sockets, no clocks.

Local use of a key is exclusive (one holder at a time): requests on one key through one proxy
are serialized, which keeps backend writes and metadata in one order.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .meta import Meta

NONE, ACQ_R, R, ACQ_W, W, RECALLED, RELEASING = (
    "NONE", "ACQ_R", "R", "ACQ_W", "W", "RECALLED", "RELEASING")
READY, WAIT = "READY", "WAIT"
DELETE = "DELETE"
NS_NONE, NS_ACQ, NS_R, NS_RECALLED = "NONE", "ACQ", "R", "RECALLED"

Action = tuple[Any, ...]


@dataclass
class KeyState:
    name: str
    key: bytes
    state: str = NONE
    mode: str | None = None
    version: int = 0
    meta: Meta | None = None
    dirty: bool = False
    holders: int = 0
    poisoned: bool = False
    recall_seen: bool = False  # a recall came while our lock request was under way
    release_after_use: bool = False


class Manager:
    def __init__(self, max_items: int = 2000) -> None:
        self.max_items = max_items
        self.keys: OrderedDict[str, KeyState] = OrderedDict()  # LRU order, oldest first
        self.ns = NS_NONE
        self.flushing = False  # a local flush_all holds the name space closed

    # ---- requests --------------------------------------------------------------------------
    def request(self, name: str, key: bytes, mode: str) -> tuple[str, list[Action]]:
        if self.ns != NS_R:
            if self.ns == NS_NONE and not self.flushing:
                self.ns = NS_ACQ
                return WAIT, [("ns_lock",)]
            return WAIT, []
        ks = self.keys.get(name)
        if ks is None:
            ks = self.keys[name] = KeyState(name, key)
        self.keys.move_to_end(name)
        if ks.state == NONE:
            ks.state = ACQ_W if mode == W else ACQ_R
            return WAIT, [("lock", name, mode)]
        if ks.state in (R, W) and ks.holders == 0:
            if mode == W and ks.state == R:
                ks.state = ACQ_W
                return WAIT, [("lock", name, W)]
            return READY, []
        return WAIT, []

    def hold(self, name: str) -> KeyState:
        ks = self.keys[name]
        ks.holders += 1
        if ks.release_after_use:
            # someone waits for this key: serve the request that waited for the grant, then
            # give the key up (new local requests wait for the next grant)
            ks.release_after_use = False
            ks.state = RECALLED
        return ks

    def unhold(self, name: str) -> list[Action]:
        ks = self.keys.get(name)
        if ks is None:
            return []
        ks.holders -= 1
        acts: list[Action] = []
        if ks.holders == 0 and ks.state == RECALLED:
            acts += self._release(ks)
        return acts + self._evict()

    # ---- CSS results -----------------------------------------------------------------------
    def granted(self, name: str, mode: str, version: int, meta: Meta | None) -> list[Action]:
        ks = self.keys.get(name)
        if ks is None or ks.state not in (ACQ_R, ACQ_W):
            return [("unlock", name)]  # nobody wants it any more
        ks.state, ks.mode, ks.version, ks.meta, ks.dirty = mode, mode, version, meta, False
        if self.ns != NS_R:
            ks.state = RECALLED
            return self._release(ks)
        if ks.recall_seen:
            # the recall may name this very grant (pushed before our reply reached us): the
            # server repeats it only every recall_repeat, so honour it now rather than later
            ks.recall_seen, ks.release_after_use = False, True
        return self._evict()

    def failed(self, name: str) -> list[Action]:
        # a failed blocking lock leaves nothing held (an upgrade released R when it queued);
        # anything granted behind our back is unlocked when its recall comes (orphan rule)
        ks = self.keys.pop(name, None)
        return self._ns_drained() if ks is not None else []

    def recall(self, name: str, version: int) -> list[Action]:
        ks = self.keys.get(name)
        if ks is None or ks.state == NONE:
            return [("unlock", name)]  # an orphan grant (request timed out, granted later)
        if ks.state in (ACQ_R, ACQ_W):
            ks.recall_seen = True  # remembered: forgetting it left the other proxy waiting
            return []
        if ks.state not in (R, W) or version < ks.version:
            return []
        ks.state = RECALLED
        return self._release(ks) if ks.holders == 0 else []

    def late_grant(self, name: str) -> list[Action]:
        """A grant for a lock request we gave up on: unlock it unless the key is wanted."""
        ks = self.keys.get(name)
        if ks is None or ks.state == NONE:
            return [("unlock", name)]
        return []

    def released(self, name: str) -> list[Action]:
        ks = self.keys.get(name)
        if ks is not None and ks.state == RELEASING:
            del self.keys[name]
        return self._ns_drained()

    # ---- the name space lock ---------------------------------------------------------------
    def ns_granted(self) -> list[Action]:
        if self.ns != NS_ACQ:
            return [("ns_unlock",)]
        self.ns = NS_R
        return []

    def ns_failed(self) -> None:
        if self.ns == NS_ACQ:
            self.ns = NS_NONE

    def ns_recall(self) -> list[Action]:
        """NS recalled (a flush elsewhere, or our own): release every key, then NS."""
        if self.ns != NS_R:
            return []
        self.ns = NS_RECALLED
        acts: list[Action] = []
        for ks in list(self.keys.values()):
            if ks.state in (R, W):
                ks.state = RECALLED
                if ks.holders == 0:
                    acts += self._release(ks)
        return acts + self._ns_drained()

    def ns_released(self) -> None:
        self.ns = NS_NONE

    def _ns_drained(self) -> list[Action]:
        if self.ns == NS_RECALLED and not self.keys:
            return [("ns_unlock",)]
        return []

    # ---- helpers ---------------------------------------------------------------------------
    def _release(self, ks: KeyState) -> list[Action]:
        write: Any = None
        if ks.mode == W and ks.dirty:
            write = ks.meta if ks.meta is not None else DELETE
        ks.state = RELEASING
        return [("release", ks.name, write)]

    def _evict(self) -> list[Action]:
        acts: list[Action] = []
        if len(self.keys) <= self.max_items:
            return acts
        over = len(self.keys) - self.max_items
        for ks in list(self.keys.values()):
            if over <= 0:
                break
            if ks.state in (R, W) and ks.holders == 0:
                acts += self._release(ks)
                over -= 1
        return acts

    def reset(self) -> None:
        """Session expired: every delegation, metadata and cached value is gone."""
        self.keys.clear()
        self.ns = NS_NONE

    def counts(self) -> dict[str, int]:
        c = {"items": len(self.keys), "r": 0, "w": 0, "poisoned": 0}
        for ks in self.keys.values():
            if ks.state == R:
                c["r"] += 1
            elif ks.state == W:
                c["w"] += 1
            c["poisoned"] += ks.poisoned
        return c
