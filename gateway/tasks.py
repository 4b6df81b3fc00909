"""Async task routes: ``/v1/tasks/submit``, ``query``, ``cancel/<id>``, ``stream/<id>`` (OpenAI-shaped errors).

Submit reserves ``seconds x per_second`` (``params.seconds``, else
``DEFAULT_SECONDS``) and sends the job upstream; the task then holds that
reservation until it ends (see ``gateway.media_tasks``). ``out_task_id`` is an
idempotency key per org: the same id with the same model and params answers
with the task already made; with anything else, 409 ``duplicate_out_task_id``.
Query, cancel and stream are free; each answer carries the quota envelope and
cost headers like every /v1 call (cost 0: the task's own cost is
``credits_used``, in the usage row under the submit call's request id).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Iterator

import click
from flask import Blueprint, Response, current_app, request, stream_with_context

from core import jobs, ratecard
from core.errors import Conflict, GatewayError, InvalidRequest, TaskNotFound
from core.models import new_id
from core.ratecard import ModelCard
from gateway import lifecycle, media_tasks, media_upstream, pipeline
from gateway.call import Call
from gateway.canonical import Usage
from gateway.media_call import json_body, new_call, resolve
from gateway.media_upstream import Outbound, Reply
from gateway.pipeline import Answer
from gateway.routing import Target
from gateway.upstream import Timeout

bp = Blueprint("tasks", __name__, cli_group=None)
log = logging.getLogger("bytespike.gateway.tasks")

DEFAULT_SECONDS = 8  # reserved when params.seconds is absent (the longest common default)
MAX_SECONDS = 120
STREAM_POLL_S = 1.0
FIRST_POLL_S = 2.0  # the first background poll of a submitted task (then backoff, jobs/work.py)


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _answer(call: Call, task: dict[str, Any], status: int = 200) -> Response:
    return pipeline.json_response(media_tasks.render(task, base_url=_base_url()), status,
                                  pipeline.headers(call, cost=0))


def _seconds(params: dict[str, Any]) -> int:
    value = params.get("seconds", params.get("duration"))
    if value is None:
        return DEFAULT_SECONDS
    try:
        n = int(str(value))
    except ValueError:
        raise InvalidRequest("params.seconds: must be a whole number of seconds", param="params.seconds") from None
    if not 1 <= n <= MAX_SECONDS:
        raise InvalidRequest(f"params.seconds: must be between 1 and {MAX_SECONDS}", param="params.seconds")
    return n


def upstream_params(params: dict[str, Any], seconds: int) -> dict[str, Any]:
    """The body for OpenAI's video API: a ``duration`` becomes its ``seconds`` (a string there)."""
    if "seconds" in params or "duration" not in params:
        return dict(params)
    out = {k: v for k, v in params.items() if k != "duration"}
    out["seconds"] = str(seconds)
    return out


def _submit_fields(body: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    params, out_id, callback = body.get("params", {}), body.get("out_task_id"), body.get("callback_url")
    if not isinstance(params, dict):
        raise InvalidRequest("params: must be an object", param="params")
    if out_id is not None and (not isinstance(out_id, str) or not 0 < len(out_id) <= 120):
        raise InvalidRequest("out_task_id: a string of 1 to 120 characters", param="out_task_id")
    if callback is not None and (not isinstance(callback, str) or len(callback) > 500
                                 or not callback.startswith(("http://", "https://"))):
        raise InvalidRequest("callback_url: an http(s) URL of at most 500 characters", param="callback_url")
    return params, out_id, callback


@bp.post("/v1/tasks/submit")
def submit() -> Response:
    """Start a task, or answer with the one this ``out_task_id`` already made."""
    return lifecycle.serve(new_call("tasks"), TaskSubmit())


class TaskSubmit(lifecycle.Work[Reply]):
    """A video job as a kind of work: the task row is claimed before the reservation, and the hold handed to it."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.out_id: str | None = None
        self.callback: str | None = None
        self.seconds = DEFAULT_SECONDS
        self.digest = ""
        self.task_id: str | None = None

    def parse(self, call: Call) -> None:
        self.body = json_body(call)

    def judge(self, call: Call) -> Response | None:
        card = resolve(call, self.body.get("model"), kinds=("video",), what="async tasks")
        self.params, self.out_id, self.callback = _submit_fields(self.body)
        self.seconds = _seconds(self.params)
        self.digest = media_tasks.params_hash(card.id, self.params)
        if self.out_id is not None:
            known = _replay(call, self.out_id, self.digest)
            if known is not None:
                return known
        call.estimate = ratecard.seconds_cost_credits(card, self.seconds)
        return None

    def claim(self, call: Call) -> Response | None:
        p = call.principal
        assert p is not None
        task_id = new_id("task")
        row = {"id": task_id, "org_id": p.org_id, "api_key_id": p.key_id, "out_task_id": self.out_id,
               "model": call.cards[0].id, "params": self.params, "params_hash": self.digest, "state": "pending",
               "estimated_credits": call.estimate, "callback_url": self.callback, "request_id": call.request_id,
               "wallet_id": p.wallet_id, "member_id": p.member_id, "seconds_total": self.seconds}
        if not media_tasks.insert(row):  # a concurrent submit with this out_task_id won
            known = _replay(call, self.out_id or "", self.digest)
            if known is None:
                raise GatewayError("task conflict")
            return known
        self.task_id = task_id
        return None

    def abandon(self, call: Call) -> None:
        if self.task_id is not None:
            media_tasks.delete(self.task_id)  # it never reached the upstream: forgotten, not charged
            self.task_id = None

    def speaks(self, protocol: str) -> bool:
        return media_upstream.speaks(protocol)

    def exchange(self, call: Call, card: ModelCard, target: Target) -> Callable[[Timeout], Reply]:
        out = Outbound(path="videos", json=upstream_params(self.params, self.seconds))
        return media_upstream.exchange(out)(card, target)

    def answer(self, call: Call, reply: Reply, deadline: float) -> Response:
        return pipeline.hand_over(call, lambda: self._started(call, reply))

    def _started(self, call: Call, reply: Reply) -> Answer:
        """Record where the job went; the vendor is polled from here on, not only when asked."""
        task_id = self.task_id
        assert task_id is not None
        try:
            data = reply.json()
            media_tasks.submitted(task_id, data, reply, call.provider)
            task = media_tasks.apply(media_tasks.get(task_id) or {}, data, base_url=_base_url())
            if task.get("state") in media_tasks.LIVE:
                jobs.try_enqueue("advance_task", task_id, 0, delay_s=FIRST_POLL_S)
        except Exception:
            self.abandon(call)
            raise
        return Answer(media_tasks.render(task, base_url=_base_url()), Usage(), 0)


def _replay(call: Call, out_id: str, digest: str) -> Response | None:
    """The existing task for this ``out_task_id`` (same params), a 409 (other params), or None."""
    assert call.principal is not None
    known = media_tasks.by_out_id(call.principal.org_id, out_id)
    if known is None:
        return None
    if known["params_hash"] != digest:
        raise Conflict(f"out_task_id '{out_id}' was already used with other parameters (duplicate_out_task_id)",
                       code="duplicate_out_task_id", param="out_task_id")
    return _answer(call, media_tasks.refresh(known, base_url=_base_url()))


def _find(call: Call, task_id: Any = None, out_id: Any = None) -> dict[str, Any]:
    task = None
    if isinstance(task_id, str) and task_id:
        task = media_tasks.get(task_id, call.principal.org_id)
    elif isinstance(out_id, str) and out_id:
        task = media_tasks.by_out_id(call.principal.org_id, out_id)
    elif task_id is None and out_id is None:
        raise InvalidRequest("task_id: field required", param="task_id")
    if task is None:
        raise TaskNotFound(f"task '{task_id or out_id}' not found", param="task_id")
    return task


def _free(handler: Callable[[Call], Response]) -> Response:
    """Run a free task call: auth, then ``handler(call)``; errors in OpenAI's shape."""
    call = new_call("tasks")
    try:
        pipeline.authenticate(call)
        return handler(call)
    except GatewayError as err:
        return pipeline.error_response(call, err)
    except Exception:  # noqa: BLE001
        log.exception("internal error in %s", call.request_id)
        return pipeline.error_response(call, GatewayError("internal error"))


@bp.post("/v1/tasks/query")
def query() -> Response:
    def run(call: Call) -> Response:
        body = json_body(call)
        task = _find(call, body.get("task_id"), body.get("out_task_id"))
        return _answer(call, media_tasks.refresh(task, base_url=_base_url()))

    return _free(run)


@bp.post("/v1/tasks/cancel/<task_id>")
def cancel(task_id: str) -> Response:
    def run(call: Call) -> Response:
        task = _find(call, task_id)
        return _answer(call, media_tasks.cancel(task, base_url=_base_url()))

    return _free(run)


@bp.get("/v1/tasks/stream/<task_id>")
def stream(task_id: str) -> Response:
    """Server-sent events: the task each time its state or progress changes, until it is final."""
    def run(call: Call) -> Response:
        task = _find(call, task_id)
        hdrs = pipeline.headers(call, cost=0)
        hdrs.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        gen = _events(task, _base_url(), float(current_app.config.get("REQUEST_DEADLINE_S", 600)))
        return Response(stream_with_context(gen), status=200, headers=hdrs, mimetype="text/event-stream")

    return _free(run)


def _events(task: dict[str, Any], base_url: str, limit_s: float) -> Iterator[bytes]:
    last = None
    ends = time.monotonic() + limit_s
    while True:
        task = media_tasks.refresh(task, base_url=base_url)
        seen = (task["state"], task["progress"])
        if seen != last:
            last = seen
            data = json.dumps(media_tasks.render(task, base_url=base_url), ensure_ascii=False)
            yield f"event: task\ndata: {data}\n\n".encode()
        if task["state"] in media_tasks.FINAL or time.monotonic() >= ends:
            return
        time.sleep(STREAM_POLL_S)


@bp.get("/v1/tasks/<task_id>/content")
def content(task_id: str) -> Response:
    """The finished video, fetched from the upstream with the channel's key."""
    def run(call: Call) -> Response:
        task = _find(call, task_id)
        if task["state"] != "completed":
            raise InvalidRequest(f"task '{task_id}' is {task['state']}, not completed", param="task_id")
        reply = media_tasks.upstream_call(task, "GET", f"videos/{task['upstream_id']}/content", stream=True)
        hdrs = pipeline.headers(call, cost=0)
        if reply.headers.get("content-length"):
            hdrs["content-length"] = reply.headers["content-length"]
        ctype = reply.headers.get("content-type") or "video/mp4"
        return Response(_relay(reply), status=200, headers=hdrs, content_type=ctype)

    return _free(run)


def _relay(reply: Reply) -> Iterator[bytes]:
    try:
        yield from reply.chunks or ()
    finally:
        if reply.close is not None:
            reply.close()


@bp.cli.command("poll-tasks")
@click.option("--limit", type=int, default=500, show_default=True)
def poll_tasks_command(limit: int) -> None:
    """Poll every live task's upstream once (moves states on and sends callbacks without a caller)."""
    ids = media_tasks.live_ids(limit)
    base = str(current_app.config.get("BYTESPIKE_PUBLIC_URL") or "")
    moved = 0
    for tid in ids:
        task = media_tasks.get(tid)
        if task is not None:
            after = media_tasks.refresh(task, base_url=base)
            moved += after["state"] != task["state"]
    click.echo(f"polled {len(ids)} live task(s); {moved} changed state")
