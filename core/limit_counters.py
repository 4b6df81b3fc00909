"""Shared counters behind the rate limits: rpm, tpm and in-flight slots, in Redis or in this process.

Each admission is one atomic step (a Lua script in Redis, one lock here): rpm,
tpm and the concurrency slot are judged and counted together, or not at all.
rpm/tpm use a sliding-window approximation over two fixed one-minute windows.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

log = logging.getLogger("core.limits")
SLOT_TTL_S = 900.0  # at least: an in-flight slot not released within this lapses (crashed worker)

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

# Move a token window by what the call really used: more counts in the current minute; less is
# taken back from the minute that counted the estimate, while that minute still weighs.
_CORRECT_LUA = """
local d = tonumber(ARGV[1])
if d > 0 then
  redis.call('INCRBY', KEYS[2], d)
  redis.call('EXPIRE', KEYS[2], 180)
elseif d < 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('INCRBY', KEYS[1], d)
  if v < 0 then redis.call('INCRBY', KEYS[1], -v) end
end
return 1
"""


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
        self._correct = self.r.register_script(_CORRECT_LUA)

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
        args: list[Any] = [repr(weight), -1 if rpm is None else rpm, tokens, -1 if tpm is None else tpm,
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

    def correct(self, name: str, minute: int, delta: int, now: float) -> None:
        """Add ``delta`` (may be negative) to counter ``name``, counted at ``minute``; one round trip."""
        if not delta or (delta < 0 and minute < int(now // 60) - 1):
            return
        keys = [f"{self.prefix}{name}:{minute}", f"{self.prefix}{name}:{int(now // 60)}"]
        try:
            self._correct(keys=keys, args=[delta])
        except self._errors:
            log.warning("redis unavailable: the token correction falls back to this process")
            self.fallback.correct(name, minute, delta, now)

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

    def correct(self, name: str, minute: int, delta: int, now: float) -> None:
        """The same correction as ``RedisCounters.correct``, in this process."""
        current = int(now // 60)
        with self.lock:
            if delta > 0:
                self.windows[f"{name}:{current}"] = self.windows.get(f"{name}:{current}", 0) + delta
            elif delta < 0 and minute >= current - 1 and f"{name}:{minute}" in self.windows:
                self.windows[f"{name}:{minute}"] = max(0, self.windows[f"{name}:{minute}"] + delta)

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
