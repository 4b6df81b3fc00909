"""The codec for each protocol, by the name the gateway knows it by.

A caller's protocol is named by its surface (``/v1/messages`` is ``anthropic``,
``/v1/chat/completions`` ``openai``, ``/v1/responses`` ``responses``,
``/v1beta/models/...`` ``gemini``); a channel's upstream by the protocol its
provider speaks (one of ``UPSTREAM``). The same name on both sides means the
caller's body and the upstream's answer pass through unchanged.
"""

from __future__ import annotations

from gateway.protocols import anthropic, gemini, openai_chat, openai_responses
from gateway.protocols.contract import Codec, UpstreamCodec

UPSTREAM: dict[str, UpstreamCodec] = {"anthropic": anthropic, "openai": openai_chat, "gemini": gemini}
CODECS: dict[str, Codec] = {**UPSTREAM, "responses": openai_responses}
PROTOCOLS = tuple(CODECS)


def codec(protocol: str) -> Codec:
    """The codec a caller of ``protocol`` is parsed and answered with."""
    return CODECS[protocol]


def upstream_codec(protocol: str) -> UpstreamCodec:
    """The codec an upstream speaking ``protocol`` is called and read with."""
    return UPSTREAM[protocol]
