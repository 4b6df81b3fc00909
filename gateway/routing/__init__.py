"""Routing: which upstream (channel, key) serves a call, and what each answer teaches.

Rooms, each calling only those after it: ``router`` (the order of attempts
and the outcome of each) -> ``tenants`` (whose fault a failure is) ->
``health`` (rolling windows, scores, the breaker policy); ``router`` ->
``circuit`` (shared circuit flags, key cooldowns, probe claims), ``sticky``
(session pins) and ``stats`` (status counters and document) -> ``state``
(the ``Store`` they share: Redis or this process). ``target``: one attempt,
as the router yields it.
"""

from .router import ECHO_CHANNEL, Router, get_router
from .state import Store
from .target import Target

__all__ = ["ECHO_CHANNEL", "Router", "Store", "Target", "get_router"]
