"""Balance and key-budget alerts, judged when a settlement crosses a line.

``after_settle`` runs in the settling request and costs no query in the common
case: it compares the wallet's balance and the key's spend just before and just
after the charge (the figures the ledger left in the hold's ``live``) with the
org's low-balance threshold (kept per process for a minute) and the key's
budget marks, and enqueues a cheap check only when a line was crossed
downwards (balance) or upwards (spend). The check itself (``jobs.work``) reads
the database and notifies once per crossing: the org's
``low_balance_notified_at`` debounces it and a top-up re-arms it.
"""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

from . import db as core_db
from . import jobs
from .ledger import Hold
from .models.accounts import Org

log = logging.getLogger("bytespike.alerts")
THRESHOLD_TTL_S = 60.0
# Percent of a key's quota at which its owner hears about it (once per crossing each).
KEY_BUDGET_MARKS = (80, 100)

_thresholds: dict[int, tuple[float, int | None]] = {}
_lock = threading.Lock()


def threshold(org_id: int, now: float | None = None) -> int | None:
    """The org's low-balance threshold in credits (None: no alert), read at most once a minute."""
    now = time.monotonic() if now is None else now
    cached = _thresholds.get(org_id)
    if cached is not None and now - cached[0] < THRESHOLD_TTL_S:
        return cached[1]
    with core_db.get_db().engine.connect() as conn:
        value = conn.execute(sa.select(Org.__table__.c.low_balance_credits).where(Org.__table__.c.id == org_id)).scalar()
    with _lock:
        _thresholds[org_id] = (now, None if value is None else int(value))
    return None if value is None else int(value)


def crossed_below(before: int, after: int, line: int | None) -> bool:
    """True when ``before`` was at or above ``line`` and ``after`` is below it."""
    return line is not None and after < line <= before


def budget_marks_crossed(spent_before: int, spent_after: int, quota: int | None) -> list[int]:
    """The budget marks (percent of ``quota``) that this spend moved past."""
    if not quota or quota <= 0:
        return []
    return [pct for pct in KEY_BUDGET_MARKS if spent_before * 100 < pct * quota <= spent_after * 100]


def after_settle(hold: Hold, charged: int) -> None:
    """Enqueue the low-balance or key-budget check this charge calls for (nothing otherwise).

    Never fails the settled call: a trouble here is logged, and the hourly sweep catches the crossing.
    """
    try:
        _check(hold, charged)
    except Exception:  # noqa: BLE001 - the charge stands; the alert falls to the sweep, loudly
        log.warning("alert check after settle of %s failed", hold.request_id, exc_info=True)


def _check(hold: Hold, charged: int) -> None:
    live = hold.live
    if charged <= 0 or live is None:
        return
    wallet, key = live.wallet, live.key
    if wallet is not None:
        balance_after = wallet.balance
        if crossed_below(balance_after + charged, balance_after, threshold(hold.org_id)):
            jobs.try_enqueue("balance_alert", hold.org_id)
    if key is not None and hold.api_key_id is not None:
        spent_after, quota = key.spent, key.quota
        for pct in budget_marks_crossed(spent_after - charged, spent_after, quota):
            jobs.try_enqueue("key_budget_alert", hold.api_key_id, pct)
