"""Group commit: a call's ledger write is made in line, and the writes that meet share one transaction.

``commit(engine, item, write)`` returns once the transaction that carries the
item has committed (or raises if it could not be written); ``write`` writes a
group in one transaction and returns each item's result: the ledger's
``close_many`` for settlements and releases, ``reserve_many`` (``kind=
"reserve"``) for reservations. Per process, engine and kind there is at most
one transaction in progress:

- a write that finds nothing in progress commits at once: no batching delay
  (under gevent, one cooperative yield lets greenlets already runnable join
  it), so a lone call pays one round trip (PostgreSQL) or one short ``BEGIN
  IMMEDIATE`` (SQLite);
- writes that arrive while a commit is in progress queue; when it ends, the
  first of them takes the whole queue (up to ``MAX_BATCH``) into the next
  transaction, and each caller wakes when its own transaction has committed.

Under gunicorn's gevent workers the queue's lock and events are gevent's
(``threading`` is patched before the app loads; the state is built per
process on first use, after the fork); elsewhere they are plain threads'.

A group that fails is written again item by item, each in its own
transaction: one bad item cannot fail its neighbours, and a passing fault
(a lock timeout, a deadlock victim, a dropped connection) gets a second try.
An item that fails again raises to its caller, which answers an error, free
(a failed close's hold is released): no call is answered as a success
without its charge (``gateway.pipeline.settle``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from . import metrics

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("bytespike.ledger")

T = TypeVar("T")  # one write: a close, or a reservation's parameters
R = TypeVar("R")  # its result: whether the close flipped its reservation, or the reservation's verdict

# Writes a group in one transaction; per item, its result.
Write = Callable[["sa.Engine", "list[T]"], "list[R]"]

MAX_BATCH = 256


class _Slot(Generic[T, R]):
    """One write waiting for its transaction; ``wake`` is made only for a write that waits (a leader never does)."""

    __slots__ = ("item", "wake", "finished", "result", "error")

    def __init__(self, item: T) -> None:
        self.item = item
        self.wake: threading.Event | None = None
        self.finished = False
        self.result: R | None = None
        self.error: BaseException | None = None

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set whenever no error is


class GroupCommit(Generic[T, R]):
    """One engine's queue of writes of one kind in this process and the rule that hands the writing on."""

    def __init__(self, engine: sa.Engine, kind: str = "close") -> None:
        self.engine = engine
        self.kind = kind
        self._lock = threading.Lock()
        self._queue: deque[_Slot[T, R]] = deque()
        self._busy = False
        self.transactions = 0  # groups written in one transaction (tests, bench)
        self.written = 0  # items written
        self._cooperative = _gevent_sleep()

    def commit(self, item: T, write: Write[T, R], *, alone: bool = False) -> R:
        """Write ``item`` with whatever else is waiting (by ``write``); its result.

        ``alone``: the caller knows no other call in this process could join (none holds or
        is taking a hold), so a leader skips its cooperative yield.
        """
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            lead = not self._busy
            self._busy = True
            if not lead:
                slot.wake = threading.Event()  # under the lock: whoever wakes it sees it
        if slot.wake is not None:
            slot.wake.wait()  # woken when written, or to lead the next group
            if slot.finished:
                return slot.outcome()
        elif self._cooperative is not None and not alone:
            # Under gevent, one cooperative yield (no wait): greenlets already runnable join this
            # group, as SQLite's commit blocks the worker whole and none could arrive during it.
            # Alone, this returns at once. Threads need none: they arrive during the commit.
            self._cooperative(0)
        self._lead(write)
        return slot.outcome()

    def _lead(self, write: Write[T, R]) -> None:
        """Write the queue's head group (this caller's item is its first), then hand over or stand down."""
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
                _set(slot)
            if nxt is not None:
                _set(nxt)  # it leads the next group

    def _write(self, batch: list[_Slot[T, R]], write: Write[T, R]) -> None:
        try:
            results = write(self.engine, [s.item for s in batch])
        except Exception:  # noqa: BLE001 - written again one by one below
            log.warning("ledger: a group of %d %ss failed; writing them one by one", len(batch), self.kind,
                        exc_info=True)
        else:
            self.transactions += 1
            self.written += len(batch)
            if self.kind == "close":
                metrics.ledger_batch(len(batch))
            for slot, done in zip(batch, results, strict=True):
                slot.result, slot.finished = done, True
            return
        for slot in batch:
            try:
                (slot.result,) = write(self.engine, [slot.item])
                self.transactions += 1
                self.written += 1
            except Exception as err:  # noqa: BLE001 - raised to the caller, who answers an error
                log.error("ledger: %s of %s failed twice: %s", self.kind, _request_id(slot.item), err)
                slot.error = err
            slot.finished = True


def _set(slot: _Slot[Any, Any]) -> None:
    """Wake a waiting write (every slot but a leader's first has its event, made when it queued)."""
    if slot.wake is not None:
        slot.wake.set()


class Holds:
    """How many holds this process has taken and not yet closed: a hint for the yield, never a figure.

    With none but a call's own, no call here could join its group commit, so the leader skips
    its cooperative yield. A hold handed to a task may close in another process (the count
    then stays high: the yield is kept); one closed here but taken elsewhere stops at zero.
    """

    def __init__(self) -> None:
        self.open = 0

    def reserving(self) -> bool:
        """A reservation starts (counted from here on); whether it is alone."""
        alone = self.open <= 0
        self.open += 1
        return alone

    def closing(self) -> bool:
        """Whether a close is alone (its own hold the only one)."""
        return self.open <= 1

    def dropped(self) -> None:
        """A hold closed, or a reservation refused or failed."""
        self.open = max(0, self.open - 1)


holds = Holds()


def _gevent_sleep() -> Callable[[float], None] | None:
    """gevent's sleep when this process runs greenlets (gunicorn's gevent worker patches threading)."""
    if not metrics.greenlets_only():  # plain threads need no yield
        return None
    from gevent import sleep

    pause: Callable[[float], None] = sleep
    return pause


def _request_id(item: Any) -> str:
    """The request an item belongs to, for the log: a close's hold, or a reservation's parameters."""
    first = item[0]
    return str(first["rid"] if isinstance(first, dict) else first.request_id)


_pid = 0
_groups: dict[tuple[int, str], GroupCommit[Any, Any]] = {}


def group_for(engine: sa.Engine, kind: str = "close") -> GroupCommit[Any, Any]:
    """This process's committer of ``kind`` for ``engine`` (built anew after a fork)."""
    global _pid
    if _pid != os.getpid():
        _groups.clear()
        _pid = os.getpid()
    group = _groups.get((id(engine), kind))
    if group is None or group.engine is not engine:
        group = _groups[(id(engine), kind)] = GroupCommit(engine, kind)
    return group


def commit(engine: sa.Engine, item: T, write: Write[T, R], kind: str = "close", *, alone: bool = False) -> R:
    """Write ``item`` in line with ``write``; returns its result once it has committed."""
    group: GroupCommit[T, R] = group_for(engine, kind)
    return group.commit(item, write, alone=alone)
