"""``/metrics``: Prometheus text across two gunicorn workers, read with the real parser; closed by default."""

from __future__ import annotations

import glob
import os
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import create_pg_database, drop_pg_database, free_port
from tests.gateway.conftest import (
    Gateway,
    _clean_redis,
    channels_toml,
    server_env,
    start_gunicorn,
    stop_gunicorn,
)

TOKEN = "metrics-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def metered(fake_vendors, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    db_url = create_pg_database()
    channels = tmp / "channels.toml"
    channels.write_text(channels_toml(fake_vendors))
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    env = server_env(db_url, channels, prefix)
    env["BYTESPIKE_METRICS_TOKEN"] = TOKEN
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prom")
    (tmp / "prom").mkdir()
    (tmp / "prom" / "counter_1.db").write_bytes(b"stale")  # a previous run's file: removed at start
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", db_url, env, tmp / "gunicorn.log", fake_vendors)
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, port, gw.log_path, workers=2)
    yield gw
    stop_gunicorn(gw.proc)
    gw.close()
    drop_pg_database(db_url)
    _clean_redis(prefix)


def scrape(gw: Gateway) -> dict[str, list]:
    resp = requests.get(gw.base_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
                        timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    return {fam.name: fam.samples for fam in text_string_to_metric_families(resp.text)}


def total(fams: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for samples in fams.values() for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_merge_two_workers(metered):
    key = metered.account()
    n = 24
    for i in range(n):
        body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 16}
        r = requests.post(metered.base_url + "/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {key}", "Connection": "close"})
        assert r.status_code == 200, r.text
    body = {"model": "claude-sonnet-4-6", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "stream please"}]}
    with requests.post(metered.base_url + "/v1/messages", json=body, stream=True, timeout=30,
                       headers={"x-api-key": key, "anthropic-version": "2023-06-01", "Connection": "close"}) as r:
        assert r.status_code == 200
        assert b"message_stop" in r.content
    bad = requests.post(metered.base_url + "/v1/chat/completions", timeout=30,
                        json={"model": "gpt-5-4", "messages": [{"role": "user", "content": "x"}]},
                        headers={"Authorization": "Bearer sk-bs-nope", "Connection": "close"})
    assert bad.status_code == 401

    # Two workers wrote samples: each keeps its own file in the shared directory.
    files = glob.glob(os.path.join(metered.env["PROMETHEUS_MULTIPROC_DIR"], "counter_*.db"))
    assert len(files) >= 2, files
    assert not os.path.exists(os.path.join(metered.env["PROMETHEUS_MULTIPROC_DIR"], "counter_1.db"))

    metered.wallet(key)  # settlements written behind the answers are in
    seen = [scrape(metered) for _ in range(6)]  # whichever worker answers, the sums are the same
    for fams in seen:
        assert total(fams, "bytespike_requests_total", surface="/v1/chat/completions", model="gpt-5-4",
                     status="200", caller_protocol="openai", upstream_protocol="openai") == n
        assert total(fams, "bytespike_requests_total", surface="/v1/messages", caller_protocol="anthropic",
                     upstream_protocol="anthropic", status="200") == 1
        assert total(fams, "bytespike_requests_total", status="401") >= 1
        assert total(fams, "bytespike_upstream_latency_seconds_count", upstream_protocol="openai") == n
        assert total(fams, "bytespike_gateway_overhead_seconds_count") >= n + 1
        assert total(fams, "bytespike_tokens_total", model="gpt-5-4", kind="input") > 0
        assert total(fams, "bytespike_tokens_total", model="gpt-5-4", kind="output") > 0
        assert total(fams, "bytespike_ledger_writes_total", kind="settle") == n + 1
        assert total(fams, "bytespike_open_streams") == 0
        assert total(fams, "bytespike_circuit_state", channel="openai-main", state="closed") == 1
        assert total(fams, "bytespike_circuit_state", channel="openai-main", state="open") == 0
    billed = total(seen[0], "bytespike_credits_billed_total")
    with metered.engine.connect() as c:
        import sqlalchemy as sa

        charged = -c.execute(sa.text("SELECT COALESCE(SUM(amount_credits), 0) FROM ledger_entries "
                                     "WHERE kind = 'settle'")).scalar_one()
    assert billed == charged > 0


def test_metrics_refused_without_the_token(metered):
    assert requests.get(metered.base_url + "/metrics", timeout=30).status_code == 401
    wrong = requests.get(metered.base_url + "/metrics", headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert wrong.status_code == 401


def test_metrics_closed_by_default(client):
    """No token configured: the route does not exist (a default install opens no door)."""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_scrape_reads_queue_depth_and_circuits_in_process(tmp_path):
    """One process (no multiprocess directory): the same text, with the queue depth read from Redis."""
    import redis

    from tests.conftest import REDIS_URL, make_app

    app = make_app(f"sqlite:///{tmp_path / 'm.db'}", BYTESPIKE_METRICS_TOKEN=TOKEN, BYTESPIKE_REDIS_URL=REDIS_URL,
                   BYTESPIKE_REDIS_PREFIX=f"bstest:{uuid.uuid4().hex[:8]}:")
    r = redis.Redis.from_url(REDIS_URL)
    queue = f"rq:queue:bstest-{uuid.uuid4().hex[:8]}"
    r.sadd("rq:queues", queue)
    r.rpush(queue, "job-1", "job-2", "job-3")
    try:
        c = app.test_client()
        echo = c.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-byts-unknown"},
                      json={"model": "zz-made-up-model", "messages": [{"role": "user", "content": "hi"}]})
        assert echo.status_code == 401
        resp = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200
        fams = {f.name: f.samples for f in text_string_to_metric_families(resp.get_data(as_text=True))}
        assert total(fams, "bytespike_job_queue_depth", queue=queue.removeprefix("rq:queue:")) == 3
        assert total(fams, "bytespike_circuit_state", channel="bytespike-echo", state="closed") == 1
        assert total(fams, "bytespike_requests_total", status="401", surface="/v1/chat/completions",
                     model="unknown") >= 1
        assert "zz-made-up-model" not in resp.get_data(as_text=True)  # a caller's text never becomes a label
    finally:
        r.srem("rq:queues", queue)
        r.delete(queue)
        r.close()
        app.extensions["bytespike_db"].dispose()


def test_label_sets_are_bounded(monkeypatch):
    from core import metrics

    monkeypatch.setattr(metrics, "MAX_CHILDREN", 3)
    cache: dict = {}
    children = {id(metrics._child(cache, metrics.CREDITS, f"m{i}", f"m{i}")) for i in range(50)}
    assert len(cache) == 4 and len(children) == 4  # three real series, then one shared "other"
