"""Admission control before any upstream call: rpm, tpm, rolling spend windows, concurrency.

Counters (rpm, tpm, in-flight requests) live in Redis when
``BYTESPIKE_REDIS_URL`` is set, so every worker and node shares them, and in
this process otherwise. rpm/tpm use a sliding-window approximation over two
fixed one-minute windows; concurrency is a sorted set of in-flight admissions
scored by their expiry, so a crashed worker's slots lapse on their own.

Spend windows (``rate_limit_5h/1d/7d``, credits) come from the database:
settled credits per key per UTC hour (``key_spend_hours``) plus the key's
open reservations. An N-hour window sums the current hour and the N-1 before
it, so it resets when its oldest hour drops out.

Envelope choice (API.md §3): ``X-RateLimit-*`` describe the key's spend
window nearest its cap (credits). A key without windows reports its ``rpm``
(requests this minute, reset at the next minute); a key with neither reports
the wallet's spendable credits as both limit and remaining.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask, current_app

from .errors import ConcurrencyLimited, RateLimited
from .keys import Principal, read_connection
from .limit_counters import ADMIT_CONC, ADMIT_RPM, ADMIT_TPM, SLOT_TTL_S, LocalCounters, RedisCounters
from .live import KeyFigures, Live, WalletFigures, Window
from .models.accounts import ApiKey
from .models.base import utcnow
from .models.ledger import KeySpendHour, Wallet
from .money import credits_to_usd

_k, _h, _w = ApiKey.__table__, KeySpendHour.__table__, Wallet.__table__
log = logging.getLogger(__name__)
WINDOWS = (("rate_limit_5h", 5), ("rate_limit_1d", 24), ("rate_limit_7d", 168))


_counters_lock = threading.Lock()


def counters(app: Flask | None = None) -> RedisCounters | LocalCounters:
    """The counter backend of this app and process."""
    if app is None:
        # Flask types current_app as the app itself; the proxy's own accessor is not in its stubs.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    c: RedisCounters | LocalCounters | None = app.extensions.get("bytespike_limits")
    if c is None:
        with _counters_lock:
            c = app.extensions.get("bytespike_limits")
            if c is None:
                url = app.config.get("BYTESPIKE_REDIS_URL")
                prefix = app.config.get("BYTESPIKE_REDIS_PREFIX", "bs:") + "lim:"
                ttl = max(SLOT_TTL_S, float(app.config.get("REQUEST_DEADLINE_S", 600)) + 60)
                c = RedisCounters(url, prefix, ttl) if url else LocalCounters(ttl)
                app.extensions["bytespike_limits"] = c
    return c


# --- admission ------------------------------------------------------------------------


@dataclass
class Admission:
    """A granted request; ``release()`` frees its concurrency slot (idempotent)."""

    principal: Principal
    windows: list[Window] = field(default_factory=list)
    _backend: RedisCounters | LocalCounters | None = None
    _token: str | None = None
    tpm_counted: int = 0  # tokens the admission counted against the key's tpm (the estimate)
    minute: int = 0  # the minute they were counted in

    def release(self) -> None:
        if self._token is not None and self._backend is not None:
            token, self._token = self._token, None
            self._backend.slot_free(f"conc:{self.principal.org_id}", token)


def admit(principal: Principal, *, estimated_tokens: int) -> Admission:
    """Admit a call or raise RateLimited / ConcurrencyLimited (429) with ``retry_after``."""
    backend = counters()
    now = time.time()
    windows = spend_windows(principal) if principal.has_windows else []
    for w in windows:  # an early refusal; the reservation judges the windows again under the key's lock
        if w.used >= w.limit:
            raise _window_error(w, now)
    retry = max(1, 60 - int(now % 60))
    token = uuid.uuid4().hex
    verdict, rpm_used = backend.admit_all(principal.key_id, principal.rpm, principal.tpm, max(1, estimated_tokens),
                                          str(principal.org_id), token, principal.concurrency_cap, now)
    if verdict == ADMIT_RPM:
        raise RateLimited(f"rpm exceeded: this key allows {principal.rpm} requests per minute", retry_after=retry)
    if verdict == ADMIT_TPM:
        raise RateLimited(f"tpm exceeded: this key allows {principal.tpm} tokens per minute", retry_after=retry)
    if verdict == ADMIT_CONC:
        raise ConcurrencyLimited(
            f"concurrency_limit: {principal.concurrency_cap} requests already in flight for this account "
            f"({principal.tier} tier)", retry_after=1,
        )
    live = principal.live
    live.win_delta = 0  # reservations and settlements from here on move the windows' use
    if principal.has_windows:
        live.windows = windows
    if principal.rpm is not None:
        live.rpm_used = rpm_used
    counted = max(1, estimated_tokens) if principal.tpm is not None else 0
    return Admission(principal, windows, backend, token, counted, int(now // 60))


def correct_tokens(admission: Admission | None, reported: int) -> None:
    """Correct the key's tpm window from the estimate it admitted the call with to the tokens reported.

    ``reported`` is every input (cached or not) and output token of the call, as the upstream
    reported it (API.md §3: the estimate admits the call; the report corrects the window).
    """
    if admission is None or not admission.tpm_counted or admission._backend is None:
        return
    delta, admission.tpm_counted = max(0, reported) - admission.tpm_counted, 0
    try:
        admission._backend.correct(f"tpm:{admission.principal.key_id}", admission.minute, delta, time.time())
    except Exception:  # noqa: BLE001 - a missed correction must not fail a call already answered
        log.exception("tpm correction failed for key %s", admission.principal.key_id)


def _window_error(w: Window, now: float, needs: int | None = None) -> RateLimited:
    reset = dt.datetime.fromtimestamp(w.reset_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    need = f"this call needs up to {_usd(needs)} USD; " if needs is not None else ""
    return RateLimited(f"{w.name} exceeded: {need}{_usd(w.used)} / {_usd(w.limit)} USD used; "
                       f"resets at {reset}", retry_after=max(1, w.reset_at - int(now)))


def window_bounds(principal: Principal, now: dt.datetime) -> dict[str, tuple[int, dt.datetime]]:
    """Each configured spend window of the key: (limit in credits, first hour it sums), for the reservation."""
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    return {name: (int(getattr(principal, name)), hour0 - dt.timedelta(hours=n - 1))
            for name, n in WINDOWS if getattr(principal, name) is not None}


def window_exceeded(principal: Principal, name: str, needs: int) -> RateLimited:
    """The 429 for a reservation that window ``name`` refused (settled spend and open holds counted)."""
    now = time.time()
    found = [w for w in spend_windows(principal) if w.name == name]
    if not found:  # the key changed meanwhile: still refuse, with a minute to wait
        return RateLimited(f"{name} exceeded: this call needs up to {_usd(needs)} USD", retry_after=60)
    return _window_error(found[0], now, needs)


def _usd(credits: int) -> str:
    """Credits as USD for a message: two decimals, more only when the amount needs them."""
    v = credits_to_usd(credits).normalize()
    return format(v.quantize(Decimal("0.01")) if v.as_tuple().exponent >= -2 else v, "f")  # type: ignore[operator]


_WINDOW_SQL = sa.select(
    *[sa.func.coalesce(sa.func.sum(sa.case((_h.c.hour >= sa.bindparam(f"b_{name}"), _h.c.credits), else_=0)), 0)
      for name, _ in WINDOWS],
    sa.func.min(_h.c.hour),
    sa.select(_k.c.reserved_credits).where(_k.c.id == sa.bindparam("b_key")).scalar_subquery(),
).where(_h.c.api_key_id == sa.bindparam("b_key"), _h.c.hour >= sa.bindparam("b_rate_limit_7d"))


def spend_windows(principal: Principal, now: dt.datetime | None = None) -> list[Window]:
    """Each configured spend window with its credits used (settled + open reservations) and reset time."""
    now = now or utcnow()
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    starts = {name: hour0 - dt.timedelta(hours=n - 1) for name, n in WINDOWS}
    with read_connection() as conn:
        row = conn.execute(_WINDOW_SQL, {"b_key": principal.key_id, **{f"b_{k}": v for k, v in starts.items()}}).one()
    oldest, held = row[len(WINDOWS)], row[len(WINDOWS) + 1]
    if held is None:  # no spend rows in the week: the subquery still answers, but be explicit
        held = 0
    out = []
    for i, (name, hours) in enumerate(WINDOWS):
        limit = getattr(principal, name)
        if limit is None:
            continue
        first = max(oldest, starts[name]) if oldest is not None else hour0
        reset = first + dt.timedelta(hours=hours)
        out.append(Window(name, int(limit), int(row[i]) + int(held), _unix(reset)))
    return out


def _unix(naive_utc: dt.datetime) -> int:
    return int(naive_utc.replace(tzinfo=dt.UTC).timestamp())


_ENVELOPE_SQL = (
    sa.select(_w.c.balance_credits, _w.c.reserved_credits, _k.c.spent_credits, _k.c.reserved_credits.label("kr"),
              _k.c.quota_credits)
    .select_from(_k.join(_w, _w.c.id == sa.bindparam("b_wallet")))
    .where(_k.c.id == sa.bindparam("b_key"))
)


def envelope_headers(principal: Principal) -> dict[str, str]:
    """The quota envelope of API.md §3 for this key, as response headers.

    Built from the figures this call's admission, reservation and settlement
    already returned (``principal.live``); the database is read only for what
    no earlier step of the call saw (a dry run, a call refused before it
    reserved).
    """
    live = principal.live
    wallet, key = live.wallet, live.key
    if wallet is None or key is None:
        with read_connection() as conn:
            row = conn.execute(_ENVELOPE_SQL, {"b_key": principal.key_id, "b_wallet": principal.wallet_id}).first()
        wallet = WalletFigures(row.balance_credits, row.reserved_credits) if row is not None else WalletFigures(0, 0)
        key = KeyFigures(row.spent_credits, row.kr, row.quota_credits) if row is not None else KeyFigures(0, 0, None)
    spendable = max(0, int(wallet.balance - wallet.reserved))
    headers = {"X-Org-Quota-Remaining-Credits": str(spendable)}
    if key.quota is not None:
        headers["X-Quota-Remaining-Credits"] = str(max(0, key.quota - key.spent - key.reserved))
    now = time.time()
    windows = _live_windows(principal, live)
    if windows:
        w = min(windows, key=lambda w: (w.remaining / w.limit if w.limit else 0, w.remaining))
        limit, remaining, reset = w.limit, w.remaining, w.reset_at
    elif principal.rpm is not None:
        used = live.rpm_used
        if used is None:
            _, used = counters().window_add(f"rpm:{principal.key_id}", 0, principal.rpm, now)
        limit, remaining, reset = principal.rpm, max(0, principal.rpm - used), (int(now // 60) + 1) * 60
    else:
        limit, remaining, reset = spendable, spendable, int(math.ceil(now)) + 60
    headers.update({"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(reset)})
    return headers


def _live_windows(principal: Principal, live: Live) -> list[Window]:
    """The spend windows as admitted, moved by this call's own reservation and settlement since."""
    if not principal.has_windows:
        return []
    cached = live.windows
    if cached is None:
        return spend_windows(principal)
    delta = live.win_delta
    return [Window(w.name, w.limit, max(0, w.used + delta), w.reset_at) for w in cached]
