"""Whose fault is a failure: the channel's, or one tenant's requests?

An upstream can fail for one account only: prompts that crash it, a feature
only that account sends. Counting those failures against the channel would
let one tenant open the channel's circuit for everyone. So each channel keeps
a record per tenant (the calling account, its org) beside its own, and a failure is
put on the channel only when

- at least ``policy.min_tenants`` tenants are each failing there
  (``policy.tenant_streak`` failures in a row), or
- no other tenant has been served there in the last ``policy.served_within_s``
  (nothing says the channel works: a real outage, or the only tenant), unless
  this tenant's requests failed, in that time, on a channel that was serving
  others: a backup channel that only the noisy tenant's retries reach is not
  judged on them.

Otherwise the failing tenant's own circuit on that channel opens (when its
own record is bad enough by the same ``BreakerPolicy``), and every other
tenant keeps the channel. The records are per process, like the channel's;
the circuits they open are shared (``gateway.routing.circuit``), and before a
process blames a channel for want of other tenants served there, the router
asks the shared store whether another worker served one (keep-alive can put
all of one tenant's calls on one worker).

The price of the second rule: in a real outage seen by one busy tenant while
another tenant's last answer there is a few seconds old, the busy tenant's
own circuit opens first; the channel's opens as soon as a second tenant
fails there twice too (attempts retried on another channel before any byte
reached the caller).
"""

from __future__ import annotations

from typing import Callable

from .health import FAIL, OK, BreakerPolicy, Health

NO_TENANT = "-"  # calls made for no account (task polling): one tenant of their own
MAX_RECORDS = 4096
MAX_SERVED = 256


class Tenants:
    """Per-(channel, tenant) records, recent successes per channel, and the blame rule."""

    def __init__(self, clock: Callable[[], float], span_s: float = 60.0, suspect_s: float = 10.0) -> None:
        self.clock = clock
        self.span_s = span_s
        self.suspect_s = suspect_s  # the router passes its policy's served_within_s
        self._records: dict[tuple[str, str], Health] = {}
        self._served: dict[str, dict[str, float]] = {}  # channel -> tenant -> last success, oldest first
        self._failing: dict[str, dict[str, None]] = {}  # channel -> tenants on a failure streak there
        self._suspects: dict[str, float] = {}  # tenant -> when it last failed where others were served

    def health(self, channel: str, tenant: str) -> Health:
        """This tenant's record on this channel (made on first use; the least recently used go first)."""
        key = (channel, tenant)
        h = self._records.pop(key, None)
        if h is None:
            h = Health(self.clock, self.span_s)
            if len(self._records) >= MAX_RECORDS:
                old = next(iter(self._records))
                del self._records[old]
                self._failing.get(old[0], {}).pop(old[1], None)
        self._records[key] = h
        return h

    def record(self, channel: str, tenant: str, outcome: str, latency_ms: float) -> Health:
        """Fold one attempt into the tenant's record on the channel; return that record."""
        h = self.health(channel, tenant)
        h.record(outcome, latency_ms)
        if outcome == OK:
            served = self._served.setdefault(channel, {})
            served.pop(tenant, None)
            served[tenant] = self.clock()
            if len(served) > MAX_SERVED:
                del served[next(iter(served))]
            self._failing.get(channel, {}).pop(tenant, None)
        elif outcome == FAIL:
            self._failing.setdefault(channel, {})[tenant] = None
            if self._others_served(channel, tenant, self.clock() - self.suspect_s):
                self._suspects.pop(tenant, None)
                self._suspects[tenant] = self.clock()
                if len(self._suspects) > MAX_RECORDS:
                    del self._suspects[next(iter(self._suspects))]
        return h

    def blames_channel(self, channel: str, tenant: str, policy: BreakerPolicy) -> str:
        """Say why this tenant's failures on the channel are the channel's fault, or "" (see the module).

        "tenants": several tenants are failing there; "unserved": nobody else was served there lately,
        as far as this process saw (the router asks the other workers before acting on it).
        """
        if self._failing_tenants(channel, policy) >= policy.min_tenants:
            return "tenants"
        since = self.clock() - policy.served_within_s
        if self._others_served(channel, tenant, since) or self._suspects.get(tenant, -1e18) >= since:
            return ""
        return "unserved"

    def _others_served(self, channel: str, tenant: str, since: float) -> bool:
        for who, at in reversed(self._served.get(channel, {}).items()):
            if at < since:
                return False
            if who != tenant:
                return True
        return False

    def _failing_tenants(self, channel: str, policy: BreakerPolicy) -> int:
        now = self.clock()
        n = 0
        for who in self._failing.get(channel, {}):
            h = self._records.get((channel, who))
            if h and h.consecutive >= policy.tenant_streak and now - h.streak_since <= self.span_s:
                n += 1
        return n

    def reset(self, channel: str, tenant: str | None = None) -> None:
        """Forget a tenant's record on a channel (its circuit closed), or every tenant's when None."""
        if tenant is not None:
            self._records.pop((channel, tenant), None)
            self._failing.get(channel, {}).pop(tenant, None)
            return
        for key in [k for k in self._records if k[0] == channel]:
            del self._records[key]
        self._failing.pop(channel, None)
