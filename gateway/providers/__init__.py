"""Upstream providers, one per protocol; OpenAI-compatible vendors are data rows in ``openai``."""

from __future__ import annotations

from .anthropic import AnthropicProvider
from .base import Provider
from .echo import EchoProvider
from .gemini import GeminiProvider
from .openai import OpenAIProvider

__all__ = ["PROVIDERS", "AnthropicProvider", "EchoProvider", "GeminiProvider", "OpenAIProvider", "Provider", "get"]

PROVIDERS: dict[str, Provider] = {
    "anthropic": AnthropicProvider(),
    "openai": OpenAIProvider(),
    "gemini": GeminiProvider(),
    "echo": EchoProvider(),
}


def get(protocol: str) -> Provider:
    """Return the provider for a channel's protocol."""
    return PROVIDERS[protocol]
