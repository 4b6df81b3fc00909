"""Router basics: priority, weight, key rotation, the demo channel, the channels file."""

from __future__ import annotations

from collections import Counter

import pytest
from flask import Flask

from core.channels import ChannelFileError
from gateway.routing import ECHO_CHANNEL, get_router

from .conftest import chan


def bare_app(**config) -> Flask:
    app = Flask(__name__)
    app.config.update({"BYTESPIKE_CHANNELS_FILE": None, "BYTESPIKE_REDIS_URL": None, **config})
    return app


def test_router_priority_orders_channels(make_router):
    r = make_router(chan("b", priority=1), chan("a", priority=0))
    assert [t.channel.name for t in r.targets("m", session=None)] == ["a", "b"]


def test_router_weight_shares_equal_priority(make_router):
    r = make_router(chan("a", weight=3), chan("b", weight=1))
    firsts = Counter(next(r.targets("m", session=None)).channel.name for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_router_keys_rotate_and_each_target_once(make_router):
    r = make_router(chan("a", keys=3), chan("b", keys=2))
    firsts = [next(r.targets("m", session=None)).key_label for _ in range(12)]
    assert len(set(firsts)) == 5
    labels = [t.key_label for t in r.targets("m", session=None)]
    assert sorted(labels) == ["a#0", "a#1", "a#2", "b#0", "b#1"]


def test_router_serves_only_configured_models(make_router):
    r = make_router(chan("a", models=("m", "n")), ECHO_CHANNEL)
    assert r.serves("m") and r.serves("bytespike-echo") and not r.serves("x")
    assert r.models() == {"m", "n", "bytespike-echo"}
    assert list(r.targets("x", session=None)) == []


def test_target_never_shows_key(make_router):
    t = next(make_router(chan("a")).targets("m", session=None))
    assert t.api_key == "sk-secret-a-0" and t.key_label == "a#0"
    assert "sk-secret" not in repr(t)


def test_target_maps_upstream_model(make_router):
    c = chan("a")
    c.model_map["m"] = "m-2026-01-01"
    assert next(make_router(c).targets("m", session=None)).upstream_model == "m-2026-01-01"


def test_get_router_adds_demo_channel_and_is_cached():
    app = bare_app()
    r = get_router(app)
    assert r is get_router(app)
    t = next(r.targets("bytespike-echo", session=None))
    assert t.channel.protocol == "echo" and t.api_key == "demo" and t.upstream_model == "bytespike-echo"


def test_get_router_reads_channels_file(tmp_path):
    f = tmp_path / "channels.toml"
    f.write_text('[[channels]]\nname = "x"\nprotocol = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
                 'api_keys = ["k1", "k2"]\nmodels = ["gpt-x"]\n[channels.prices."gpt-x"]\ninput = "1.00"\noutput = "2.00"\n')
    r = get_router(bare_app(BYTESPIKE_CHANNELS_FILE=str(f)))
    assert r.models() == {"gpt-x", "bytespike-echo"}
    assert {t.key_label for t in r.targets("gpt-x", session=None)} == {"x#0", "x#1"}


def test_get_router_rejects_malformed_channels_file(tmp_path):
    bad = tmp_path / "channels.toml"
    bad.write_text('[[channels]]\nname = "x"\nprotocol = "smtp"\n')
    with pytest.raises(ChannelFileError):
        get_router(bare_app(BYTESPIKE_CHANNELS_FILE=str(bad)))


def test_get_router_honours_health_switch():
    assert get_router(bare_app(BYTESPIKE_ROUTING_HEALTH="0")).health_enabled is False
    assert get_router(bare_app()).health_enabled is True


def test_status_endpoint_is_public_and_secret_free(tmp_path):
    from gateway import status

    f = tmp_path / "channels.toml"
    f.write_text('[[channels]]\nname = "x"\nprotocol = "openai"\nbase_url = "https://user:pw@vendor.example/v1"\n'
                 'api_keys = ["sk-very-secret"]\nmodels = ["gpt-x"]\n[channels.prices."gpt-x"]\ninput = "1.00"\noutput = "2.00"\n')
    app = bare_app(BYTESPIKE_CHANNELS_FILE=str(f))
    app.register_blueprint(status.bp)
    resp = app.test_client().get("/api/status")
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
    doc = resp.get_json()
    assert doc["status"] == "operational" and doc["window_s"] == 3600
    assert [m["model"] for m in doc["models"]] == ["bytespike-echo", "gpt-x"]
    assert doc["models"][1] == {"model": "gpt-x", "status": "operational", "availability": None, "requests": 0,
                                "latency_ms": {"p50": None, "p95": None}}
    assert doc["channels"] == [{"name": "bytespike-echo", "circuit": "closed"}, {"name": "x", "circuit": "closed"}]
    assert "secret" not in resp.text and "vendor.example" not in resp.text and "pw" not in resp.text
