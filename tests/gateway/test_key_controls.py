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


def edit(gateway, model, ident, **values) -> None:
    """Change a row through the ORM, as the console does (core.keys moves the keys' versions on flush)."""
    from sqlalchemy.orm import Session

    import core.keys  # noqa: F401 - registers the version hook

    with Session(gateway.engine) as s:
        row = s.get(model, ident)
        for name, value in values.items():
            setattr(row, name, value)
        s.commit()


def test_a_key_changed_after_use_binds_the_very_next_call_on_every_worker(gateway):
    from core.models.accounts import ApiKey, Org

    master = gateway.account(credits=50_000_000)
    sub = mint(gateway, master)
    claude, gpt = MODELS["anthropic"], MODELS["openai"]
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=sub["key"], max_retries=0)

    def call(model: str = gpt) -> None:
        client.chat.completions.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "hi"}])

    for _ in range(6):  # both workers now hold the key's row
        call()
    edit(gateway, ApiKey, sub["id"], ip_deny=["127.0.0.0/8", "::1/128"])
    for _ in range(4):
        with pytest.raises(openai.PermissionDeniedError):
            call()
    edit(gateway, ApiKey, sub["id"], ip_deny=None, models=[claude])
    for _ in range(4):
        with pytest.raises(openai.PermissionDeniedError) as denied:
            call()
        assert denied.value.code == "model_not_in_group"
    edit(gateway, ApiKey, sub["id"], models=None)
    call()
    org_id = int(requests.get(gateway.base_url + "/api/v1/me/account", headers={"x-api-key": master},
                              timeout=30).json()["org"]["id"])
    edit(gateway, Org, org_id, models=[claude])  # an org-wide change reaches the org's keys too
    for _ in range(4):
        with pytest.raises(openai.PermissionDeniedError):
            call()
    edit(gateway, Org, org_id, models=None)
    call()
    r = requests.delete(f"{gateway.base_url}/api/v1/keys/{sub['id']}", headers={"x-api-key": master}, timeout=30)
    assert r.status_code in (200, 204), r.text
    for _ in range(4):
        with pytest.raises(openai.AuthenticationError) as gone:
            call()
        assert "revoked" in gone.value.message
    gateway.cli("verify-ledger")
