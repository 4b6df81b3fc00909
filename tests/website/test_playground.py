"""Playground: answers in-process from the demo model, three free runs per IP per day, server-side."""

from __future__ import annotations

import pytest

from tests.conftest import REDIS_URL, make_app


def run(client, prompt="Hello there", ip="203.0.113.7", lang="en"):
    return client.post(f"/{lang}/playground/run", json={"prompt": prompt}, environ_base={"REMOTE_ADDR": ip})


def test_playground_page_shows_runs_left(site):
    html = site.get("/en/playground/").get_data(as_text=True)
    assert "3 of 3 free runs left today" in html
    assert "bytespike-echo" in html
    zh = site.get("/zh/playground/").get_data(as_text=True)
    assert "今天还剩 3 / 3 次免费运行" in zh


def test_playground_answers_through_the_demo_channel(site):
    resp = run(site, "Echo this sentence, please.")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["model"] == "bytespike-echo"
    assert "Echo this sentence, please." in body["text"]
    assert body["cost_credits"] == 0 and body["cost_usd"] == "0"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert body["runs_left"] == 2


def test_playground_refuses_the_fourth_run_from_one_ip(site):
    assert [run(site).get_json()["runs_left"] for _ in range(3)] == [2, 1, 0]
    fourth = run(site)
    assert fourth.status_code == 429
    assert fourth.get_json()["runs_left"] == 0
    assert "3 free runs" in fourth.get_json()["error"]
    zh = run(site, lang="zh")
    assert zh.status_code == 429 and "免费运行已用完" in zh.get_json()["error"]
    # Another address still has its own three.
    assert run(site, ip="198.51.100.20").status_code == 200
    page = site.get("/en/playground/", environ_base={"REMOTE_ADDR": "203.0.113.7"}).get_data(as_text=True)
    assert "0 of 3 free runs left today" in page and "disabled" in page


def test_playground_rejects_empty_or_huge_prompts_without_counting(site):
    assert site.post("/en/playground/run", json={"prompt": "  "}).status_code == 400
    assert site.post("/en/playground/run", data="prompt=hi").status_code == 400
    assert site.post("/en/playground/run", json={"prompt": "x" * 2001}).status_code == 400
    assert run(site).get_json()["runs_left"] == 2


def test_playground_failed_call_is_not_counted(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'p.db'}", BYTESPIKE_PLAYGROUND_MODEL="no-such-model")
    client = app.test_client()
    resp = run(client)
    assert resp.status_code == 503  # an unknown model has no channel: said so, not "try again"
    assert resp.get_json()["runs_left"] == 3
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def redis_apps(tmp_path, redis_prefix):
    """Two app instances (two workers) sharing one Redis."""
    apps = [make_app(f"sqlite:///{tmp_path / f'w{i}.db'}", BYTESPIKE_REDIS_URL=REDIS_URL,
                     BYTESPIKE_REDIS_PREFIX=redis_prefix) for i in range(2)]
    yield apps
    for app in apps:
        app.extensions["bytespike_db"].dispose()


def test_playground_limit_is_shared_across_workers_through_redis(redis_apps):
    first, second = (app.test_client() for app in redis_apps)
    assert run(first).status_code == 200
    assert run(second).status_code == 200
    assert run(first).get_json()["runs_left"] == 0
    refused = run(second)
    assert refused.status_code == 429 and refused.get_json()["runs_left"] == 0
    import redis

    keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(redis_apps[0].config["BYTESPIKE_REDIS_PREFIX"] + "*"))
    assert len(keys) == 1 and int(redis.Redis.from_url(REDIS_URL).get(keys[0])) == 3


def test_a_model_without_a_channel_says_so_and_keeps_the_run(tmp_path):
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'p.db'}", BYTESPIKE_PLAYGROUND_MODEL="claude-sonnet-4-6")
    client = app.test_client()
    r = client.post("/en/playground/run", json={"prompt": "hi"})
    assert r.status_code == 503
    body = r.get_json()
    assert "No channel serves this model" in body["error"] and "try again" not in body["error"]
    assert body["runs_left"] == 3
    zh = client.post("/zh/playground/run", json={"prompt": "hi"}).get_json()
    assert "渠道" in zh["error"]
    app.extensions["bytespike_db"].dispose()


def test_the_demo_says_what_it_is(site):
    html = site.get("/en/playground/").text
    assert "echoing your prompt back" in html and "data-used-up=" in html
