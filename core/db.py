"""Engine and sessions: created lazily in each process, never at import or in create_app.

gunicorn forks workers after loading the app; a connection pool opened before
the fork would be shared by every worker. ``Database`` therefore builds its
engine on first use and rebuilds it when it finds itself in a new process.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from core import ledger_conn, pgwait


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.session = scoped_session(sessionmaker(expire_on_commit=False))

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            with self._lock:
                if self._engine is None or self._pid != os.getpid():
                    self._engine = self._make_engine()
                    self._pid = os.getpid()
                    self.session.remove()
                    self.session.configure(bind=self._engine)
        return self._engine

    def _make_engine(self) -> Engine:
        kw: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            kw["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            pgwait.install()  # under gevent: one io watcher per statement wait, not a poll() emulation
            # Several workers share the server's max_connections: gunicorn.conf.py sizes these per worker.
            kw.update(
                pool_size=int(os.environ.get("BYTESPIKE_DB_POOL_SIZE", "20")),
                max_overflow=int(os.environ.get("BYTESPIKE_DB_MAX_OVERFLOW", "40")),
                pool_timeout=30,
                # No pre-ping: it costs a round trip per checkout on the hot path;
                # pool_recycle and per-request error handling cover server restarts.
                pool_recycle=1800,
            )
        engine = create_engine(self.url, **kw)
        if self.is_sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def get_session(self) -> Session:
        self.engine  # noqa: B018 - binds the scoped session in this process
        if has_app_context():
            g.bytespike_session = True  # the app context's teardown has one to remove
        return self.session()

    def dispose(self) -> None:
        self.session.remove()
        if self._engine is not None:
            ledger_conn.release(self._engine)  # the connections the ledger keeps checked out, first
            self._engine.dispose()
            self._engine = None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers work beside the one writer; the busy timeout makes
    # several processes queue for the write lock instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def init_app(app: Flask) -> Database:
    db = Database(app.config["BYTESPIKE_DATABASE_URL"])
    app.extensions["bytespike_db"] = db

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        # Only a context that took a session: asking the greenlet-local registry costs a call's worth.
        if g.pop("bytespike_session", False):
            db.session.remove()

    return db


def get_db(app: Flask | None = None) -> Database:
    db: Database = (app or current_app).extensions["bytespike_db"]  # set by init_app
    return db


def session() -> Session:
    """The session of the current app context."""
    return get_db().get_session()
