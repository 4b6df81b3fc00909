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
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from .errors import ConcurrencyLimited, RateLimited
from .keys import Principal, read_connection
from .models.accounts import ApiKey
from .models.base import utcnow
from .models.ledger import KeySpendHour, Wallet
from .money import credits_to_usd

_k, _h, _w = ApiKey.__table__, KeySpendHour.__table__, Wallet.__table__
log = logging.getLogger(__name__)
WINDOWS = (("rate_limit_5h", 5), ("rate_limit_1d", 24), ("rate_limit_7d", 168))
SLOT_TTL_S = 900.0  # at least: an in-flight slot not released within this lapses (crashed worker)


@dataclass(frozen=True)
class Window:
    name: str
    limit: int
    used: int
    reset_at: int  # Unix time

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


# --- counter backends ---------------------------------------------------------------

_WINDOW_LUA = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local est = prev * tonumber(ARGV[1]) + cur
local amount = tonumber(ARGV[2])
if amount > 0 and est > 0 and est + amount > tonumber(ARGV[3]) then return {0, math.floor(est)} end
if amount > 0 then
  redis.call('INCRBY', KEYS[1], amount)
  redis.call('EXPIRE', KEYS[1], 180)
end
return {1, math.floor(est + amount)}
"""

_SLOT_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])))
return 1
"""

_ADMIT_LUA = """
local w = tonumber(ARGV[1])
local function est(cur, prev)
  return tonumber(redis.call('GET', prev) or '0') * w + tonumber(redis.call('GET', cur) or '0')
end
local rpm_limit, tpm_amount, tpm_limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local rpm_est = 0
if rpm_limit >= 0 then
  rpm_est = est(KEYS[1], KEYS[2])
  if rpm_est > 0 and rpm_est + 1 > rpm_limit then return {1, math.floor(rpm_est)} end
end
if tpm_limit >= 0 then
  local e = est(KEYS[3], KEYS[4])
  if e > 0 and e + tpm_amount > tpm_limit then return {2, math.floor(e)} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[5])
if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[7]) then return {3, math.floor(rpm_est)} end
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[8])
redis.call('EXPIRE', KEYS[5], math.ceil(tonumber(ARGV[9])))
if rpm_limit >= 0 then
  redis.call('INCRBY', KEYS[1], 1)
  redis.call('EXPIRE', KEYS[1], 180)
end
if tpm_limit >= 0 then
  redis.call('INCRBY', KEYS[3], tpm_amount)
  redis.call('EXPIRE', KEYS[3], 180)
end
return {0, math.floor(rpm_est + 1)}
"""
ADMIT_OK, ADMIT_RPM, ADMIT_TPM, ADMIT_CONC = 0, 1, 2, 3


class RedisCounters:
    """Shared counters in Redis; while Redis cannot be reached, this process's own counters stand in.

    Failing open to local counters keeps the gateway serving through a Redis
    outage with per-worker limits, rather than refusing every call.
    """

    def __init__(self, url: str, prefix: str, slot_ttl_s: float = SLOT_TTL_S) -> None:
        import redis

        self.r = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self.slot_ttl_s = slot_ttl_s
        self.fallback = LocalCounters(slot_ttl_s)
        self._errors = (redis.RedisError, OSError)
        self._window = self.r.register_script(_WINDOW_LUA)
        self._slot = self.r.register_script(_SLOT_LUA)
        self._admit = self.r.register_script(_ADMIT_LUA)

    def admit_all(self, key_id: str, rpm: int | None, tpm: int | None, tokens: int, org: str, token: str,
                  cap: int, now: float) -> tuple[int, int]:
        """rpm, tpm and the in-flight slot in one round trip; nothing is counted unless all three allow it.

        Returns (verdict, requests this minute including this one): ADMIT_OK or the limit that refused.
        """
        minute = int(now // 60)
        weight = 1.0 - (now % 60) / 60.0
        p = self.prefix
        keys = [f"{p}rpm:{key_id}:{minute}", f"{p}rpm:{key_id}:{minute - 1}", f"{p}tpm:{key_id}:{minute}",
                f"{p}tpm:{key_id}:{minute - 1}", f"{p}conc:{org}"]
        args = [repr(weight), -1 if rpm is None else rpm, tokens, -1 if tpm is None else tpm,
                now, now + self.slot_ttl_s, cap, token, self.slot_ttl_s]
        try:
            verdict, used = self._admit(keys=keys, args=args)
        except self._errors:
            log.warning("redis unavailable: admission falls back to this process")
            return self.fallback.admit_all(key_id, rpm, tpm, tokens, org, token, cap, now)
        return int(verdict), int(used)

    def window_add(self, name: str, amount: int, limit: int, now: float) -> tuple[bool, int]:
        minute = int(now // 60)
        weight = 1.0 - (now % 60) / 60.0
        keys = [f"{self.prefix}{name}:{minute}", f"{self.prefix}{name}:{minute - 1}"]
        try:
            ok, est = self._window(keys=keys, args=[repr(weight), amount, limit])
        except self._errors:
            log.warning("redis unavailable: rate limits fall back to this process")
            return self.fallback.window_add(name, amount, limit, now)
        return bool(ok), int(est)

    def slot_take(self, name: str, token: str, cap: int, now: float) -> bool:
        key = f"{self.prefix}{name}"
        try:
            return bool(self._slot(keys=[key], args=[now, now + self.slot_ttl_s, cap, token, self.slot_ttl_s]))
        except self._errors:
            log.warning("redis unavailable: concurrency caps fall back to this process")
            return self.fallback.slot_take(name, token, cap, now)

    def slot_free(self, name: str, token: str) -> None:
        self.fallback.slot_free(name, token)
        try:
            self.r.zrem(f"{self.prefix}{name}", token)
        except self._errors:
            pass  # the slot lapses by itself after its TTL


class LocalCounters:
    """The same counters inside one process."""

    def __init__(self, slot_ttl_s: float = SLOT_TTL_S) -> None:
        self.slot_ttl_s = slot_ttl_s
        self.lock = threading.RLock()
        self.windows: dict[str, int] = {}
        self.slots: dict[str, dict[str, float]] = {}

    def admit_all(self, key_id: str, rpm: int | None, tpm: int | None, tokens: int, org: str, token: str,
                  cap: int, now: float) -> tuple[int, int]:
        """The same all-or-nothing admission as ``RedisCounters.admit_all``, in this process."""
        minute = int(now // 60)
        weight = 1.0 - (now % 60) / 60.0

        def est(name: str) -> float:
            return self.windows.get(f"{name}:{minute - 1}", 0) * weight + self.windows.get(f"{name}:{minute}", 0)

        with self.lock:
            rpm_est = est(f"rpm:{key_id}") if rpm is not None else 0.0
            if rpm is not None and rpm_est > 0 and rpm_est + 1 > rpm:
                return ADMIT_RPM, int(rpm_est)
            tpm_est = est(f"tpm:{key_id}") if tpm is not None else 0.0
            if tpm is not None and tpm_est > 0 and tpm_est + tokens > tpm:
                return ADMIT_TPM, int(tpm_est)
            if not self.slot_take(f"conc:{org}", token, cap, now):
                return ADMIT_CONC, int(rpm_est)
            if rpm is not None:  # already judged above: count without a limit
                self.window_add(f"rpm:{key_id}", 1, sys.maxsize, now)
            if tpm is not None:
                self.window_add(f"tpm:{key_id}", tokens, sys.maxsize, now)
            return ADMIT_OK, int(rpm_est + 1)

    def window_add(self, name: str, amount: int, limit: int, now: float) -> tuple[bool, int]:
        minute = int(now // 60)
        weight = 1.0 - (now % 60) / 60.0
        with self.lock:
            cur = self.windows.get(f"{name}:{minute}", 0)
            prev = self.windows.get(f"{name}:{minute - 1}", 0)
            est = prev * weight + cur
            if amount > 0 and est > 0 and est + amount > limit:
                return False, int(est)
            if amount > 0:
                if len(self.windows) > 100_000:  # drop minutes long gone
                    self.windows = {k: v for k, v in self.windows.items() if int(k.rsplit(":", 1)[1]) >= minute - 1}
                self.windows[f"{name}:{minute}"] = cur + amount
            return True, int(est + amount)

    def slot_take(self, name: str, token: str, cap: int, now: float) -> bool:
        with self.lock:
            slots = self.slots.setdefault(name, {})
            for t in [t for t, exp in slots.items() if exp <= now]:
                del slots[t]
            if len(slots) >= cap:
                return False
            slots[token] = now + self.slot_ttl_s
            return True

    def slot_free(self, name: str, token: str) -> None:
        with self.lock:
            self.slots.get(name, {}).pop(token, None)


_counters_lock = threading.Lock()


def counters(app: Any = None) -> RedisCounters | LocalCounters:
    """The counter backend of this app and process."""
    if app is None:
        from flask import current_app

        app = current_app._get_current_object()  # type: ignore[attr-defined]
    c = app.extensions.get("bytespike_limits")
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
    _backend: Any = None
    _token: str | None = None

    def release(self) -> None:
        if self._token is not None and self._backend is not None:
            token, self._token = self._token, None
            self._backend.slot_free(f"conc:{self.principal.org_id}", token)


def admit(principal: Principal, *, estimated_tokens: int) -> Admission:
    """Admit a call or raise RateLimited / ConcurrencyLimited (429) with ``retry_after``."""
    backend = counters()
    now = time.time()
    windows = spend_windows(principal) if principal.has_windows else []
    for w in windows:
        if w.used >= w.limit:
            raise RateLimited(
                f"{w.name} exceeded: {_usd(w.used)} / {_usd(w.limit)} USD used; "
                f"resets at {dt.datetime.fromtimestamp(w.reset_at, dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
                retry_after=max(1, w.reset_at - int(now)),
            )
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
    live["win_delta"] = 0  # reservations and settlements from here on move the windows' use
    if principal.has_windows:
        live["windows"] = windows
    if principal.rpm is not None:
        live["rpm_used"] = rpm_used
    return Admission(principal, windows, backend, token)


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
    live = getattr(principal, "live", None) or {}
    wallet, key = live.get("wallet"), live.get("key")
    if wallet is None or key is None:
        with read_connection() as conn:
            row = conn.execute(_ENVELOPE_SQL, {"b_key": principal.key_id, "b_wallet": principal.wallet_id}).first()
        wallet = (row.balance_credits, row.reserved_credits) if row is not None else (0, 0)
        key = (row.spent_credits, row.kr, row.quota_credits) if row is not None else (0, 0, None)
    spendable = max(0, int(wallet[0] - wallet[1]))
    headers = {"X-Org-Quota-Remaining-Credits": str(spendable)}
    if key[2] is not None:
        headers["X-Quota-Remaining-Credits"] = str(max(0, key[2] - key[0] - key[1]))
    now = time.time()
    windows = _live_windows(principal, live)
    if windows:
        w = min(windows, key=lambda w: (w.remaining / w.limit if w.limit else 0, w.remaining))
        limit, remaining, reset = w.limit, w.remaining, w.reset_at
    elif principal.rpm is not None:
        used = live.get("rpm_used")
        if used is None:
            _, used = counters().window_add(f"rpm:{principal.key_id}", 0, principal.rpm, now)
        limit, remaining, reset = principal.rpm, max(0, principal.rpm - used), (int(now // 60) + 1) * 60
    else:
        limit, remaining, reset = spendable, spendable, int(math.ceil(now)) + 60
    headers.update({"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(reset)})
    return headers


def _live_windows(principal: Principal, live: dict[str, Any]) -> list[Window]:
    """The spend windows as admitted, moved by this call's own reservation and settlement since."""
    if not principal.has_windows:
        return []
    cached = live.get("windows")
    if cached is None:
        return spend_windows(principal)
    delta = int(live.get("win_delta", 0))
    return [Window(w.name, w.limit, max(0, w.used + delta), w.reset_at) for w in cached]
