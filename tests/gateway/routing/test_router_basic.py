"""Router basics: priority, weight, key rotation, the demo channel, the channels file."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from core.channels import ChannelConfig, ChannelFileError
from gateway.routing import ECHO_CHANNEL, Router, get_router
from tests.conftest import make_app


def chan(name: str, *, priority: int = 0, weight: int = 1, keys: int = 1, models=("m",)) -> ChannelConfig:
    return ChannelConfig(
        name=name, protocol="openai", base_url=f"http://127.0.0.1:9/{name}",
        api_keys=tuple(f"sk-{name}-{i}" for i in range(keys)), models=tuple(models),
        priority=priority, weight=weight,
    )


def router(*chans: ChannelConfig, seed: int = 1) -> Router:
    return Router(list(chans), redis_url=None, prefix="t:", rng=random.Random(seed))


def test_router_priority_orders_channels():
    r = router(chan("b", priority=1), chan("a", priority=0))
    assert [t.channel.name for t in r.targets("m", session=None)] == ["a", "b"]


def test_router_weight_shares_equal_priority():
    r = router(chan("a", weight=3), chan("b", weight=1))
    firsts = Counter(next(r.targets("m", session=None)).channel.name for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_router_keys_rotate_and_each_target_once():
    r = router(chan("a", keys=3))
    firsts = [next(r.targets("m", session=None)).key_index for _ in range(6)]
    assert sorted(Counter(firsts).values()) == [2, 2, 2]
    all_targets = list(r.targets("m", session=None))
    assert sorted(t.key_index for t in all_targets) == [0, 1, 2]


def test_router_serves_only_configured_models():
    r = router(chan("a", models=("m", "n")), ECHO_CHANNEL)
    assert r.serves("m") and r.serves("bytespike-echo") and not r.serves("x")
    assert r.models() == {"m", "n", "bytespike-echo"}
    assert list(r.targets("x", session=None)) == []


def test_target_never_shows_key():
    t = next(router(chan("a")).targets("m", session=None))
    assert t.api_key == "sk-a-0" and t.key_label == "a#0"
    assert "sk-a" not in repr(t)


def test_get_router_adds_demo_channel_and_is_cached(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'x.db'}")
    r = get_router(app)
    assert r is get_router(app)
    t = next(r.targets("bytespike-echo", session=None))
    assert t.channel.protocol == "echo" and t.api_key == "demo"


def test_get_router_rejects_malformed_channels_file(tmp_path):
    bad = tmp_path / "channels.toml"
    bad.write_text('[[channels]]\nname = "x"\nprotocol = "smtp"\n')
    app = make_app(f"sqlite:///{tmp_path / 'x.db'}", BYTESPIKE_CHANNELS_FILE=str(bad))
    with pytest.raises(ChannelFileError):
        get_router(app)
