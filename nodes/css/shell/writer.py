"""The WAL writer thread: appends and fsyncs batches in order, off the event loop.

Why a thread of its own rather than one executor job per batch: records that arrive while an
fsync runs are taken by the thread as soon as that fsync returns. With one job per batch they
waited for the loop to learn of the fsync and hand the next job over, two thread wake-ups that
cost more than the fsync itself on a busy machine (a leader's LEARNED queued behind its own
ACCEPT paid both on every write).

Order is kept: the thread writes the queued batches one group after the other, and a group's
tokens are durable once its fsync returns (an fsync covers every earlier write of the file).
After a full disk the thread takes nothing more until the loop has put the failed records and
everything queued behind them back in order (`drain_blocked`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

log = logging.getLogger("css.node")


class WalWriter:
    def __init__(self, loop: asyncio.AbstractEventLoop, write: Any, done: Any,
                 disk_full: type[Exception]) -> None:
        """`write(batch, direct) -> top` runs in the thread; `done(batch, groups, top, err)`
        is called on the loop after each group."""
        self.loop, self.write, self.done, self.disk_full = loop, write, done, disk_full
        self.cv = threading.Condition()
        self.queue: list[tuple[list, list]] = []
        self.blocked = False
        self.stopping = False
        self.thread = threading.Thread(target=self._main, name="wal", daemon=True)
        self.thread.start()

    def put(self, batch: list, direct: list) -> None:
        with self.cv:
            self.queue.append((batch, direct))
            self.cv.notify()

    def drain_blocked(self) -> tuple[int, list]:
        """Loop, after a full disk: (groups, actions) queued behind the failed group, in
        order; the thread takes work again from the next put on."""
        with self.cv:
            items, self.queue = self.queue, []
            self.blocked = False
        return len(items), [a for b, _ in items for a in b]

    def stop(self) -> None:
        with self.cv:
            self.stopping = True
            self.cv.notify()

    def _main(self) -> None:
        while True:
            with self.cv:
                while (not self.queue or self.blocked) and not self.stopping:
                    self.cv.wait()
                if self.stopping:
                    return
                items, self.queue = self.queue, []
            batch = [a for b, _ in items for a in b]
            direct = [x for _, d in items for x in d]
            err = None
            top = 0
            try:
                top = self.write(batch, direct)
            except self.disk_full as e:
                with self.cv:
                    self.blocked = True
                err = e
            except BaseException as e:
                # after a failed fsync the page cache cannot be trusted: never retry
                log.critical("durable write failed: %s", e)
                os._exit(13)
            try:
                self.loop.call_soon_threadsafe(self.done, batch, len(items), top, err)
            except RuntimeError:
                return  # the loop is closed: the process is ending
