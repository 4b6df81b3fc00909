"""Code samples shown on the home page and the model pages, built from a model id and base URL."""

from __future__ import annotations

import json
from typing import Any

from flask_babel import gettext as _

Example = tuple[str, str, str]  # (tab label, highlight language, code)


def _curl(base: str, path: str, payload: dict[str, Any], auth: str = "Authorization: Bearer $BYTESPIKE_API_KEY") -> str:
    # One top-level field per line, values compact: readable without scrolling.
    fields = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in payload.items())
    body = "{\n" + fields + "\n  }"
    return (
        f'curl {base}{path} \\\n'
        f'  -H "{auth}" \\\n'
        '  -H "content-type: application/json" \\\n'
        f"  -d '{body}'"
    )


def chat_examples(model: str, base: str) -> list[Example]:
    """Return one curl call per chat protocol: Messages, Chat Completions, Responses, Gemini."""
    hello = [{"role": "user", "content": "Hello!"}]
    return [
        ("Anthropic Messages", "bash", _curl(
            base, "/v1/messages", {"model": model, "max_tokens": 512, "messages": hello},
            auth="x-api-key: $BYTESPIKE_API_KEY")),
        ("OpenAI Chat", "bash", _curl(base, "/v1/chat/completions", {"model": model, "messages": hello})),
        ("OpenAI Responses", "bash", _curl(base, "/v1/responses", {"model": model, "input": "Hello!"})),
        ("Gemini", "bash", _curl(
            base, f"/v1beta/models/{model}:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": "Hello!"}]}]},
            auth="x-goog-api-key: $BYTESPIKE_API_KEY")),
    ]


def model_examples(row: dict[str, Any], base: str) -> list[Example]:
    """Return the call examples that fit a model's kind."""
    model, kind = row["id"], row["kind"]
    if kind == "chat":
        return chat_examples(model, base)
    if kind == "embedding":
        return [(_("Embeddings"), "bash", _curl(
            base, "/v1/embeddings", {"model": model, "input": ["one key", "every model"]}))]
    if kind == "rerank":
        return [(_("Rerank"), "bash", _curl(base, "/v1/rerank", {
            "model": model, "query": "refund policy",
            "documents": ["Failed calls are free.", "Prices are public."]}))]
    if kind == "image":
        return [(_("Images"), "bash", _curl(base, "/v1/images/generations", {
            "model": model, "prompt": "A lighthouse at dawn, watercolour", "n": 1}))]
    if kind == "video":
        return [(_("Tasks"), "bash", _curl(base, "/v1/tasks/submit", {
            "model": model, "params": {"prompt": "Waves on a pebble beach", "duration": 5},
            "out_task_id": "my-job-0001"}))]
    if row.get("per_million_chars") is not None:
        speech = _curl(base, "/v1/audio/speech", {"model": model, "input": "Hello from ByteSpike.", "voice": "alloy"})
        return [(_("Speech"), "bash", speech + " \\\n  --output hello.mp3")]
    return [(_("Transcription"), "bash", (
        f"curl {base}/v1/audio/transcriptions \\\n"
        '  -H "Authorization: Bearer $BYTESPIKE_API_KEY" \\\n'
        f"  -F model={model} \\\n  -F file=@meeting.mp3"))]


def home_examples(model: str, base: str) -> list[Example]:
    """Return the home page's samples: curl, the Anthropic SDK and the OpenAI SDK."""
    anthropic_py = f'''import anthropic

client = anthropic.Anthropic(
    base_url="{base}",
    api_key="sk-byts-...",
)
message = client.messages.create(
    model="{model}",
    max_tokens=512,
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(message.content[0].text)'''
    openai_py = f'''from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key="sk-byts-...")
reply = client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(reply.choices[0].message.content)'''
    curl = chat_examples(model, base)[0][2]
    return [("curl", "bash", curl), ("Python · anthropic", "python", anthropic_py),
            ("Python · openai", "python", openai_py)]
