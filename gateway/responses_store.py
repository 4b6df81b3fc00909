"""Stateful Responses: ``store``, ``previous_response_id`` and the ``/v1/responses/{id}`` endpoints.

A Responses call with ``store`` true (the default, as OpenAI's) keeps one row
per response for 30 days, per account: its own input items, the whole
conversation that reached the upstream and the response object as answered
(same id, stream or not). ``previous_response_id`` rebuilds the conversation
before the body is parsed: the earlier row's conversation and its output items
go in front of this call's input, so any upstream gets every turn through the
ordinary translation (reasoning items with their ``encrypted_content`` become
thinking parts that reach the vendor that can verify them). ``instructions``
are not carried over, as OpenAI's are not. Another account's id is 404.

The row is written (one insert, committed) before the answer completes, so a
client may chain the next call at once. ``store: false`` keeps nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from core import db as core_db
from core.errors import InvalidRequest, NotFound
from core.keys import Principal
from core.models import StoredResponse, utcnow

KEEP = dt.timedelta(days=30)
_ITEM_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


@dataclass
class State:
    """What a Responses call keeps: its own input, the conversation sent upstream, where it continues from."""

    store: bool
    previous_id: str | None
    own_items: list[dict[str, Any]]
    conversation: list[Any]


def _table() -> sa.Table:
    return StoredResponse.__table__


def _engine() -> sa.Engine:
    return core_db.get_db().engine


def input_list(value: Any) -> list[Any]:
    """``input`` as a list of items (a bare string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return list(value) if isinstance(value, list) else []


def prepare(raw: dict[str, Any], org_id: int) -> tuple[dict[str, Any], State]:
    """Return the body with any earlier turns in front of its input, and the call's state.

    400 on a malformed ``store`` / ``previous_response_id``; 404 when the id is not this account's.
    """
    store = raw.get("store", True)
    if store is None:
        store = True
    if not isinstance(store, bool):
        raise InvalidRequest("store: expected a boolean", param="store")
    prev = raw.get("previous_response_id")
    if prev is not None and (not isinstance(prev, str) or not prev):
        raise InvalidRequest("previous_response_id: expected a response id", param="previous_response_id")
    own = input_list(raw.get("input"))
    body = {k: v for k, v in raw.items() if k != "previous_response_id"}
    if prev is None:
        return body, State(store, None, own, own)
    row = load(org_id, prev)
    if raw.get("input") is None:
        raise InvalidRequest("Missing required parameter: 'input'", param="input")
    conversation = continued(row.conversation, row.response, own)
    body["input"] = conversation
    return body, State(store, prev, own, conversation)


def continued(conversation: list[Any], response: dict[str, Any], own: list[Any]) -> list[Any]:
    """The input a call continuing ``response`` sends: the conversation that led to it, its output, then ``own``.

    Output items are valid input items as they are (messages, reasoning with its state, calls, searches).
    """
    return list(conversation) + list(response.get("output") or []) + list(own)


def with_ids(items: list[Any], rid: str) -> list[Any]:
    """The input items as OpenAI lists them: an id (``<kind>_<response>_in<i>``) where the caller sent none,
    and a message's ``type``, ``status`` and content parts (a string becomes one text part)."""
    out = []
    tail = rid.removeprefix("resp_")
    for i, item in enumerate(items):
        if isinstance(item, dict):
            kind = item.get("type") or ("message" if "role" in item else "item")
            item = {"id": item.get("id") or f"{_ITEM_PREFIX.get(kind, 'item')}_{tail}_in{i}", **item}
            if kind == "message":
                item = {**item, "type": "message", "status": item.get("status") or "completed"}
                if isinstance(item.get("content"), str):
                    part = "output_text" if item.get("role") == "assistant" else "input_text"
                    item["content"] = [{"type": part, "text": item["content"]}]
        out.append(item)
    return out


def meta(state: State) -> dict[str, Any]:
    """The fields every response object of this call carries."""
    return {"store": state.store, "previous_response_id": state.previous_id}


def save(state: State, principal: Principal, body: dict[str, Any]) -> None:
    """Keep the answered response (committed before this returns); nothing when ``store`` is false."""
    if not state.store:
        return
    now = utcnow()
    row = {
        "id": body["id"], "org_id": principal.org_id, "api_key_id": principal.key_id,
        "model": str(body.get("model") or "")[:120], "previous_response_id": state.previous_id,
        "input_items": with_ids(state.own_items, body["id"]), "conversation": state.conversation,
        "response": json.loads(json.dumps(body)), "created_at": now, "expires_at": now + KEEP,
    }
    with _engine().begin() as conn:
        conn.execute(_table().insert().values(**row))


def load(org_id: int, rid: str) -> StoredResponse:
    """This account's live stored response ``rid``; 404 (OpenAI's shape) otherwise."""
    t = _table()
    with _engine().connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == rid, t.c.org_id == org_id,
                                              t.c.expires_at > utcnow())).mappings().first()
    if row is None:
        raise NotFound(f"Response with id '{rid}' not found.", param="response_id")
    return StoredResponse(**dict(row))


def delete(org_id: int, rid: str) -> dict[str, Any]:
    t = _table()
    with _engine().begin() as conn:
        n = conn.execute(t.delete().where(t.c.id == rid, t.c.org_id == org_id, t.c.expires_at > utcnow())).rowcount
    if not n:
        raise NotFound(f"Response with id '{rid}' not found.", param="response_id")
    return {"id": rid, "object": "response", "deleted": True}


def input_items_page(row: StoredResponse, *, order: str, limit: int, after: str | None) -> dict[str, Any]:
    """OpenAI's list shape over the response's own input items (newest first unless ``order=asc``)."""
    items = list(row.input_items)
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [i.get("id") for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit}


@click.command("expire-responses")
@with_appcontext
def expire_responses_command() -> None:
    """Delete stored Responses past their 30 days."""
    click.echo(f"deleted {expire_stored_responses()} expired stored response(s)")


def expire_stored_responses(now: dt.datetime | None = None) -> int:
    """Delete stored responses past their 30 days; the number deleted."""
    t = _table()
    with _engine().begin() as conn:
        return int(conn.execute(t.delete().where(t.c.expires_at <= (now or utcnow()))).rowcount or 0)
