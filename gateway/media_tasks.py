"""Async video tasks: the stored task, its upstream job, and the money it holds.

A task holds one reservation from submit until it ends (the submit call's
request id). The upstream is an OpenAI-protocol channel with OpenAI's video
API (``POST /videos``, ``GET /videos/{id}``, ``DELETE /videos/{id}``); it is
polled when someone asks (query, stream, cancel, ``flask poll-tasks``), on the
very channel and key that took the job.

States: ``pending`` (queued upstream) -> ``running`` -> ``completed`` |
``failed`` | ``cancelled``. Money, per API.md §3: completed settles the
seconds rendered; failed releases the hold; cancelled while pending is free;
cancelled while running bills the whole seconds rendered so far (``seconds``
x ``progress`` / 100, rounded down). Only the request that moves a task into
its final state (a conditional UPDATE) touches the ledger and sends the
callback, so concurrent pollers never bill twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import urllib3
from flask import current_app

from core import catalog, ledger, outbound, ratecard, signing
from core import db as core_db
from core.errors import GatewayError, NoChannel, UpstreamError
from core.keys import Principal
from core.models.accounts import Org
from core.models.base import utcnow
from core.models.tasks import AsyncTask
from gateway import media_upstream, upstream
from gateway.media_upstream import Outbound, Reply
from gateway.protocols.upstream_error import redact
from gateway.routing import Target, get_router

log = logging.getLogger("bytespike.gateway.tasks")
_t = AsyncTask.__table__
_orgs = Org.__table__
FINAL = ("completed", "failed", "cancelled")
LIVE = ("pending", "running")
UPSTREAM_STATES = {"queued": "pending", "pending": "pending", "in_progress": "running", "running": "running",
                   "processing": "running", "completed": "completed", "succeeded": "completed",
                   "failed": "failed", "cancelled": "cancelled"}
POLL_TIMEOUT_S = 15.0
CALLBACK_TIMEOUT = (2.0, 5.0)


def _engine() -> sa.Engine:
    return core_db.get_db().engine


def live_ids(limit: int) -> list[str]:
    """The ids of up to ``limit`` tasks still pending or running, oldest first."""
    with _engine().connect() as conn:
        return list(conn.execute(sa.select(_t.c.id).where(_t.c.state.in_(LIVE)).order_by(_t.c.created_at)
                                 .limit(limit)).scalars())


def params_hash(model_id: str, params: Mapping[str, Any]) -> str:
    """A stable digest of what was asked: the same model and params give the same hash."""
    canon = json.dumps({"model": model_id, "params": params}, sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()


def get(task_id: str, org_id: int | None = None) -> dict[str, Any] | None:
    """The task row as a dict; None when absent or another org's."""
    q = sa.select(_t).where(_t.c.id == task_id)
    if org_id is not None:
        q = q.where(_t.c.org_id == org_id)
    with _engine().connect() as conn:
        row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def by_out_id(org_id: int, out_task_id: str) -> dict[str, Any] | None:
    with _engine().connect() as conn:
        row = conn.execute(sa.select(_t).where(_t.c.org_id == org_id, _t.c.out_task_id == out_task_id)
                           ).mappings().first()
    return dict(row) if row else None


def insert(values: dict[str, Any]) -> bool:
    """Store a new task; False when its ``out_task_id`` is already taken in the org."""
    now = utcnow()
    try:
        with _engine().begin() as conn:
            conn.execute(_t.insert().values(created_at=now, updated_at=now, **values))
    except sa.exc.IntegrityError:
        return False
    return True


def delete(task_id: str) -> None:
    """Forget a task that never reached the upstream (its submit failed and was not charged)."""
    with _engine().begin() as conn:
        conn.execute(_t.delete().where(_t.c.id == task_id, _t.c.upstream_id.is_(None)))


def update(task_id: str, **values: Any) -> None:
    with _engine().begin() as conn:
        conn.execute(_t.update().where(_t.c.id == task_id).values(updated_at=utcnow(), **values))


def _advance(task_id: str, **values: Any) -> bool:
    """Change a live task; False when it already reached a final state."""
    with _engine().begin() as conn:
        hit = conn.execute(_t.update().where(_t.c.id == task_id, _t.c.state.in_(LIVE))
                           .values(updated_at=utcnow(), **values))
    return hit.rowcount == 1


# --- reading the upstream ----------------------------------------------------------------------


def _card(task: Mapping[str, Any]) -> Any:
    return catalog.get_card().get(task["model"]) or catalog.get_card().resolve(task["model"])


def _int(value: Any, default: int) -> int:
    try:
        return int(Decimal(str(value)))
    except (ArithmeticError, ValueError, TypeError):
        return default


def upstream_call(task: Mapping[str, Any], method: str, path: str, *, stream: bool = False) -> Reply:
    """One call about this task's job, on the channel and key that took it (``gateway.upstream.attempt``)."""
    target = target_for(task["channel"], task["key_index"], task["upstream_model"] or "")
    out = Outbound(method=method, path=path, set_model=False, stream=stream)
    return upstream.attempt(get_router(current_app), target, functools.partial(media_upstream.send, out, target),
                            deadline=time.perf_counter() + POLL_TIMEOUT_S)


def target_for(channel_name: str, key_index: int, upstream_model: str) -> Target:
    """Rebuild the (channel, key) a task was submitted to; NoChannel when it is gone."""
    for ch in get_router(current_app).channels:
        if ch.name == channel_name and 0 <= key_index < len(ch.api_keys):
            return Target(ch, key_index, upstream_model)
    raise NoChannel(f"channel '{channel_name}' is no longer configured")


def refresh(task: dict[str, Any], *, base_url: str) -> dict[str, Any]:
    """Poll the upstream for a live task and apply what it says; a final task is returned as is."""
    if task["state"] in FINAL or not task.get("upstream_id"):
        return task
    try:
        data = upstream_call(task, "GET", f"videos/{task['upstream_id']}").json()
    except GatewayError as err:
        if getattr(err, "upstream_status", None) == 404:
            return finalize(task, "failed", 0, base_url=base_url, error="the upstream no longer knows this job")
        log.warning("polling task %s failed: %s", task["id"], err.message)
        return task  # a passing upstream hiccup: the caller sees the last known state
    return apply(task, data, base_url=base_url)


def apply(task: dict[str, Any], data: Mapping[str, Any], *, base_url: str) -> dict[str, Any]:
    """Move the task to what the upstream reports (a video object)."""
    state = UPSTREAM_STATES.get(str(data.get("status") or "").lower(), task["state"])
    progress = max(0, min(100, _int(data.get("progress"), task["progress"])))
    total = _int(data.get("seconds"), task["seconds_total"]) or task["seconds_total"]
    if state == "completed":
        result = {"seconds": total, "size": data.get("size"), "upstream_id": task["upstream_id"]}
        return finalize(dict(task, seconds_total=total), "completed", total, base_url=base_url, result=result)
    if state in ("failed", "cancelled"):
        err = data.get("error")
        said = err.get("message") if isinstance(err, Mapping) else None
        why = redact(str(said or "the upstream reported the job failed"), _keys(task))[:250]
        return finalize(task, "failed", 0, base_url=base_url, error=why)
    if (state, progress, total) != (task["state"], task["progress"], task["seconds_total"]):
        _advance(task["id"], state=state, progress=progress, seconds_total=total)
    return get(task["id"]) or task


def _keys(task: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys of the channel that took the job: never shown in what its upstream says."""
    for ch in get_router(current_app).channels:
        if ch.name == task.get("channel"):
            return tuple(ch.api_keys)
    return ()


def rendered_seconds(task: Mapping[str, Any]) -> int:
    """Whole seconds rendered so far: the job's length times its progress, rounded down."""
    return (int(task["seconds_total"]) * int(task["progress"])) // 100


def cancel(task: dict[str, Any], *, base_url: str) -> dict[str, Any]:
    """Cancel a live task: free while pending, the rendered seconds once running."""
    task = refresh(task, base_url=base_url)
    if task["state"] in FINAL:
        return task
    try:
        upstream_call(task, "DELETE", f"videos/{task['upstream_id']}")
    except GatewayError as err:
        log.info("upstream cancel of %s not confirmed: %s", task["id"], err.message)
    seconds = rendered_seconds(task) if task["state"] == "running" else 0
    return finalize(task, "cancelled", seconds, base_url=base_url, error="cancelled by the caller")


# --- the final state and its money ---------------------------------------------------------------


def finalize(task: dict[str, Any], state: str, seconds: int, *, base_url: str, error: str | None = None,
             result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Enter a final state once: settle ``seconds`` (or release when 0), then send the callback."""
    card = _card(task)
    cost = min(ratecard.seconds_cost_credits(card, seconds), task["estimated_credits"]) if seconds else 0
    now = utcnow()
    won = _advance(task["id"], state=state, credits_used=cost, seconds_rendered=seconds, result=result,
                   error=error, finished_at=now, progress=100 if state == "completed" else task["progress"])
    if not won:
        return get(task["id"]) or task
    charged = _bill(dict(task, state=state), card, cost, seconds, error)
    if charged != cost:
        update(task["id"], credits_used=charged)
    final = get(task["id"]) or task
    notify(final, base_url=base_url)
    return final


def _record(task: Mapping[str, Any], card: Any, seconds: int, error: str | None,
            request_id: str | None = None) -> ledger.UsageRecord:
    elapsed = (utcnow() - task["created_at"]).total_seconds() * 1000
    return ledger.UsageRecord(
        request_id=request_id or task["request_id"], org_id=task["org_id"], api_key_id=task["api_key_id"],
        member_id=task["member_id"], model=card.id if card else task["model"], provider=task["provider"],
        channel=task["channel"], protocol="tasks", stream=False,
        status=502 if task["state"] == "failed" else 200, output_tokens=seconds,
        estimated_credits=task["estimated_credits"], latency_ms=int(elapsed), overhead_ms=0,
        error=None if task["state"] == "completed" else (error or task["state"]),
    )


def _hold(task: Mapping[str, Any]) -> ledger.Hold:
    return ledger.Hold(task["request_id"], task["wallet_id"], task["org_id"], task["api_key_id"],
                       task["member_id"], task["estimated_credits"])


def _bill(task: Mapping[str, Any], card: Any, cost: int, seconds: int, error: str | None) -> int:
    """Settle or release the task's hold; return the credits actually charged."""
    rec = _record(task, card, seconds, error)
    if cost <= 0:
        ledger.release(_hold(task), rec)
        return 0
    charged = ledger.settle(_hold(task), cost, rec)
    if charged == cost:
        return charged
    return _late_charge(task, card, cost, seconds)


def _late_charge(task: Mapping[str, Any], card: Any, cost: int, seconds: int) -> int:
    """Charge a job that outlived its hold (swept as stale): a fresh hold, settled at once, within the balance."""
    who = Principal(key_id=task["api_key_id"], org_id=task["org_id"], wallet_id=task["wallet_id"],
                    member_id=task["member_id"], kind="", name="", tier="", models=None, quota_credits=None,
                    rpm=None, tpm=None, rate_limit_5h=None, rate_limit_1d=None, rate_limit_7d=None,
                    expires_at=None, email=None)
    rid = f"{task['request_id']}-final"
    bal, held = ledger.balance(task["org_id"])
    amount = max(0, min(cost, bal - held))
    if amount == 0:
        log.error("task %s: %s credits due but the wallet is empty", task["id"], cost)
        return 0
    try:
        hold = ledger.reserve(who, rid, amount)
    except GatewayError as err:
        log.error("task %s: late charge of %s credits refused: %s", task["id"], amount, err.message)
        return 0
    return ledger.settle(hold, amount, _record(task, card, seconds, None, request_id=rid))


def notify(task: Mapping[str, Any], *, base_url: str) -> None:
    """POST the final task to its callback URL: best effort, short timeout, at most once."""
    url = task.get("callback_url")
    if not url or task["state"] not in FINAL:
        return
    with _engine().begin() as conn:
        hit = conn.execute(_t.update().where(_t.c.id == task["id"], _t.c.callback_sent_at.is_(None))
                           .values(callback_sent_at=utcnow()))
    if hit.rowcount != 1:
        return
    body = json.dumps(render(task, base_url=base_url), separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "user-agent": "bytespike-callback/1",
               signing.SIGNATURE_HEADER: signing.sign(_callback_secret(task["org_id"]), body, int(time.time()))}
    try:
        allow = outbound.allow_list(current_app.config.get("BYTESPIKE_OUTBOUND_ALLOW"))
        outbound.post(url, body, headers, allow=allow, timeout=CALLBACK_TIMEOUT)
    except outbound.BlockedTarget as exc:
        log.info("callback for %s refused: %s", task["id"], exc)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        log.info("callback for %s failed: %s", task["id"], type(exc).__name__)


def _callback_secret(org_id: int) -> str:
    """The org's webhook secret, which signs task callbacks too; made on first use if the org has none."""
    with _engine().begin() as conn:
        conn.execute(_orgs.update().where(_orgs.c.id == org_id, _orgs.c.webhook_secret.is_(None))
                     .values(webhook_secret="whsec_" + secrets.token_urlsafe(24)))
        return str(conn.execute(sa.select(_orgs.c.webhook_secret).where(_orgs.c.id == org_id)).scalar_one())


# --- rendering -------------------------------------------------------------------------------


def _unix(value: dt.datetime | None) -> int | None:
    return int(value.replace(tzinfo=dt.UTC).timestamp()) if value else None


def render(task: Mapping[str, Any], *, base_url: str) -> dict[str, Any]:
    """The public task object."""
    final = task["state"] in FINAL
    result, output = None, None
    if task["state"] == "completed":
        info = dict(task.get("result") or {})
        info.pop("upstream_id", None)
        url = f"{base_url.rstrip('/')}/v1/tasks/{task['id']}/content"
        result, output = {"urls": [url], **info}, [{"type": "video", "url": url}]
    error = None
    if task["state"] in ("failed", "cancelled"):
        error = {"code": "task_" + task["state"], "message": task.get("error") or task["state"]}
    return {
        "task_id": task["id"], "object": "task", "model": task["model"], "status": task["state"],
        "progress": task["progress"], "out_task_id": task["out_task_id"],
        "estimated_credits": task["estimated_credits"], "credits_used": task["credits_used"] if final else None,
        "seconds": task["seconds_total"], "seconds_rendered": task["seconds_rendered"] if final else None,
        "output": output, "result": result, "error": error, "callback_url": task["callback_url"],
        "created_at": _unix(task["created_at"]), "updated_at": _unix(task["updated_at"]),
        "finished_at": _unix(task.get("finished_at")),
    }


def submitted(task_id: str, data: Mapping[str, Any], reply: Reply, provider: str) -> None:
    """Record where the job went and what the upstream first said about it."""
    upstream_id = data.get("id")
    if not isinstance(upstream_id, str) or not upstream_id:
        raise UpstreamError("upstream answer has no job id")
    update(task_id, upstream_id=upstream_id, channel=reply.target.channel.name, key_index=reply.target.key_index,
           upstream_model=reply.target.upstream_model, provider=provider)
