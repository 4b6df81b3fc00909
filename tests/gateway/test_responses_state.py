"""Stateful Responses through the official openai SDK: store, previous_response_id, retrieve, delete, input items."""

from __future__ import annotations

import datetime as dt
import re

import openai
import pytest
import sqlalchemy as sa

from core.models import StoredResponse

ID = re.compile(r"^resp_[0-9a-f]{24}$")


def oai(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def _texts(body: object) -> str:
    return str(body)


@pytest.mark.parametrize("model,vendor", [("claude-sonnet-4-6", "anthropic"), ("gpt-5-4", "openai")])
def test_previous_response_id_continues_the_conversation(gateway, shared_key, model, vendor):
    client = oai(gateway, shared_key)
    first = client.responses.create(model=model, input="my name is Ada [fake text=Nice_to_meet_you]",
                                    instructions="be brief")
    assert ID.match(first.id) and first.store is True
    second = client.responses.create(model=model, input="what is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    body = gateway.fakes[vendor].seen[-1].body
    sent = _texts(body)
    assert "my name is Ada" in sent and "Nice to meet you" in sent and "what is my name?" in sent
    assert sent.index("my name is Ada") < sent.index("Nice to meet you") < sent.index("what is my name?")
    assert "be brief" not in sent  # instructions are not carried over, as OpenAI's are not
    # A third turn chains through both earlier ones, streamed this time.
    with client.responses.stream(model=model, input="and again?", previous_response_id=second.id) as s:
        third = s.get_final_response()
    sent = _texts(gateway.fakes[vendor].seen[-1].body)
    assert all(t in sent for t in ("my name is Ada", "what is my name?", "and again?"))
    assert ID.match(third.id) and client.responses.retrieve(third.id).id == third.id


def test_retrieve_delete_and_input_items(gateway, shared_key):
    client = oai(gateway, shared_key)
    resp = client.responses.create(model="gpt-5-4", input=[
        {"role": "developer", "content": "be kind"},
        {"role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
    ])
    got = client.responses.retrieve(resp.id)
    assert got.id == resp.id and got.output_text == resp.output_text and got.usage.total_tokens == resp.usage.total_tokens
    items = client.responses.input_items.list(resp.id)
    assert [i.role for i in items.data] == ["user", "developer"]  # newest first, as OpenAI lists them
    assert [(i.type, i.status) for i in items.data] == [("message", "completed")] * 2
    asc = client.responses.input_items.list(resp.id, order="asc", limit=1)
    assert len(asc.data) == 1 and asc.data[0].role == "developer" and asc.has_more
    assert asc.data[0].id and asc.first_id == asc.data[0].id
    deleted = client.responses.delete(resp.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(resp.id)
    assert info.value.body["code"] == "not_found" and resp.id in info.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-5-4", input="more", previous_response_id=resp.id)


def test_delete_answers_openais_deleted_shape(gateway, shared_key):
    import requests

    resp = oai(gateway, shared_key).responses.create(model="gpt-5-4", input="hi")
    r = requests.delete(f"{gateway.base_url}/v1/responses/{resp.id}",
                        headers={"Authorization": f"Bearer {shared_key}"}, timeout=60)
    assert r.status_code == 200 and r.json() == {"id": resp.id, "object": "response", "deleted": True}
    r = requests.delete(f"{gateway.base_url}/v1/responses/{resp.id}",
                        headers={"Authorization": f"Bearer {shared_key}"}, timeout=60)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"


def test_stream_and_non_stream_ids_share_one_format_and_are_stored(gateway, shared_key):
    client = oai(gateway, shared_key)
    for model in ("claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro"):
        plain = client.responses.create(model=model, input="hi")
        with client.responses.stream(model=model, input="hi") as s:
            streamed = s.get_final_response()
        assert ID.match(plain.id) and ID.match(streamed.id), (plain.id, streamed.id)
        for rid in (plain.id, streamed.id):
            assert client.responses.retrieve(rid).id == rid
        assert plain.output[0].id.startswith("msg_" + plain.id[5:])


def test_another_account_gets_404(gateway, shared_key):
    resp = oai(gateway, shared_key).responses.create(model="gpt-5-4", input="secret")
    other = oai(gateway, gateway.account())
    with pytest.raises(openai.NotFoundError) as info:
        other.responses.retrieve(resp.id)
    assert info.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(resp.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="gpt-5-4", input="x", previous_response_id=resp.id)
    assert oai(gateway, shared_key).responses.retrieve(resp.id).id == resp.id  # still there for its owner


def test_store_false_keeps_nothing(gateway, shared_key):
    client = oai(gateway, shared_key)
    with gateway.engine.connect() as c:
        before = c.execute(sa.text("SELECT count(*) FROM stored_responses")).scalar()
    plain = client.responses.create(model="claude-sonnet-4-6", input="hi", store=False)
    with client.responses.stream(model="gpt-5-4", input="hi", store=False) as s:
        streamed = s.get_final_response()
    assert plain.store is False and streamed.store is False
    for rid in (plain.id, streamed.id):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(rid)
    with gateway.engine.connect() as c:
        ids = set(c.execute(sa.text("SELECT id FROM stored_responses")).scalars())
        after = c.execute(sa.text("SELECT count(*) FROM stored_responses")).scalar()
    assert plain.id not in ids and streamed.id not in ids and after == before


def test_expiry_sweep_deletes_after_30_days(gateway, shared_key):
    client = oai(gateway, shared_key)
    old = client.responses.create(model="gpt-5-4", input="old")
    fresh = client.responses.create(model="gpt-5-4", input="fresh")
    t = StoredResponse.__table__
    with gateway.engine.begin() as c:
        created, expires = c.execute(sa.select(t.c.created_at, t.c.expires_at).where(t.c.id == old.id)).one()
        assert dt.timedelta(days=29, hours=23) < expires - created <= dt.timedelta(days=30)
        c.execute(sa.text("UPDATE stored_responses SET expires_at = :t WHERE id = :i"),
                  {"t": dt.datetime(2000, 1, 1), "i": old.id})
    with pytest.raises(openai.NotFoundError):  # past its time: gone even before the sweep runs
        client.responses.retrieve(old.id)
    out = gateway.cli("expire-responses")
    assert re.search(r"deleted [1-9]\d* expired stored response", out)
    with gateway.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM stored_responses WHERE id = :i"), {"i": old.id}).scalar() == 0
    assert client.responses.retrieve(fresh.id).id == fresh.id


def test_reasoning_state_is_carried_to_the_vendor_that_made_it(gateway, shared_key):
    client = oai(gateway, shared_key)
    first = client.responses.create(model="claude-sonnet-4-6", input="think first")
    # The stored output as an Anthropic model with thinking would have left it: a reasoning item with its signature.
    reasoning = {"id": f"rs_{first.id[5:]}_9", "type": "reasoning",
                 "summary": [{"type": "summary_text", "text": "Weighing the options."}],
                 "encrypted_content": "bsk1.anthropic.SIG-abc123"}
    t = StoredResponse.__table__
    with gateway.engine.begin() as c:
        stored = c.execute(sa.select(t.c.response).where(t.c.id == first.id)).scalar_one()
        stored = dict(stored, output=[reasoning, *stored["output"]])
        c.execute(t.update().where(t.c.id == first.id).values(response=stored))
    client.responses.create(model="claude-sonnet-4-6", input="go on", previous_response_id=first.id,
                            reasoning={"effort": "low"})
    assistant = [m for m in gateway.fakes["anthropic"].seen[-1].body["messages"] if m["role"] == "assistant"][0]
    assert {"type": "thinking", "thinking": "Weighing the options.", "signature": "SIG-abc123"} in assistant["content"]
    client.responses.create(model="gpt-5-4", input="go on", previous_response_id=first.id)
    sent = str(gateway.fakes["openai"].seen[-1].body)
    assert "SIG-abc123" not in sent and "think first" in sent  # another vendor cannot verify the state
