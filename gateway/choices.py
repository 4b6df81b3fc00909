"""Several choices (OpenAI ``n``, Gemini ``candidateCount``) where the upstream cannot give them itself.

When the caller speaks the upstream's protocol the body passes through with
its ``n`` / ``candidateCount`` and the vendor answers every choice (native).
Otherwise the call is fanned out: the first upstream call is already open;
``n - 1`` more go out in parallel (threads, greenlets under gevent) to the
same model, each asking one answer. The answers merge into one: choice /
candidate ``i`` is branch ``i``'s, a stream interleaves the branches' chunks
as they arrive, each carrying its ``index``. Usage (and so the cost) is the
sum of the branches'; any branch that fails fails the call, free.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from dataclasses import replace
from typing import Any, Iterator

from flask import Response, stream_with_context

from core.errors import GatewayError, InvalidRequest, UpstreamError, UpstreamTimeout
from core.safejson import JSONObject
from gateway import chat_upstream, sse
from gateway.call import Call
from gateway.canonical import ChatResponse, Usage
from gateway.chat_upstream import Opened
from gateway.pipeline import (
    Answer,
    answer_usage,
    billable,
    fail,
    headers,
    log,
    message_id,
    release,
    settle,
    settle_and_answer,
)
from gateway.protocols.common import usage_to_openai
from gateway.protocols.gemini.parts import usage_to_gemini
from gateway.relay import Relay
from gateway.streaming import make_relay

_LIST_KEY = {"openai": "choices", "gemini": "candidates"}
FAN_OUT_MAX = 16  # parallel upstream calls one request may make; more choices need a native upstream


def add(a: Usage, b: Usage) -> Usage:
    """Two branches' usage together: every bucket, the searches each ran included (billed apiece)."""
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
        web_searches=a.web_searches + b.web_searches,
    )


def count(call: Call) -> int:
    return call.req.n if call.req is not None else 1


def serve(call: Call, first: Opened, deadline: float) -> Response:
    """Open the other branches, then answer with every choice (stream or not)."""
    if count(call) > FAN_OUT_MAX:
        first.reply.close()
        param = "n" if call.protocol == "openai" else "generationConfig.candidateCount"
        return fail(call, InvalidRequest(
            f"{param}: {count(call)} choices cannot be served by model '{first.card.id}' on this upstream "
            f"(at most {FAN_OUT_MAX} by parallel calls); not charged", param=param))
    try:
        branches = [first, *_open_rest(call, first, count(call) - 1, deadline)]
    except GatewayError as err:
        first.reply.close()
        return fail(call, err)
    if call.stream:
        hdrs = headers(call, cost=None)
        hdrs["Cache-Control"] = "no-cache"
        hdrs["X-Accel-Buffering"] = "no"
        gen = _relay(call, branches, deadline)
        return Response(stream_with_context(gen), status=200, headers=hdrs, mimetype="text/event-stream")
    return _complete(call, branches)


def _open_rest(call: Call, first: Opened, n: int, deadline: float) -> list[Opened]:
    """Open ``n`` more upstream calls at once, to the first branch's model; close them all on any failure."""
    asked, router = call.asked, call.router
    assert asked is not None and router is not None  # fanned out only once admitted and first answered
    results: list[Opened | GatewayError | None] = [None] * n

    def run(i: int) -> None:
        branch = copy.copy(call)
        branch.cards = [first.card]  # every choice from the model that answered, at its price
        branch.asked = replace(asked, raw=one_choice(asked.raw))  # a branch that passes through asks one answer too
        try:
            results[i] = chat_upstream.open_call(branch, router, deadline=deadline)
        except GatewayError as err:
            results[i] = err
        except Exception:  # noqa: BLE001 - reported as the branch's failure
            log.exception("a choice of %s failed to open", call.request_id)
            results[i] = UpstreamError("upstream unreachable")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.perf_counter()) + 5)
    opened = [r for r in results if isinstance(r, Opened)]
    if len(opened) < n:  # a branch failed, or did not answer in time (None)
        for r in opened:
            r.reply.close()
        raise next((e for e in results if isinstance(e, GatewayError)), UpstreamTimeout("a choice did not answer"))
    return opened


def one_choice(raw: JSONObject) -> JSONObject:
    """A caller's body asking one answer (``n`` / ``candidateCount`` left out), for a branch that passes through."""
    out = {k: v for k, v in raw.items() if k not in ("n", "best_of")}
    for key in ("generationConfig", "generation_config"):
        gen = raw.get(key)
        if isinstance(gen, dict):
            out[key] = {k: v for k, v in gen.items() if k not in ("candidateCount", "candidate_count")}
    return out


def _complete(call: Call, branches: list[Opened]) -> Response:
    """Non-stream: render each branch's answer as choice ``i``; settle the sum of their usage."""

    def produce() -> Answer:
        answers = [b.whole() for b in branches]
        total = Usage()
        for resp in answers:
            total = add(total, answer_usage(call, resp))
        body = merge(call.codec, call.protocol, answers, rid=message_id(call), model=branches[0].card.id,
                     created=int(time.time()), usage=total)
        return Answer(body, total, call.cost_of(total))

    return settle_and_answer(call, produce)


def merge(codec: Any, protocol: str, answers: list[ChatResponse], *, rid: str, model: str, created: int,
          usage: Usage) -> dict[str, Any]:
    """One answer of every branch's: choice / candidate ``i`` is answer ``i``'s, ``usage`` their sum."""
    key = _LIST_KEY[protocol]
    body: dict[str, Any] = codec.render_response(replace(answers[0], id=rid, usage=usage), model=model,
                                                 created=created)
    merged = []
    for i, answer in enumerate(answers):
        one = codec.render_response(replace(answer, id=rid), model=model, created=created)
        merged.append({**one[key][0], "index": i})
    body[key] = merged
    return body


# --- streams ------------------------------------------------------------------------------


def _pump(i: int, opened: Opened, out: queue.Queue[tuple[int, bytes | None | BaseException]]) -> None:
    try:
        for chunk in opened.chunks():
            out.put((i, chunk))
        out.put((i, None))
    except BaseException as exc:  # noqa: BLE001 - the relay ends the call with it
        out.put((i, exc))


def _relay(call: Call, branches: list[Opened], deadline: float) -> Iterator[bytes]:
    """Interleave the branches' streams as chunks arrive; settle the sum, then send the final usage event."""
    # Each branch asks one answer and reports its usage to us.
    relays = [make_relay(call, b, include_usage=True, choices=1) for b in branches]
    inbox: queue.Queue[tuple[int, bytes | None | BaseException]] = queue.Queue()
    for i, b in enumerate(branches):
        threading.Thread(target=_pump, args=(i, b, inbox), daemon=True).start()
    decoders = [sse.SSEDecoder() for _ in branches]
    open_branches, closed, reason = set(range(len(branches))), False, "upstream stream ended early"
    try:
        while open_branches:
            try:
                i, item = inbox.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                reason = "request deadline exceeded"
                break
            rel = relays[i]
            if item is None:
                out = rel.finish()
                open_branches.discard(i)
            elif isinstance(item, BaseException):
                reason = "upstream stream broke"
                break
            else:
                out = rel.feed(item)
            if rel.error is not None:  # its error event is not forwarded: ours follows the release
                reason = "upstream error event"
                break
            data = reindex(call.protocol, decoders[i].feed(out) + (decoders[i].flush() if item is None else []), i)
            if data:
                yield data
            if item is None and not rel.done:
                break
        if not open_branches and all(r.done and r.error is None for r in relays):
            closed = True
            yield _finish(call, relays)
        else:  # released before the error event goes out: the call is free once the caller sees it
            closed = True
            _release(call, relays, reason)
            _close_all(branches)
            yield call.codec.render_stream_error(UpstreamError(f"a choice failed: {reason}"))
    except GeneratorExit:
        if not closed:  # the client hung up: billed for what every branch delivered, within the hold
            closed = True
            _bill_delivered(call, relays)
        raise
    finally:
        if not closed:
            _release(call, relays, reason)
        _close_all(branches)


def _close_all(branches: list[Opened]) -> None:
    """Hang up every branch's upstream. A branch's pump may be inside a read of that very reply, and
    closing it then fails ("reentrant call"); the pump's read fails instead and it stops."""
    for b in branches:
        try:
            b.reply.close()
        except Exception:  # noqa: BLE001 - the pump thread is reading it; the read ends with an error
            pass


def reindex(protocol: str, events: list[sse.SSEEvent], i: int) -> bytes:
    """A branch's chunks as choice ``i``: its index set, its own usage and end marker held back."""
    out = []
    key = _LIST_KEY[protocol]
    for ev in events:
        if ev.data.strip() == "[DONE]":
            continue
        try:
            obj = json.loads(ev.data)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if protocol == "openai":
            if not obj.get(key) and obj.get("usage"):
                continue  # the branch's usage chunk: the sum goes out at the end
            obj.pop("usage", None)
        else:
            obj.pop("usageMetadata", None)
        for item in obj.get(key) or []:
            if isinstance(item, dict):
                item["index"] = i
        out.append(sse.encode(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), ev.event))
    return b"".join(out)


def _finish(call: Call, relays: list[Relay]) -> bytes:
    """Settle the sum of the branches' usage (committed), then the protocol's final usage event."""
    total = Usage()
    for rel in relays:
        total = add(total, billable(call, rel.usage or Usage(), rel.delivered_tokens))
    try:
        cost = settle(call, total, call.cost_of(total))
    except Exception:  # noqa: BLE001 - answered as an error, released below by the caller's finally
        log.exception("settling %s failed; answered as an error, not charged", call.request_id)
        _release(call, relays, "the settlement could not be written")
        return call.codec.render_stream_error(GatewayError("internal error; the call was not charged"))
    model = call.served.id if call.served is not None else ""
    return final_event(call.protocol, total, cost, rid=message_id(call), model=model, created=int(time.time()),
                       include_usage=call.include_usage)


def final_event(protocol: str, total: Usage, cost: int, *, rid: str, model: str, created: int,
                include_usage: bool) -> bytes:
    """The stream's end: OpenAI's usage chunk (when asked) and ``[DONE]``, or Gemini's last chunk with the sum."""
    if protocol == "openai":
        out = b""
        if include_usage:
            chunk: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": created,
                                     "model": model, "choices": [], "usage": usage_to_openai(total, cost_credits=cost)}
            out = sse.encode(json.dumps(chunk, separators=(",", ":")))
        return out + sse.encode("[DONE]")
    last: dict[str, Any] = {"candidates": [], "usageMetadata": usage_to_gemini(total, cost), "modelVersion": model,
                            "responseId": rid}
    return sse.encode(json.dumps(last, separators=(",", ":")))


def _bill_delivered(call: Call, relays: list[Relay]) -> None:
    total = Usage()
    for rel in relays:
        u = rel.usage or Usage()
        total = add(total, replace(u, input_tokens=u.input_tokens or call.input_tokens,
                                   output_tokens=max(u.output_tokens, rel.delivered_tokens)))
    try:
        settle(call, total, call.cost_of(total))
    except Exception:  # noqa: BLE001 - a stuck hold is released by expiry
        log.exception("closing %s failed", call.request_id)


def _release(call: Call, relays: list[Relay], reason: str) -> None:
    try:
        release(call, error=reason, status=502)
    except Exception:  # noqa: BLE001 - a stuck hold is released by expiry
        log.exception("releasing %s failed", call.request_id)
