"""Upstream error bodies on the media paths: nothing that looks like a key reaches the caller.

The fake upstream answers with ``key=...``, ``token: ...``, ``sk-...``,
``Bearer ...`` and the channel's own key in its error message (and its error
code), as JSON or as plain text; a video job fails with the same message, and
its content download fails with it. Every answer the caller sees (JSON, a
multipart call's error, the task object, the task's event stream, the streamed
download) shows ``[redacted]`` in their place, and the call is free.
"""

from __future__ import annotations

import json

import requests

from tests.gateway.media.conftest import UPSTREAM_KEYS, assert_free, post
from tests.gateway.media.fake_media import LEAKS
from tests.gateway.media.test_media_endpoints import wav
from tests.gateway.media.test_tasks import query, submit

# The secret part of each leak ("key=AKIA..." -> "AKIA..."), and the channel's own keys.
SECRETS = (*(leak.split()[-1].split("=")[-1] for leak in LEAKS), *UPSTREAM_KEYS)


def assert_redacted(text: str) -> None:
    assert [s for s in SECRETS if s in text] == []
    assert "[redacted]" in text


def test_media_json_error_body_is_redacted(media, fresh, fake_media):
    key, before = fresh
    r = post(media, key, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x [fake fail=400 leak=1]"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "refused for" in r.json()["error"]["message"]
    assert_redacted(r.text)
    assert_free(media, r, key, before)
    row = media.usage(r.headers["x-bytespike-request-id"])
    assert row is not None and [s for s in SECRETS if s in (row["error"] or "")] == []


def test_media_plain_text_error_body_is_redacted(media, fresh):
    key, before = fresh
    r = post(media, key, "/v1/images/generations",
             {"model": "gpt-image-2", "prompt": "a fox [fake fail=422 leak=text]"})
    assert r.status_code == 422 and "refused for" in r.json()["error"]["message"]
    assert_redacted(r.text)
    assert_free(media, r, key, before)


def test_media_multipart_error_body_is_redacted(media, fresh):
    key, before = fresh
    r = requests.post(media.base_url + "/v1/audio/transcriptions", headers={"authorization": f"Bearer {key}"},
                      data={"model": "whisper-1", "prompt": "[fake fail=400 leak=1]"},
                      files={"file": ("a.wav", wav(1.0), "audio/wav")}, timeout=30)
    assert r.status_code == 400
    assert_redacted(r.text)
    assert_free(media, r, key, before)


def test_failed_job_message_is_redacted_in_query_and_event_stream(media, fresh):
    key, (bal, _) = fresh
    task = submit(media, key, "q,q,f leak=1").json()
    with requests.get(f"{media.base_url}/v1/tasks/stream/{task['task_id']}",
                      headers={"x-api-key": key}, stream=True, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(r.iter_content(None)).decode()
    events = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    assert events[-1]["status"] == "failed" and "refused for" in events[-1]["error"]["message"]
    assert_redacted(raw)
    out = query(media, key, task["task_id"])
    assert out.json()["status"] == "failed"
    assert_redacted(out.text)
    assert media.wallet(key) == (bal, 0)


def test_streamed_download_error_is_redacted(media, fresh):
    key, (bal, _) = fresh
    task = submit(media, key, "c leak=1").json()
    done = query(media, key, task["task_id"]).json()
    assert done["status"] == "completed"
    r = requests.get(done["result"]["urls"][0], headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 503 and r.headers["x-bytespike-cost-credits"] == "0"
    assert_redacted(r.text)
    assert media.wallet(key) == (bal - done["credits_used"], 0)
