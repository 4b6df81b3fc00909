"""Gemini answers written for a caller (an upstream's are read in upstream)."""

from __future__ import annotations

from typing import Any

from gateway.canonical import (
    ChatResponse,
)
from gateway.protocols.gemini.grounding import grounding_of
from gateway.protocols.gemini.parts import STOP_TO_FINISH, render_parts, usage_to_gemini


def render_response(resp: ChatResponse, *, model: str, created: int, cost_credits: int | None = None) -> dict[str, Any]:
    """Render a ``GenerateContentResponse`` for a non-stream call."""
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": render_parts(resp.parts, upstream=False)},
        "finishReason": STOP_TO_FINISH.get(resp.stop_reason or "end_turn", "STOP"),
        "index": 0,
    }
    grounding = grounding_of(resp.parts)
    if grounding is not None:
        candidate["groundingMetadata"] = grounding
    return {
        "candidates": [candidate],
        "usageMetadata": usage_to_gemini(resp.usage, cost_credits),
        "modelVersion": model,
        "responseId": resp.id,
    }
