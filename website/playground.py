"""The playground: three free runs per IP per day, answered in-process by the gateway's own channel.

The prompt goes through the same router, provider and codecs as ``/v1/messages``
(no HTTP hop to ourselves). A run is counted before the call and given back if
the call fails: failed calls are free here too.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _

from core import catalog, ratecard
from gateway import providers
from gateway.protocols import anthropic
from gateway.routing import get_router

bp = Blueprint("playground", __name__, url_prefix="/<lang>/playground")

FREE_RUNS = 3
MAX_PROMPT_CHARS = 2000
MAX_OUTPUT_TOKENS = 256
DEFAULT_MODEL = ratecard.DEMO_MODEL


class RunCounter:
    """Runs per IP per UTC day: Redis when configured (shared by workers), else this process."""

    def __init__(self, app: Flask) -> None:
        self.redis_url = app.config.get("BYTESPIKE_REDIS_URL")
        self.prefix = (app.config.get("BYTESPIKE_REDIS_PREFIX") or "bs:") + "playground:"
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()
        self._redis: Any = None

    def _key(self, ip: str) -> str:
        return f"{self.prefix}{dt.datetime.now(dt.UTC).date().isoformat()}:{ip}"

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    def used(self, ip: str) -> int:
        """Return how many runs ``ip`` has used today."""
        key = self._key(ip)
        if self.redis_url:
            return int(self._client().get(key) or 0)
        with self._lock:
            return self._local.get(key, 0)

    def take(self, ip: str) -> int | None:
        """Count one run atomically; return the runs left, or None when none were left."""
        key = self._key(ip)
        if self.redis_url:
            client = self._client()
            used = int(client.incr(key))
            client.expire(key, 2 * 86400)
            if used > FREE_RUNS:
                client.decr(key)
                return None
            return FREE_RUNS - used
        with self._lock:
            used = self._local.get(key, 0)
            if used >= FREE_RUNS:
                return None
            # Yesterday's keys are dropped so the dictionary cannot grow without bound.
            today = key.rsplit(":", 1)[0]
            self._local = {k: v for k, v in self._local.items() if k.startswith(today)}
            self._local[key] = used + 1
            return FREE_RUNS - used - 1

    def give_back(self, ip: str) -> None:
        """Return a run whose call failed."""
        key = self._key(ip)
        if self.redis_url:
            self._client().decr(key)
            return
        with self._lock:
            self._local[key] = max(0, self._local.get(key, 0) - 1)


def counter() -> RunCounter:
    """Return this app's run counter."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    held = app.extensions.get("bytespike_playground")
    if held is None:
        held = app.extensions["bytespike_playground"] = RunCounter(app)
    return held


def playground_model() -> str:
    """Return the model the playground calls (``BYTESPIKE_PLAYGROUND_MODEL``, default the demo)."""
    return current_app.config.get("BYTESPIKE_PLAYGROUND_MODEL") or DEFAULT_MODEL


def client_ip() -> str:
    return request.remote_addr or "unknown"


class RunFailed(Exception):
    """The gateway could not answer; the run is not counted."""


class NoChannel(RunFailed):
    """No channel serves the model: trying again cannot help."""


def call_gateway(model_id: str, prompt: str) -> dict[str, Any]:
    """Send one prompt through the gateway's router and provider; return text, usage and cost."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    card = catalog.get_card(app).resolve(model_id)
    if card is None:
        raise NoChannel(f"unknown model {model_id}")
    req = anthropic.parse_request({
        "model": card.id, "max_tokens": MAX_OUTPUT_TOKENS,
        "messages": [{"role": "user", "content": prompt}],
    })
    targets = list(get_router(app).targets(card.id, session=None))
    if not targets:
        raise NoChannel(f"no channel configured for {card.id}")
    for target in targets:
        provider = providers.get(target.channel.protocol)
        body = provider.codec.render_request(req, upstream_model=target.upstream_model, stream=False)
        prepared = provider.prepare(target.channel, target.api_key, target.upstream_model, body, stream=False)
        try:
            reply = provider.send(prepared, timeout=(5.0, 30.0))
            raw = reply.read()
        except Exception:  # noqa: BLE001 - a failing channel: try the next one, as the gateway does
            continue
        if reply.status != 200:
            continue
        resp = provider.codec.parse_response(json.loads(raw))
        cost = ratecard.chat_cost_credits(card, resp.usage)
        text = "".join(getattr(p, "text", "") for p in resp.parts)
        return {
            "model": card.id, "text": text, "cost_credits": cost,
            "cost_usd": format(Decimal(cost) / Decimal(1_000_000), "f"),
            "usage": {"input_tokens": resp.usage.input_tokens, "output_tokens": resp.usage.output_tokens},
        }
    raise RunFailed(f"no channel answered for {card.id}")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """Render the playground with today's runs left."""
    left = max(0, FREE_RUNS - counter().used(client_ip()))
    response = current_app.make_response(render_template(
        "playground.html", runs_left=left, free_runs=FREE_RUNS, model=playground_model(), demo=DEFAULT_MODEL,
        active_page="playground",
    ))
    response.cache_control.no_store = True
    return response


@bp.post("/run")
def run():  # type: ignore[no-untyped-def]
    """Answer one prompt as JSON, or refuse with 429 once today's free runs are used."""
    payload = request.get_json(silent=True) if request.is_json else None
    prompt = payload.get("prompt") if isinstance(payload, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        return jsonify(error=_("Type a prompt first."), runs_left=None), 400
    if len(prompt) > MAX_PROMPT_CHARS:
        return jsonify(error=_("Prompts are limited to %(n)s characters.", n=MAX_PROMPT_CHARS), runs_left=None), 400
    ip = client_ip()
    left = counter().take(ip)
    if left is None:
        message = _("You have used today's %(n)s free runs. Create an account to keep going; failed calls are never billed.", n=FREE_RUNS)
        return jsonify(error=message, runs_left=0), 429
    try:
        result = call_gateway(playground_model(), prompt.strip())
    except NoChannel:
        counter().give_back(ip)
        return jsonify(error=_("No channel serves this model yet, so the playground cannot call it. "
                               "This run was not counted."), runs_left=left + 1), 503
    except Exception:  # noqa: BLE001 - any failure is free: give the run back, show a clean message
        current_app.logger.exception("playground run failed")
        counter().give_back(ip)
        return jsonify(error=_("The model did not answer. This run was not counted; try again."), runs_left=left + 1), 502
    result["runs_left"] = left
    return jsonify(result)
