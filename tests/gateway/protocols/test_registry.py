"""The registry and the codec contract: every protocol's codec exports what the contract names."""

from __future__ import annotations

import pytest

from gateway import providers
from gateway.protocols import anthropic, gemini, openai_chat, openai_responses
from gateway.protocols.contract import Codec, UpstreamCodec
from gateway.protocols.registry import CODECS, UPSTREAM, codec, upstream_codec


def members(protocol: type) -> set[str]:
    return {n for n in vars(protocol) if not n.startswith("_")}


def test_each_protocol_maps_to_its_package() -> None:
    assert CODECS == {"anthropic": anthropic, "openai": openai_chat, "responses": openai_responses, "gemini": gemini}
    assert UPSTREAM == {"anthropic": anthropic, "openai": openai_chat, "gemini": gemini}
    assert codec("responses") is openai_responses and upstream_codec("openai") is openai_chat


@pytest.mark.parametrize("protocol", sorted(CODECS))
def test_every_codec_exports_the_callers_side(protocol: str) -> None:
    exported = set(CODECS[protocol].__all__)
    assert members(Codec) <= exported
    assert all(callable(getattr(CODECS[protocol], n)) for n in members(Codec))


@pytest.mark.parametrize("protocol", sorted(UPSTREAM))
def test_every_upstream_codec_exports_the_upstreams_side(protocol: str) -> None:
    assert members(UpstreamCodec) <= set(UPSTREAM[protocol].__all__)


@pytest.mark.parametrize("channel", ["anthropic", "openai", "gemini", "echo"])
def test_each_provider_reads_its_protocol_with_the_registrys_codec(channel: str) -> None:
    provider = providers.get(channel)
    assert provider.codec is UPSTREAM[provider.protocol]
    assert provider.protocol == ("anthropic" if channel == "echo" else channel)
