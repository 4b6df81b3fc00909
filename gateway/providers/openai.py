"""OpenAI-compatible upstreams: ``{base_url}/chat/completions`` with a Bearer key.

Every vendor that speaks this protocol is a row of data below, never a new
class: the row names the vendor (for the provider header and the usage log).
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from core.channels import ChannelConfig

from .base import Provider

# Host suffix -> vendor name. Unknown hosts are named after their channel.
VENDORS: dict[str, str] = {
    "api.openai.com": "openai",
    "openai.azure.com": "azure-openai",
    "api.deepseek.com": "deepseek",
    "api.moonshot.cn": "moonshot",
    "api.moonshot.ai": "moonshot",
    "open.bigmodel.cn": "zhipu",
    "api.z.ai": "zhipu",
    "api.minimax.chat": "minimax",
    "api.minimaxi.com": "minimax",
    "dashscope.aliyuncs.com": "alibaba",
    "dashscope-intl.aliyuncs.com": "alibaba",
    "ark.cn-beijing.volces.com": "bytedance",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.mistral.ai": "mistral",
    "api.x.ai": "xai",
    "openrouter.ai": "openrouter",
    "generativelanguage.googleapis.com": "google",
}


class OpenAIProvider(Provider):
    protocol = "openai"

    def vendor(self, channel: ChannelConfig, default: str = "") -> str:
        """The vendor by host; a self-hosted or unknown endpoint is named after the model's vendor."""
        return _host_vendor(channel.base_url) or default or channel.name

    def url(self, channel: ChannelConfig, upstream_model: str, stream: bool) -> str:
        return f"{channel.base_url}/chat/completions"

    def auth_headers(self, api_key: str, version: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"}


@functools.lru_cache(maxsize=256)
def _host_vendor(base_url: str) -> str:
    host = (urlsplit(base_url).hostname or "").lower()
    for suffix, name in VENDORS.items():
        if host == suffix or host.endswith("." + suffix):
            return name
    return ""
