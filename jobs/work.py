"""The job bodies: what runs on the queue (``core.jobs``), by name.

Each body reads what it needs when it runs and is safe to run twice: the
ledger, task and webhook code it calls is idempotent (a task enters its final
state once, a reservation flips from ``open`` once, a delivery is marked once).
"""

from __future__ import annotations

import logging

from flask import current_app

from core import catalog as core_catalog
from core import db as core_db
from core import jobs, ledger, pricesync
from core.models import ApiKey, Org, WebhookDelivery, utcnow
from core.money import usd_str
from gateway import media_tasks, responses_store
from website.payments import webhooks

from . import schedule

log = logging.getLogger("bytespike.jobs")

TASK_POLL_FIRST_S = 2.0
TASK_POLL_MAX_S = 60.0
TASK_POLL_LIMIT = 400  # then the five-minute sweep (poll_tasks) keeps it moving


class DeliveryFailed(RuntimeError):
    """The receiver did not answer 2xx: the queue retries with backoff."""


def task_poll_delay(attempt: int) -> float:
    """Seconds before poll number ``attempt + 1`` of a live task: 2, 4, 8, ... at most a minute."""
    return min(TASK_POLL_MAX_S, TASK_POLL_FIRST_S * 2 ** attempt)


def _base_url() -> str:
    return str(current_app.config.get("BYTESPIKE_PUBLIC_URL") or "")


@jobs.job("advance_task")
def advance_task(task_id: str, attempt: int = 0) -> str:
    """Poll a live task's vendor once; poll again later (backoff) while it runs. Final: billed, callback sent."""
    task = media_tasks.get(task_id)
    if task is None:
        return "gone"
    after = media_tasks.refresh(task, base_url=_base_url())
    if after["state"] in media_tasks.LIVE and attempt + 1 < TASK_POLL_LIMIT:
        jobs.enqueue("advance_task", task_id, attempt + 1, delay_s=task_poll_delay(attempt))
    return str(after["state"])


@jobs.job("poll_tasks", timeout_s=900)
def poll_tasks(limit: int = 500) -> int:
    """Poll every live task once (the sweep behind ``advance_task``); return how many changed state."""
    moved = 0
    for tid in media_tasks.live_ids(limit):
        task = media_tasks.get(tid)
        if task is not None:
            moved += media_tasks.refresh(task, base_url=_base_url())["state"] != task["state"]
    return moved


@jobs.job("expire_reservations")
def expire_reservations() -> int:
    """Release holds a crashed worker left open (free, never billed twice)."""
    return ledger.expire_reservations()


@jobs.job("expire_responses")
def expire_responses() -> int:
    """Delete stored Responses past their 30 days."""
    return responses_store.expire_stored_responses()


@jobs.job("balance_alert")
def balance_alert(org_id: int) -> bool:
    """The org's low-balance check after a settle crossed its threshold (notifies once per crossing)."""
    return webhooks.check_low_balance(org_id)


@jobs.job("low_balance_sweep", timeout_s=900)
def low_balance_sweep() -> int:
    """Every org with a threshold, checked once (catches crossings by payments, refunds, plans)."""
    return webhooks.check_all_low_balances()


@jobs.job("key_budget_alert")
def key_budget_alert(key_id: str, percent: int) -> int | None:
    """Tell the org's webhook that a key has spent ``percent`` of its quota."""
    s = core_db.session()
    key = s.get(ApiKey, key_id)
    if key is None or not key.quota_credits:
        return None
    return webhooks.send(key.org_id, "key.budget", {
        "key_id": key.id, "name": key.name, "percent": percent, "spent_credits": key.spent_credits,
        "quota_credits": key.quota_credits, "spent_usd": usd_str(key.spent_credits),
    })


@jobs.job("deliver_webhook", retries=5)
def deliver_webhook(delivery_id: int) -> bool:
    """POST one signed delivery; a failure raises, and the queue tries again with backoff."""
    if webhooks.deliver(delivery_id):
        return True
    s = core_db.session()
    row = s.get(WebhookDelivery, delivery_id)
    if row is None or s.get(Org, row.org_id) is None:
        return False  # nothing left to deliver to
    raise DeliveryFailed(f"webhook delivery {delivery_id} failed (attempt {row.attempts})")


@jobs.job("retry_webhooks", timeout_s=900)
def retry_webhooks() -> int:
    """Deliveries of the last day still failing after their retries (a receiver that was away long)."""
    return webhooks.retry_failed()


@jobs.job("ratecard_refresh", timeout_s=900)
def ratecard_refresh() -> int:
    """Read the operator's price sources and record every changed scaffold row; return how many changed."""
    cfg = current_app.config
    changed = pricesync.refresh(core_catalog.get_card(), cfg.get("BYTESPIKE_PRICE_SOURCES"),
                                cfg["BYTESPIKE_PRICE_REFRESH_FILE"], utcnow())
    schedule.mark_ok("ratecard_refresh")
    return changed
