"""Async video tasks: idempotent submit, the state machine, cancel and failure billing, other orgs, SSE, callbacks."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa

from tests.gateway.media.conftest import ceil_credits, post, price
from tests.gateway.media.fake_media import MP4
from website.payments import webhooks

SECONDS = 8


def per_second(card) -> int:
    return ceil_credits(price(card, "sora-2", "per_second") * 1_000_000)


def submit(gw, key, script: str, **extra):
    params = {"prompt": f"a fox in the snow [fake script={script}]", "seconds": str(SECONDS), "size": "720x1280"}
    return post(gw, key, "/v1/tasks/submit", {"model": "sora-2", "params": params, **extra})


def query(gw, key, task_id):
    return post(gw, key, "/v1/tasks/query", {"task_id": task_id})


def test_task_runs_to_completion_and_bills_seconds_rendered(media, fresh, fake_media, card):
    key, (bal, _) = fresh
    r = submit(media, key, "r50,c")
    assert r.status_code == 200, r.text
    task = r.json()
    hold = SECONDS * per_second(card)
    assert hold == 960_000  # 8 s x the channel's $0.12/s
    assert task["status"] == "pending" and task["estimated_credits"] == hold and task["credits_used"] is None
    assert int(r.headers["x-bytespike-estimated-credits"]) == hold and "X-Org-Quota-Remaining-Credits" in r.headers
    assert media.wallet(key) == (bal, hold)
    sent = fake_media.requests_to("/v1/videos")[0]
    assert sent.json["model"] == "sora-2-upstream" and sent.json["seconds"] == "8"

    running = query(media, key, task["task_id"]).json()
    assert (running["status"], running["progress"], running["credits_used"]) == ("running", 50, None)
    done = query(media, key, task["task_id"])
    final = done.json()
    assert final["status"] == "completed" and final["credits_used"] == hold and final["seconds_rendered"] == 8
    assert final["result"]["urls"][0].endswith(f"/v1/tasks/{task['task_id']}/content")
    assert final["output"] == [{"type": "video", "url": final["result"]["urls"][0]}]
    assert done.headers["x-bytespike-cost-credits"] == "0"  # the query itself is free
    assert media.wallet(key) == (bal - hold, 0)
    row = media.usage(r.headers["x-bytespike-request-id"])
    assert row["cost_credits"] == hold and row["billed"] and row["output_tokens"] == 8 and row["protocol"] == "tasks"

    video = requests.get(final["result"]["urls"][0], headers={"authorization": f"Bearer {key}"}, timeout=10)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4" and video.content == MP4
    assert query(media, key, task["task_id"]).json() == final  # final stays final, billed once
    assert media.wallet(key) == (bal - hold, 0)


def test_out_task_id_is_idempotent_per_org(media, fresh, fake_media, other_key):
    key, (bal, _) = fresh
    a = submit(media, key, "q", out_task_id="clip-001")
    b = submit(media, key, "q", out_task_id="clip-001")
    assert a.status_code == b.status_code == 200
    assert a.json()["task_id"] == b.json()["task_id"]
    assert len(fake_media.requests_to("/v1/videos")) == 1
    assert media.wallet(key)[1] == a.json()["estimated_credits"]  # reserved once
    c = post(media, key, "/v1/tasks/submit", {"model": "sora-2", "out_task_id": "clip-001",
                                              "params": {"prompt": "something else", "seconds": "4"}})
    assert c.status_code == 409 and c.json()["error"]["code"] == "duplicate_out_task_id"
    assert c.headers["x-bytespike-cost-credits"] == "0"
    by_out = post(media, key, "/v1/tasks/query", {"out_task_id": "clip-001"}).json()
    assert by_out["task_id"] == a.json()["task_id"]
    other = other_key
    d = submit(media, other, "q", out_task_id="clip-001")  # another org's namespace
    assert d.status_code == 200 and d.json()["task_id"] != a.json()["task_id"]
    for k, t in ((key, a), (other, d)):
        assert post(media, k, f"/v1/tasks/cancel/{t.json()['task_id']}", {}).json()["status"] == "cancelled"
    assert media.wallet(key) == (bal, 0)


def test_cancel_before_rendering_is_free(media, fresh, fake_media):
    key, (bal, _) = fresh
    task = submit(media, key, "q").json()
    r = post(media, key, f"/v1/tasks/cancel/{task['task_id']}", {})
    assert r.status_code == 200
    out = r.json()
    assert out["status"] == "cancelled" and out["credits_used"] == 0 and out["error"]["code"] == "task_cancelled"
    assert media.wallet(key) == (bal, 0)
    assert len(fake_media.requests_to(f"/v1/videos/{_upstream_id(fake_media)}", "DELETE")) == 1
    again = post(media, key, f"/v1/tasks/cancel/{task['task_id']}", {}).json()
    assert again["status"] == "cancelled" and media.wallet(key) == (bal, 0)


def test_cancel_after_rendering_started_bills_seconds_rendered(media, fresh, fake_media, card):
    key, (bal, _) = fresh
    params = {"prompt": "rain [fake script=r25]", "duration": SECONDS}  # the docs' spelling of seconds
    task = post(media, key, "/v1/tasks/submit", {"model": "sora-2", "params": params}).json()
    assert task["estimated_credits"] == SECONDS * per_second(card)
    assert fake_media.requests_to("/v1/videos")[0].json["seconds"] == str(SECONDS)
    assert query(media, key, task["task_id"]).json()["status"] == "running"
    out = post(media, key, f"/v1/tasks/cancel/{task['task_id']}", {}).json()
    rendered = SECONDS * 25 // 100
    assert out["status"] == "cancelled" and out["seconds_rendered"] == rendered == 2
    assert out["credits_used"] == rendered * per_second(card)
    assert media.wallet(key) == (bal - out["credits_used"], 0)


def test_failed_task_is_free(media, fresh):
    key, (bal, _) = fresh
    r = submit(media, key, "q,f")
    task = r.json()
    assert query(media, key, task["task_id"]).json()["status"] == "pending"
    out = query(media, key, task["task_id"]).json()
    assert out["status"] == "failed" and out["credits_used"] == 0 and "render failed" in out["error"]["message"]
    assert media.wallet(key) == (bal, 0)
    row = media.usage(r.headers["x-bytespike-request-id"])
    assert row["cost_credits"] == 0 and not row["billed"] and row["status"] == 502


def test_other_orgs_task_is_not_found(media, fresh, other_key):
    key, (bal, _) = fresh
    task = submit(media, key, "q").json()
    stranger = other_key
    for r in (query(media, stranger, task["task_id"]),
              post(media, stranger, f"/v1/tasks/cancel/{task['task_id']}", {}),
              requests.get(f"{media.base_url}/v1/tasks/stream/{task['task_id']}",
                           headers={"x-api-key": stranger}, timeout=10)):
        assert r.status_code == 404 and r.json()["error"]["code"] == "task_not_found"
        assert "X-Org-Quota-Remaining-Credits" in r.headers and r.headers["x-bytespike-cost-credits"] == "0"
    assert query(media, key, task["task_id"]).json()["status"] == "pending"
    post(media, key, f"/v1/tasks/cancel/{task['task_id']}", {})
    assert media.wallet(key) == (bal, 0)


def test_stream_reports_each_state_until_final_and_calls_back_once(media, fresh, fake_media, card):
    key, (bal, _) = fresh
    task = submit(media, key, "r30,r60,c", callback_url=fake_media.root + "/callback").json()
    with requests.get(f"{media.base_url}/v1/tasks/stream/{task['task_id']}",
                      headers={"x-api-key": key}, stream=True, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert "X-RateLimit-Limit" in r.headers
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith(b"data:")]
    assert [(e["status"], e["progress"]) for e in events] == [("running", 30), ("running", 60), ("completed", 100)]
    hold = SECONDS * per_second(card)
    assert events[-1]["credits_used"] == hold
    query(media, key, task["task_id"])
    assert len(fake_media.callbacks) == 1
    assert fake_media.callbacks[0]["task_id"] == task["task_id"]
    assert fake_media.callbacks[0]["status"] == "completed" and fake_media.callbacks[0]["credits_used"] == hold
    assert media.wallet(key) == (bal - hold, 0)
    # Signed like a webhook, with the org's webhook secret (made for it on first use).
    body, headers = fake_media.callback_raw[0]
    with media.engine.connect() as c:
        secret = c.execute(sa.text("SELECT o.webhook_secret FROM orgs o JOIN api_keys k ON k.org_id = o.id "
                                   "WHERE k.key_hash = :h"), {"h": hashlib.sha256(key.encode()).hexdigest()}).scalar_one()
    assert secret.startswith("whsec_")
    assert webhooks.verify(secret, body, headers["x-bytespike-signature"], int(time.time()))


def test_task_outliving_its_hold_is_still_billed_once(media, fresh, card):
    key, (bal, _) = fresh
    task = submit(media, key, "r50,c").json()
    media.cli("expire-reservations", "--older-than", "0")  # as the stale-hold sweep would, hours later
    assert media.wallet(key) == (bal, 0)
    query(media, key, task["task_id"])
    out = query(media, key, task["task_id"]).json()
    hold = SECONDS * per_second(card)
    assert out["status"] == "completed" and out["credits_used"] == hold
    assert media.wallet(key) == (bal - hold, 0)


def test_submit_refusals_are_free(media, fresh, fake_media, poor_key, card):
    key, (bal, _) = fresh
    poor, poor_before = poor_key, media.wallet(poor_key)
    dry = post(media, key, "/v1/tasks/submit", {"model": "sora2", "params": {"prompt": "x", "seconds": 4}},
               **{"x-bytespike-dry-run": "1"})
    assert dry.status_code == 200 and dry.json()["estimated_credits"] == 4 * per_second(card)
    assert fake_media.seen == []
    r = submit(media, poor, "q")
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_balance"
    r = post(media, key, "/v1/tasks/submit", {"model": "veo-3-1", "params": {"prompt": "x"}})
    assert r.status_code == 503 and "no channel configured" in r.json()["error"]["message"]
    r = post(media, key, "/v1/tasks/submit", {"model": "gpt-image-2", "params": {"prompt": "x"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_param"
    r = post(media, key, "/v1/tasks/submit", {"model": "sora-2", "params": {"prompt": "x [fake fail=500]"}})
    assert r.status_code == 502 and r.headers["x-bytespike-cost-credits"] == "0"
    r = post(media, key, "/v1/tasks/query", {"task_id": "task_doesnotexist"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "task_not_found"
    assert fake_media.requests_to("/v1/videos") and all(
        "fail=500" in s.json["prompt"] for s in fake_media.requests_to("/v1/videos"))
    assert media.wallet(key) == (bal, 0) and media.wallet(poor) == poor_before


def test_poll_tasks_command_finishes_tasks_and_calls_back(media, fresh, fake_media, card):
    key, (bal, _) = fresh
    task = submit(media, key, "c", callback_url=fake_media.root + "/callback").json()
    assert "1 changed state" in media.cli("poll-tasks")
    assert [c["task_id"] for c in fake_media.callbacks] == [task["task_id"]]
    hold = SECONDS * per_second(card)
    assert fake_media.callbacks[0]["credits_used"] == hold and media.wallet(key) == (bal - hold, 0)
    assert query(media, key, task["task_id"]).json()["status"] == "completed"
    assert len(fake_media.callbacks) == 1


def test_concurrent_queries_finish_a_task_once(media, fresh, fake_media, card):
    key, (bal, _) = fresh
    task = submit(media, key, "c", callback_url=fake_media.root + "/callback").json()
    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(lambda _: query(media, key, task["task_id"]).json(), range(6)))
    hold = SECONDS * per_second(card)
    assert {(o["status"], o["credits_used"]) for o in outs} == {("completed", hold)}
    assert media.wallet(key) == (bal - hold, 0)
    assert len(fake_media.callbacks) == 1


def test_concurrent_submits_with_one_out_task_id_make_one_task(media, fresh, fake_media):
    key, (bal, _) = fresh
    with ThreadPoolExecutor(5) as pool:
        outs = list(pool.map(lambda _: submit(media, key, "q", out_task_id="race-1"), range(5)))
    assert {r.status_code for r in outs} == {200}
    assert len({r.json()["task_id"] for r in outs}) == 1
    assert len(fake_media.requests_to("/v1/videos")) == 1
    post(media, key, f"/v1/tasks/cancel/{outs[0].json()['task_id']}", {})
    assert media.wallet(key) == (bal, 0)


def test_ledger_verifies_clean_after_tasks(media):
    assert "ledger consistent" in media.cli("verify-ledger")


def _upstream_id(fake) -> str:
    return sorted(fake.jobs)[-1]  # ids count up
