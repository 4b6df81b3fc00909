"""Group commit: a call's close is written in line, and the closes that meet share one transaction.

``commit(engine, close, write)`` returns once the transaction that carries the
close has committed (or raises if it could not be written); ``write`` is the
ledger's ``close_many``, which writes a group in one transaction. Per process
and engine there is at most one transaction of closes in progress:

- a close that finds nothing in progress commits at once: no batching delay
  (under gevent, one cooperative yield lets greenlets already runnable join
  it), so
  a lone call pays one round trip (PostgreSQL) or one short ``BEGIN
  IMMEDIATE`` (SQLite);
- closes that arrive while a commit is in progress queue; when it ends, the
  first of them takes the whole queue (up to ``MAX_BATCH``) into the next
  transaction, and each caller wakes when its own transaction has committed.

Under gunicorn's gevent workers the queue's lock and events are gevent's
(``threading`` is patched before the app loads; the state is built per
process on first use, after the fork); elsewhere they are plain threads'.

A group that fails is written again close by close, each in its own
transaction: one bad close cannot fail its neighbours, and a passing fault
(a lock timeout, a deadlock victim, a dropped connection) gets a second try.
A close that fails again raises to its caller, which answers an error and
releases the hold: no call is answered as a success without its charge
(``gateway.pipeline.settle``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Callable

from . import metrics

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .ledger import Close

log = logging.getLogger("bytespike.ledger")

# Writes a group of closes in one transaction; per close, whether it flipped its reservation.
Write = Callable[["sa.Engine", "list[Close]"], "list[bool]"]

MAX_BATCH = 256


class _Slot:
    """One close waiting for its transaction."""

    __slots__ = ("close", "wake", "finished", "result", "error")

    def __init__(self, close: Close) -> None:
        self.close = close
        self.wake = threading.Event()
        self.finished = False
        self.result = False
        self.error: BaseException | None = None

    def outcome(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    """One engine's queue of closes in this process and the rule that hands the writing on."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._queue: deque[_Slot] = deque()
        self._busy = False
        self.transactions = 0  # groups written in one transaction (tests, bench)
        self.closes = 0
        self._cooperative = _gevent_sleep()

    def commit(self, close: Close, write: Write) -> bool:
        """Write ``close`` with whatever else is waiting (by ``write``); True if it flipped its reservation."""
        slot = _Slot(close)
        with self._lock:
            self._queue.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.wake.wait()  # woken when written, or to lead the next group
            if slot.finished:
                return slot.outcome()
        elif self._cooperative is not None:
            # Under gevent, one cooperative yield (no wait): greenlets already runnable join this
            # group, as SQLite's commit blocks the worker whole and none could arrive during it.
            # Alone, this returns at once. Threads need none: they arrive during the commit.
            self._cooperative(0)
        self._lead(write)
        return slot.outcome()

    def _lead(self, write: Write) -> None:
        """Write the queue's head group (this caller's close is its first), then hand over or stand down."""
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
        try:
            self._write(batch, write)
        finally:
            for slot in batch:
                if not slot.finished:  # interrupted mid-write: its caller must not take it as written
                    slot.error = slot.error or RuntimeError("the settlement's commit was interrupted")
                    slot.finished = True
            with self._lock:
                nxt = self._queue[0] if self._queue else None
                self._busy = nxt is not None
            for slot in batch[1:]:
                slot.wake.set()
            if nxt is not None:
                nxt.wake.set()  # it leads the next group

    def _write(self, batch: list[_Slot], write: Write) -> None:
        try:
            results = write(self.engine, [s.close for s in batch])
        except Exception:  # noqa: BLE001 - written again one by one below
            log.warning("ledger: a group of %d closes failed; writing them one by one", len(batch), exc_info=True)
        else:
            self.transactions += 1
            self.closes += len(batch)
            metrics.ledger_batch(len(batch))
            for slot, done in zip(batch, results, strict=True):
                slot.result, slot.finished = done, True
            return
        for slot in batch:
            try:
                (slot.result,) = write(self.engine, [slot.close])
                self.transactions += 1
                self.closes += 1
            except Exception as err:  # noqa: BLE001 - raised to the caller, who answers an error
                log.error("ledger: close of %s failed twice: %s", slot.close[0].request_id, err)
                slot.error = err
            slot.finished = True


def _gevent_sleep() -> Callable[[float], None] | None:
    """gevent's sleep when this process runs greenlets (gunicorn's gevent worker patches threading)."""
    try:
        from gevent import monkey, sleep
    except ImportError:  # pragma: no cover - gevent is a dependency; plain threads need no yield
        return None
    return sleep if monkey.is_module_patched("threading") else None


_pid = 0
_groups: dict[int, GroupCommit] = {}


def group_for(engine: sa.Engine) -> GroupCommit:
    """This process's committer for ``engine`` (built anew after a fork)."""
    global _pid
    if _pid != os.getpid():
        _groups.clear()
        _pid = os.getpid()
    group = _groups.get(id(engine))
    if group is None or group.engine is not engine:
        group = _groups[id(engine)] = GroupCommit(engine)
    return group


def commit(engine: sa.Engine, close: Close, write: Write) -> bool:
    """Write ``close`` in line with ``write``; returns once it has committed (True: it flipped its reservation)."""
    return group_for(engine).commit(close, write)
