"""x-bytespike-fallback is traceable: the usage row and the usage API name the asked model (API.md §4)."""

from __future__ import annotations

import json

import pytest
import requests


def call(gateway, key, *, stream: bool, fallback: str | None) -> requests.Response:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": "hi [fake in=10 out=4]"}]}
    headers = {"x-api-key": key, "content-type": "application/json"}
    if fallback:
        headers["x-bytespike-fallback"] = fallback
    return requests.post(gateway.base_url + "/v1/messages", data=json.dumps(body), headers=headers, timeout=30)


@pytest.mark.parametrize("stream", [False, True])
def test_usage_fallback_from_in_row_and_usage_api(gateway, stream):
    key = gateway.account(credits=50_000_000)
    auth = {"authorization": f"Bearer {key}"}
    gateway.fakes["anthropic"].set(fail=500)
    r = call(gateway, key, stream=stream, fallback="gpt-5-4")
    assert r.status_code == 200 and r.headers["x-bytespike-fallback-from"] == "claude-sonnet-4-6"
    rid = r.headers["x-bytespike-request-id"]
    row = gateway.usage(rid)
    assert (row["model"], row["fallback_from"], row["stream"]) == ("gpt-5-4", "claude-sonnet-4-6", stream)
    one = requests.get(f"{gateway.base_url}/api/v1/me/usage/{rid}", headers=auth, timeout=30).json()
    assert (one["model"], one["fallback_from"]) == ("gpt-5-4", "claude-sonnet-4-6")
    listed = requests.get(gateway.base_url + "/api/v1/me/usage", headers=auth, timeout=30).json()["data"]
    assert [(u["id"], u["fallback_from"]) for u in listed if u["id"] == rid] == [(rid, "claude-sonnet-4-6")]
    gateway.fakes["anthropic"].reset()
    plain = call(gateway, key, stream=stream, fallback="gpt-5-4")
    assert plain.status_code == 200 and "x-bytespike-fallback-from" not in plain.headers
    rid = plain.headers["x-bytespike-request-id"]
    assert gateway.usage(rid)["fallback_from"] is None
    one = requests.get(f"{gateway.base_url}/api/v1/me/usage/{rid}", headers=auth, timeout=30).json()
    assert one["fallback_from"] is None and one["model"] == "claude-sonnet-4-6"
