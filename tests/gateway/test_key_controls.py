"""Key controls refuse before any upstream call: over quota 402, model outside the list 403, revoked 401."""

from __future__ import annotations

import anthropic
import openai
import pytest
import requests

from tests.gateway.conftest import MODELS


def seen_total(gateway) -> int:
    return sum(len(f.seen) for f in gateway.fakes.values())


def mint(gateway, master: str, **controls) -> dict:
    r = requests.post(gateway.base_url + "/api/v1/keys", json={"name": "sub", **controls},
                      headers={"authorization": f"Bearer {master}"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_key_controls_refuse_before_any_upstream_call(gateway):
    master = gateway.account(credits=50_000_000)
    claude, gpt = MODELS["anthropic"], MODELS["openai"]
    limited = mint(gateway, master, quota_credits=10, models=[claude])
    other_model = mint(gateway, master, models=[gpt])
    doomed = mint(gateway, master)
    balance_before = gateway.wallet(master)
    before = seen_total(gateway)

    over = anthropic.Anthropic(base_url=gateway.base_url, api_key=limited["key"], max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        over.messages.create(model=claude, max_tokens=1000, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 402 and "quota_exceeded" in info.value.message

    outside = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=other_model["key"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        outside.chat.completions.create(model=claude, messages=[{"role": "user", "content": "hi"}])
    assert denied.value.code == "model_not_in_group"

    r = requests.delete(f"{gateway.base_url}/api/v1/keys/{doomed['id']}",
                        headers={"x-api-key": master}, timeout=30)
    assert r.status_code in (200, 204), r.text
    revoked = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=doomed["key"], max_retries=0)
    with pytest.raises(openai.AuthenticationError) as gone:
        revoked.chat.completions.create(model=gpt, messages=[{"role": "user", "content": "hi"}])
    assert gone.value.code == "invalid_api_key"

    assert seen_total(gateway) == before, "a refused call reached an upstream"
    assert gateway.wallet(master) == balance_before
    gateway.cli("verify-ledger")
