"""The connections the ledger's hot writes run on: pooled ones, kept checked out per process.

A pool checkout and its return (the return's reset included) cost more than a
SQLite statement, and each call makes two ledger writes; ``connection(engine)``
hands out a connection kept from the last write instead (``Kept``). PostgreSQL
keeps one: the server allows about a hundred connections for every worker, node
and command together, and a kept one sits beside the pool's own idle ones. One is
what a lone call's reservation and settlement take in turn (each a round trip).
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


class Kept:
    """Pooled connections one engine's ledger writes keep checked out in this process.

    ``take`` hands one out (an idle one, else a fresh checkout) and ``give`` takes it
    back; a write that raised invalidates its connection instead (``drop``), so a broken
    one is never used again. Kept connections stay checked out, so the pool's size still
    bounds what the process opens. At most ``IDLE`` are kept (``IDLE_POSTGRES``); the
    rest go back to the pool, as does one older than ``RECYCLE`` seconds (the pool then
    recycles it) and every one once the engine's pool is replaced (``engine.dispose()``).
    Holders are the group committers, each with at most one write in progress, so a
    handful serves a process.
    """

    IDLE = 4
    IDLE_POSTGRES = 1
    RECYCLE = 1800.0

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.pool = engine.pool
        self.postgres = engine.dialect.name == "postgresql"
        self.keep = self.IDLE_POSTGRES if self.postgres else self.IDLE  # how many stay kept between writes
        self.idle: list[tuple[Any, float]] = []

    def take(self) -> tuple[Any, float]:
        """(the pool's connection, when it was taken): ``.driver_connection`` is the driver's."""
        if self.pool is not self.engine.pool:  # disposed: the old pool's connections go back to it
            self.close()
            self.pool = self.engine.pool
        now = time.monotonic()
        while self.idle:
            raw, born = self.idle.pop()
            if now - born < self.RECYCLE:
                return raw, born
            self._return(raw)
        raw = self.engine.raw_connection()
        if raw.driver_connection is None:  # only a connection already closed has none
            raw.close()
            raise RuntimeError("the pool handed out a connection without its driver connection")
        if self.postgres:
            try:
                raw.driver_connection.autocommit = True  # kept so: each statement is its own transaction
            except BaseException:
                drop(raw)
                raise
        return raw, now

    def give(self, raw: Any, born: float) -> None:
        if len(self.idle) < self.keep and self.pool is self.engine.pool:
            self.idle.append((raw, born))
        else:
            self._return(raw)

    def close(self) -> None:
        while self.idle:
            self._return(self.idle.pop()[0])

    def _return(self, raw: Any) -> None:
        """Back to the pool, in the pool's mode (no autocommit); a connection that will not switch is dropped."""
        if self.postgres:
            try:
                raw.driver_connection.autocommit = False
            except Exception:  # noqa: BLE001 - closed, broken or mid-query: never pooled again
                drop(raw)
                return
        raw.close()


def drop(raw: Any) -> None:
    """Invalidate a pool's connection: closed, never handed out again."""
    try:
        raw.invalidate()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
        pass


_kept: weakref.WeakKeyDictionary[sa.Engine, Kept] = weakref.WeakKeyDictionary()
os.register_at_fork(after_in_child=_kept.clear)  # a child never uses its parent's connections


def release(engine: sa.Engine) -> None:
    """Give ``engine``'s kept connections back to its pool (before ``engine.dispose()``, which closes them)."""
    store = _kept.pop(engine, None)
    if store is not None:
        store.close()


def kept(engine: sa.Engine) -> Kept:
    """This process's kept connections of ``engine``."""
    store = _kept.get(engine)
    if store is None:
        store = _kept[engine] = Kept(engine)
    return store


@contextlib.contextmanager
def connection(engine: sa.Engine) -> Iterator[Any]:
    """A kept pool connection for one write (``.driver_connection``, and ``.info`` that lives as long):
    given back after it, invalidated if the write raised."""
    store = kept(engine)
    raw, born = store.take()
    try:
        yield raw
    except BaseException:
        drop(raw)
        raise
    store.give(raw, born)


def held(raw: Any, key: str, make: Callable[[Any], T]) -> T:
    """What ``make`` built for ``raw``'s driver connection, kept in the pool's ``info`` of it.

    ``info`` lives with the pool's record of the connection; a record that reconnected holds a
    new driver connection, and gets a new one built.
    """
    conn = raw.driver_connection
    pair = raw.info.get(key)
    if pair is None or pair[0] is not conn:
        pair = raw.info[key] = (conn, make(conn))
    return pair[1]  # type: ignore[no-any-return]
