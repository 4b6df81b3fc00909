"""ByteSpike: one Flask deployment serving the gateway API, the site and the console.

``create_app`` reads as a list of steps and touches no database: gunicorn may
load it before forking workers.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any, Callable, Mapping

from flask import Flask

from core import catalog as core_catalog
from core import cli as core_cli
from core import config as core_config
from core import db as core_db
from core.safejson import SafeJSONProvider


class ByteSpikeFlask(Flask):
    """Flask, with the check of whether a view or hook is a coroutine made once per function.

    Flask asks it of every hook and view on every request (``ensure_sync``); the answer
    never changes for a function. Only plain functions are remembered, and a bounded number.
    """

    SYNC_MEMORY = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if type(func) is not FunctionType:
            return super().ensure_sync(func)
        known = self._synced.get(func)
        if known is None:
            known = super().ensure_sync(func)
            if len(self._synced) < self.SYNC_MEMORY:
                self._synced[func] = known
        return known


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = ByteSpikeFlask(__name__, static_folder="static", template_folder="website/templates")
    app.config.update(core_config.load(config))
    app.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024  # Anthropic accepts 32 MB bodies
    app.json = SafeJSONProvider(app)  # bounded depth and numbers, valid Unicode; keys kept in order
    # The channels file merged into the rate card, read once here: a malformed file stops start-up,
    # naming file, line and field; a running server reloads it when it changes.
    core_catalog.init_app(app)
    core_db.init_app(app)
    core_cli.init_app(app)

    from gateway import blueprints as gateway_blueprints
    from jobs import worker as jobs_worker
    from website import blueprints as website_blueprints

    gateway_blueprints.register(app)
    website_blueprints.register(app)
    jobs_worker.init_app(app)
    _health(app)
    return app


def _health(app: Flask) -> None:
    from sqlalchemy import text

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():  # type: ignore[no-untyped-def]
        """Ready when the database answers and, when one is configured, Redis too (a load balancer's probe)."""
        try:
            with core_db.get_db().engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any database failure means not ready
            return {"status": "database unavailable"}, 503
        if not _redis_answers(app.config.get("BYTESPIKE_REDIS_URL")):
            return {"status": "redis unavailable"}, 503
        return {"status": "ok"}


def _redis_answers(url: str | None) -> bool:
    if not url:
        return True
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
