"""psycopg's wait for a statement's socket, under gevent: one io watcher per wait.

psycopg drives each query with a generator that says what it waits for (read,
write, both) and a wait function that answers when the socket is ready. With
``select`` patched by gevent it picks ``wait_poll``, which builds a ``poll``
object per statement that gevent emulates with watchers started, stopped and a
timer every 0.1 s (for Ctrl-C, which a gevent worker does not need). ``install``
puts a wait in its place that arms one io watcher per wait and passes on the
events it fired with; a deadline, when psycopg gives one, is kept by a gevent
``Timeout``. Without gevent's patching nothing is changed.
"""

from __future__ import annotations

import time
from typing import Any, Generator

from psycopg import errors, waiting

_EVENTS = {waiting.WAIT_R: 1, waiting.WAIT_W: 2, waiting.WAIT_RW: 3}  # libev/libuv READ=1, WRITE=2


def wait_gevent(gen: Generator[Any, Any, Any], fileno: int, interval: float | None = 0.0,
                timeout: float | None = None) -> Any:
    """``psycopg.waiting.wait``'s contract, on the gevent hub (``interval`` is not needed there)."""
    import gevent
    from gevent.hub import Waiter, get_hub

    loop = get_hub().loop
    deadline = time.monotonic() + timeout if timeout is not None else None
    try:
        state = next(gen)
        while True:
            watcher = loop.io(fileno, _EVENTS[state])
            waiter = Waiter()
            watcher.start(waiter.switch, pass_events=True)
            try:
                if deadline is None:
                    fired = waiter.get()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise errors._WaitTimeout("wait timeout expired")
                    with gevent.Timeout(left, errors._WaitTimeout("wait timeout expired")):
                        fired = waiter.get()
            finally:
                watcher.stop()
                watcher.close()
            ready = (waiting.READY_R if fired & 1 else 0) | (waiting.READY_W if fired & 2 else 0)
            state = gen.send(ready or waiting.READY_NONE)
    except StopIteration as done:
        return done.value


def install() -> bool:
    """Use ``wait_gevent`` for psycopg's statements when gevent has patched ``select``; True if it did."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a requirement
        return False
    if not monkey.is_module_patched("select"):
        return False
    waiting.wait = wait_gevent
    return True
