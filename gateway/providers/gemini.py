"""Google Gemini upstreams: ``{base_url}/v1beta/models/{m}:generateContent`` with x-goog-api-key."""

from __future__ import annotations

from urllib.parse import quote

from core.channels import ChannelConfig

from .base import Provider


class GeminiProvider(Provider):
    protocol = "gemini"

    def vendor(self, channel: ChannelConfig, default: str = "") -> str:
        return "google"

    def url(self, channel: ChannelConfig, upstream_model: str, stream: bool) -> str:
        model = quote(upstream_model, safe="-._")
        if stream:
            return f"{channel.base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"{channel.base_url}/v1beta/models/{model}:generateContent"

    def auth_headers(self, api_key: str, version: str | None) -> dict[str, str]:
        return {"x-goog-api-key": api_key}
