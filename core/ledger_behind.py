"""Settlement behind the answer: a served call's close is queued and written in batches.

The hold taken before the call already covers the charge, and the close can
only lower what is spendable by less than it (``min(cost, hold)``), so the
customer's balance is never at risk while a close waits here. What waiting
buys: the answer goes out without the settle's write transaction in front of
it, and on SQLite the closes of a few milliseconds share one commit.

Each process keeps one queue and one writer (a greenlet under gunicorn's
gevent workers, a daemon thread elsewhere), started on first use and again
after a fork. The writer wakes on the first close, waits ``delay_s`` for more,
then writes what it holds through :func:`core.ledger.close_many`. A batch that
fails is retried close by close; a close that keeps failing is logged and
left open, and the reservation sweep later releases it (the call goes free,
it is never billed twice: the reservation flips from ``open`` once).

:func:`flush` writes everything queued now; gunicorn's ``worker_exit`` hook and
``atexit`` call it, so a worker that stops cleanly leaves nothing behind.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .ledger import Close

log = logging.getLogger("bytespike.ledger")

MAX_BATCH = 256
MAX_ATTEMPTS = 3


class Behind:
    """One process's queue of closes and the writer that drains it."""

    def __init__(self) -> None:
        self._pid = 0
        self._queue: deque[tuple[sa.Engine, Close, int]] = deque()
        self._wake = threading.Event()
        self._flushing = threading.Lock()
        self._delay_s = 0.0

    def submit(self, engine: sa.Engine, close: Close, delay_s: float) -> None:
        if self._pid != os.getpid():
            self._start()
        self._delay_s = delay_s
        self._queue.append((engine, close, 0))
        self._wake.set()

    def pending(self) -> int:
        return len(self._queue) if self._pid == os.getpid() else 0

    def _start(self) -> None:
        # After a fork the parent's writer is gone and its queue is the parent's business.
        self._pid = os.getpid()
        self._queue = deque()
        self._wake = threading.Event()
        self._flushing = threading.Lock()
        threading.Thread(target=self._run, name="ledger-behind", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self._delay_s)  # let the closes of the next few milliseconds join this batch
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the writer must outlive any one bad batch
                log.exception("ledger writer: batch failed")

    def flush(self) -> int:
        """Write every queued close now; return how many were written."""
        if self._pid != os.getpid():
            return 0
        written = 0
        with self._flushing:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                written += self._write(batch)
        return written

    def _write(self, batch: list[tuple[sa.Engine, Close, int]]) -> int:
        from .ledger import close_many

        by_engine: dict[int, list[tuple[sa.Engine, Close, int]]] = {}
        for item in batch:
            by_engine.setdefault(id(item[0]), []).append(item)
        written = 0
        for items in by_engine.values():
            engine = items[0][0]
            try:
                close_many(engine, [c for _e, c, _n in items])
                written += len(items)
                continue
            except Exception:  # noqa: BLE001 - fall back to one close at a time
                log.warning("ledger writer: a batch of %d closes failed; writing them one by one", len(items))
            for item in items:
                written += self._write_one(item)
        return written

    def _write_one(self, item: tuple[sa.Engine, Close, int]) -> int:
        from .ledger import close_many

        engine, close, attempts = item
        try:
            close_many(engine, [close])
            return 1
        except Exception:  # noqa: BLE001
            if attempts + 1 < MAX_ATTEMPTS:
                log.warning("ledger writer: close of %s failed; will retry", close[0].request_id)
                self._queue.append((engine, close, attempts + 1))
                self._wake.set()
            else:
                log.exception("ledger writer: close of %s failed %d times; its hold stays open until the sweep "
                              "releases it", close[0].request_id, MAX_ATTEMPTS)
            return 0


_behind = Behind()


def submit(engine: sa.Engine, close: Close, delay_s: float) -> None:
    _behind.submit(engine, close, delay_s)


def flush(*_args: Any) -> int:
    """Write every close this process still holds (gunicorn ``worker_exit``, ``atexit``, tests)."""
    return _behind.flush()


def pending() -> int:
    return _behind.pending()


atexit.register(flush)
