"""The read timeout of a relayed upstream stream, kept by one timer per process instead of one per read.

A gevent socket with a timeout arms and disarms a timer for every read that has to
wait: for a stream, once per event. A stream that ``watch`` takes over reads with
no socket timeout instead, and stamps the time each read starts waiting (0 when it
is not reading); a timer that ticks every ``TICK_S`` throws ``TimeoutError`` into
the greenlet of any stream whose read has waited longer than its timeout. A stream
busy writing to its caller is never interrupted: only a waiting read is.

Without gevent (a plain threaded server) nothing is taken over and the socket
keeps its own timeout.
"""

from __future__ import annotations

import os
import time
from typing import Any

try:
    import gevent
    from gevent import socket as gsocket
except ImportError:  # pragma: no cover - gevent is a requirement; the threaded path stays correct without it
    gevent = None
    gsocket = None

TICK_S = 0.25
Stamp = list[float]  # [monotonic time the current read started waiting, or 0.0]

_watched: dict[int, tuple[Any, Stamp, float]] = {}
_timer: tuple[int, Any] | None = None  # (pid, the running timer)


def watch(sock: Any, stamp: Stamp) -> bool:
    """Take ``sock``'s read timeout over for the current greenlet; False (nothing changed) if it cannot."""
    if gsocket is None or not isinstance(sock, gsocket.socket):
        return False
    timeout = sock.gettimeout()
    if not timeout:
        return False
    _start()
    _watched[id(stamp)] = (gevent.getcurrent(), stamp, float(timeout))
    sock.settimeout(None)
    return True


def unwatch(stamp: Stamp) -> None:
    stamp[0] = 0.0  # not reading: a throw already scheduled for it is dropped (``_expire``)
    _watched.pop(id(stamp), None)


def _start() -> None:
    global _timer
    pid = os.getpid()
    if _timer is not None and _timer[0] == pid:
        return
    loop = gevent.get_hub().loop
    timer = loop.timer(TICK_S, TICK_S, ref=False)  # never what keeps a process running
    timer.start(_tick)
    _timer = (pid, timer)


def _tick() -> None:
    now = time.monotonic()
    stale = [key for key, (_, stamp, limit) in _watched.items() if stamp[0] and now - stamp[0] > limit]
    for key in stale:
        glet, stamp, limit = _watched.pop(key)
        gevent.get_hub().loop.run_callback(_expire, glet, stamp, limit)


def _expire(glet: Any, stamp: Stamp, limit: float) -> None:
    """Throw into ``glet`` only if it still waits in the read found too long: by the time this runs it may
    have got its bytes, started another read, or left the stream (then it is blocked elsewhere, untouchable)."""
    if stamp[0] and time.monotonic() - stamp[0] > limit:
        glet.throw(TimeoutError(f"upstream read timed out after {limit:g} s"))
