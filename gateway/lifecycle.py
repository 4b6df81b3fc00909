"""One call's lifecycle, whatever its kind: admit, reserve, try the targets, answer, settle or release.

The order is fixed: key -> body -> models and estimate -> limits -> (dry run)
-> claim -> reservation -> the targets in order (``gateway.upstream``'s one
retry loop) -> the answer, settled or released through ``gateway.pipeline``.
A kind of work (``Work``) fills in what differs: chat (``gateway.chat``);
embeddings, rerank, images and audio (``gateway.media_call``); a video task's
submit (``gateway.tasks``). Every exit renders in the caller's protocol and
carries the quota and cost headers.
"""

from __future__ import annotations

from typing import Callable, Protocol, TypeVar

import sqlalchemy.exc
from flask import Response, current_app, request

from core import keys, ledger, limits
from core.errors import GatewayError, InsufficientBalance, QuotaExceeded, StalePrincipal
from core.ratecard import ModelCard
from gateway import auth, upstream
from gateway.call import Call
from gateway.pipeline import authenticate, fail, headers, is_dry_run, json_response, log, release_admission
from gateway.routing import Target, get_router
from gateway.upstream import Timeout

R = TypeVar("R")


class Work(Protocol[R]):
    """A kind of work: what its calls parse, estimate, send and answer. ``R`` is one target's answer."""

    def parse(self, call: Call) -> None:
        """Read and check the body (400, 413); the key is known, its permissions not yet judged."""
        ...

    def judge(self, call: Call) -> Response | None:
        """Resolve the models (``call.cards``) and the upper-bound cost (``call.estimate``, ``call.input_tokens``).

        Runs again if the key changed meanwhile. An answer here ends the call
        before any limit or money is taken (a task submitted before: its replay).
        """
        ...

    def claim(self, call: Call) -> Response | None:
        """Take what the call holds besides money (a task's ``out_task_id``), once admitted and before the
        reservation; an answer here ends the call (another call took it first)."""
        return None

    def abandon(self, call: Call) -> None:
        """Give up the claim: the call failed, or is judged again."""
        return None

    def speaks(self, protocol: str) -> bool:
        """Whether a channel of ``protocol`` can take this work (the others are skipped)."""
        return True

    def exchange(self, call: Call, card: ModelCard, target: Target) -> Callable[[Timeout], R]:
        """Render the request for ``target``; the returned step sends it (``gateway.upstream.Exchange``)."""
        ...

    def answer(self, call: Call, reply: R, deadline: float) -> Response:
        """Answer the caller from the upstream's reply, through ``gateway.pipeline``'s settle or release."""
        ...


def serve(call: Call, work: Work[R]) -> Response:
    """Serve one call of ``work``'s kind: every step above, every exit answered."""
    try:
        early = admit(call, work)
        if early is not None:
            release_admission(call)
            return early
        call.router = router = get_router(current_app)
        deadline = call.started + float(current_app.config.get("REQUEST_DEADLINE_S", 600))
        reply = upstream.first_answer(call, router, lambda card, target: work.exchange(call, card, target),
                                      deadline=deadline, speaks=work.speaks)
    except GatewayError as err:
        return _refuse(call, work, err)
    except sqlalchemy.exc.TimeoutError:  # every pooled database connection busy: shed load, retryable
        log.warning("database pool exhausted in %s", call.request_id)
        return _refuse(call, work, GatewayError("the gateway is busy; retry shortly (not charged)", status=503,
                                                code="overloaded", retry_after=1))
    except sqlalchemy.exc.OperationalError as exc:  # no connection to be had ("too many clients", a restart)
        log.warning("database unavailable in %s: %s", call.request_id, str(exc.orig).splitlines()[0])
        return _refuse(call, work, GatewayError("the gateway cannot reach its database; retry shortly "
                                                "(not charged)", status=503, code="overloaded", retry_after=1))
    except Exception:  # noqa: BLE001 - the caller gets a clean 500 in its shape, the log the trace
        log.exception("internal error in %s", call.request_id)
        return _refuse(call, work, GatewayError("internal error; the call was not charged"))
    return work.answer(call, reply, deadline)


def _refuse(call: Call, work: Work[R], err: GatewayError) -> Response:
    """Undo the claim, free the hold (or log the refusal) and answer with the error."""
    try:
        work.abandon(call)
    except Exception:  # noqa: BLE001 - the hold is still freed and the caller still answered
        log.exception("could not give up the claim of %s", call.request_id)
    return fail(call, err)


def admit(call: Call, work: Work[R]) -> Response | None:
    """Run every check before the upstream; returns a response for a dry run or an early answer.

    The key comes from this process's cache (``keys.authenticate_cached``). If it changed
    meanwhile, the reservation says so (StalePrincipal); a refusal made on the cached copy
    stands only if the key's version is still the copy's. Otherwise the call is judged
    again on a fresh read of the key.
    """
    authenticate(call, cached=True)
    work.parse(call)
    for attempt in range(3):
        try:
            return _judge(call, work)
        except (InsufficientBalance, QuotaExceeded):
            raise  # judged under the row locks on the stored figures
        except GatewayError as err:
            release_admission(call)
            work.abandon(call)
            p = call.principal
            if p is None or p.version is None or attempt == 2:
                raise
            if not isinstance(err, StalePrincipal) and keys.is_current(p):
                raise  # the cached copy was right: the refusal stands
            keys.forget(auth.extract_key(request, gemini=call.protocol == "gemini") or "")
            # Read the key again (caching the new row); a third try reads it without a version at all.
            authenticate(call, cached=attempt == 0)
    raise AssertionError("unreachable")


def _judge(call: Call, work: Work[R]) -> Response | None:
    """Models, the estimate, limits and the reservation for the current principal."""
    early = work.judge(call)
    if early is not None:
        return early
    principal = call.principal
    assert principal is not None
    call.admission = limits.admit(principal, estimated_tokens=call.input_tokens)
    if is_dry_run():
        body = {"estimated_credits": call.estimate, "model": call.cards[0].id, "input_tokens": call.input_tokens}
        return json_response(body, 200, headers(call, cost=0))
    early = work.claim(call)
    if early is not None:
        return early
    call.hold = ledger.reserve(principal, call.request_id, call.estimate)
    return None
