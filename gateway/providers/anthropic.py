"""Anthropic Messages upstreams: ``{base_url}/v1/messages`` with x-api-key and anthropic-version."""

from __future__ import annotations

from core.channels import ChannelConfig

from .base import Provider

DEFAULT_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    protocol = "anthropic"

    def url(self, channel: ChannelConfig, upstream_model: str, stream: bool) -> str:
        return f"{channel.base_url}/v1/messages"

    def auth_headers(self, api_key: str, version: str | None) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": version or DEFAULT_VERSION}
