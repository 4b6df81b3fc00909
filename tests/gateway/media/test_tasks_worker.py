"""Tasks advance without a caller: the worker polls the vendor (backoff), bills once and calls back once."""

from __future__ import annotations

import hashlib
import json
import time

import sqlalchemy as sa

from core import signing
from jobs.work import task_poll_delay
from tests.gateway.media.test_tasks import SECONDS, per_second, query, submit

DEADLINE_S = 240  # each burst starts a worker process; a busy machine takes seconds


def test_task_poll_delay_backs_off_to_a_minute():
    assert [task_poll_delay(n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]


def _set_webhook_secret(gw, key: str, secret: str) -> None:
    with gw.engine.begin() as conn:
        org_id = conn.execute(sa.text("SELECT org_id FROM api_keys WHERE key_hash = :h"),
                              {"h": hashlib.sha256(key.encode()).hexdigest()}).scalar()
        conn.execute(sa.text("UPDATE orgs SET webhook_secret = :s WHERE id = :o"), {"s": secret, "o": org_id})


def test_worker_finishes_task_and_calls_back_without_a_query(media, fresh, fake_media, card):
    key, (bal, _) = fresh
    _set_webhook_secret(media, key, "whsec_tasks")
    task = submit(media, key, "r50,c", callback_url=fake_media.root + "/callback").json()
    assert task["status"] == "pending"
    deadline = time.time() + DEADLINE_S
    while not fake_media.callbacks and time.time() < deadline:
        media.cli("worker", "--burst")
        time.sleep(0.5)
    hold = SECONDS * per_second(card)
    assert [c["task_id"] for c in fake_media.callbacks] == [task["task_id"]]
    assert fake_media.callbacks[0]["status"] == "completed" and fake_media.callbacks[0]["credits_used"] == hold
    assert media.wallet(key) == (bal - hold, 0)
    seen = [s for s in fake_media.seen if s.path == "/callback"][0]
    body = json.dumps(seen.json, separators=(",", ":")).encode()
    assert signing.verify("whsec_tasks", body, seen.headers["x-bytespike-signature"], int(time.time()))
    polls = [s for s in fake_media.seen if s.method == "GET" and s.path.startswith("/v1/videos/")]
    assert len(polls) >= 2  # running at 50 %, then completed: the worker's polls, no client asked
    media.cli("worker", "--burst")  # later polls and sweeps change nothing
    assert len(fake_media.callbacks) == 1 and media.wallet(key) == (bal - hold, 0)
    assert query(media, key, task["task_id"]).json()["status"] == "completed"
