"""The four caller protocols, each driven by its official SDK, read back into one comparable shape.

A conversation is written once, vendor-neutrally (``User``, ``Results``, or an
earlier answer's ``Outcome`` replayed as the client would), and each caller
builds its own native request from it. ``Outcome`` keeps the caller's native
stop reason and usage, so a test compares like with like.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types as gt

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgaPgPAAIDAYAkYfWXAAAAAElFTkSuQmCC"
IMAGE_URL = "https://images.example.com/paris.png"
TOOLS = (
    ("get_weather", "Current weather for a city.",
     {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    ("get_time", "Local time in a time zone.",
     {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}),
)


@dataclass(frozen=True)
class User:
    text: str
    image_b64: bool = False
    image_url: bool = False


@dataclass(frozen=True)
class Results:
    items: tuple[tuple[str, str, str], ...]  # (call id, tool name, result text)


@dataclass
class Outcome:
    text: str
    thinking: str
    calls: list[tuple[str, str, dict[str, Any]]]
    stop: str
    usage: tuple[int, ...]
    signature: str | None = None  # Anthropic's thinking signature / Responses' encrypted reasoning
    replay: list[Any] = field(default_factory=list)  # the native assistant turn, as a client sends it back

    def same_answer(self) -> tuple[Any, ...]:
        """What stream and non-stream must agree on (generated call ids may differ between calls)."""
        return (self.text, self.thinking, [c[1:] for c in self.calls], self.stop, self.usage, self.signature)


class Caller:
    name = ""

    def call(self, model: str, turns: list[Any], *, stream: bool, tools: bool = False,
             thinking: bool = False) -> Outcome:
        raise NotImplementedError


# --- Anthropic Messages --------------------------------------------------------------------


class AnthropicCaller(Caller):
    name = "anthropic"

    def __init__(self, base_url: str, key: str) -> None:
        self.client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0)

    def messages(self, turns: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for turn in turns:
            if isinstance(turn, User):
                content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}]
                if turn.image_b64:
                    content.append({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                "data": PNG_B64}})
                if turn.image_url:
                    content.append({"type": "image", "source": {"type": "url", "url": IMAGE_URL}})
                out.append({"role": "user", "content": content})
            elif isinstance(turn, Results):
                out.append({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": i, "content": t} for i, _, t in turn.items]})
            else:
                out += turn.replay
        return out

    def call(self, model, turns, *, stream, tools=False, thinking=False):
        kw: dict[str, Any] = {"model": model, "max_tokens": 2048, "messages": self.messages(turns)}
        if tools:
            kw["tools"] = [{"name": n, "description": d, "input_schema": s} for n, d, s in TOOLS]
        if thinking:
            kw["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        if stream:
            with self.client.messages.stream(**kw) as s:
                msg = s.get_final_message()
        else:
            msg = self.client.messages.create(**kw)
        return self.outcome(msg)

    @staticmethod
    def outcome(msg: Any) -> Outcome:
        blocks = msg.content
        sig = [b.signature for b in blocks if b.type == "thinking"]
        u = msg.usage
        return Outcome(
            text="".join(b.text for b in blocks if b.type == "text"),
            thinking="".join(b.thinking for b in blocks if b.type == "thinking"),
            calls=[(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"],
            stop=msg.stop_reason,
            usage=(u.input_tokens, u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0,
                   u.output_tokens),
            signature=sig[0] if sig else None,
            replay=[{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in blocks]}],
        )


# --- OpenAI Chat Completions ------------------------------------------------------------------


class ChatCaller(Caller):
    name = "openai"

    def __init__(self, base_url: str, key: str) -> None:
        self.client = openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)

    @staticmethod
    def messages(turns: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for turn in turns:
            if isinstance(turn, User):
                content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}]
                if turn.image_b64:
                    content.append({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}})
                if turn.image_url:
                    content.append({"type": "image_url", "image_url": {"url": IMAGE_URL}})
                out.append({"role": "user", "content": content})
            elif isinstance(turn, Results):
                out += [{"role": "tool", "tool_call_id": i, "content": t} for i, _, t in turn.items]
            else:
                out += turn.replay
        return out

    def call(self, model, turns, *, stream, tools=False, thinking=False):
        kw: dict[str, Any] = {"model": model, "messages": self.messages(turns)}
        if tools:
            kw["tools"] = [{"type": "function", "function": {"name": n, "description": d, "parameters": s}}
                           for n, d, s in TOOLS]
        if thinking:
            kw["reasoning_effort"] = "low"
        if stream:
            with self.client.chat.completions.stream(**kw, stream_options={"include_usage": True}) as s:
                try:
                    resp = s.get_final_completion()
                except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as err:
                    # The helper refuses to parse a cut or filtered answer; the assembled completion
                    # rides on the error (without usage: it raises at the finish chunk).
                    resp = err.completion
        else:
            resp = self.client.chat.completions.create(**kw)
        return self.outcome(resp)

    @staticmethod
    def outcome(resp: Any) -> Outcome:
        choice = resp.choices[0]
        msg = choice.message
        u = resp.usage
        replay = msg.model_dump(exclude_none=True, exclude={"parsed", "annotations"})
        for call in replay.get("tool_calls") or []:
            call.pop("parsed_arguments", None)
        reasoning = (msg.model_extra or {}).get("reasoning_content") or ""
        cached = u.prompt_tokens_details.cached_tokens if u and u.prompt_tokens_details else 0
        return Outcome(
            text=msg.content or "",
            thinking=reasoning,
            calls=[(c.id, c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls or []],
            stop=choice.finish_reason,
            usage=(u.prompt_tokens, cached or 0, u.completion_tokens) if u else (),
            replay=[replay],
        )


# --- OpenAI Responses --------------------------------------------------------------------------


class ResponsesCaller(Caller):
    name = "responses"

    def __init__(self, base_url: str, key: str) -> None:
        self.client = openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)

    @staticmethod
    def items(turns: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for turn in turns:
            if isinstance(turn, User):
                content: list[dict[str, Any]] = [{"type": "input_text", "text": turn.text}]
                if turn.image_b64:
                    content.append({"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}",
                                    "detail": "auto"})
                if turn.image_url:
                    content.append({"type": "input_image", "image_url": IMAGE_URL, "detail": "auto"})
                out.append({"type": "message", "role": "user", "content": content})
            elif isinstance(turn, Results):
                out += [{"type": "function_call_output", "call_id": i, "output": t} for i, _, t in turn.items]
            else:
                out += turn.replay
        return out

    def call(self, model, turns, *, stream, tools=False, thinking=False):
        kw: dict[str, Any] = {"model": model, "input": self.items(turns), "store": False}
        if tools:
            kw["tools"] = [{"type": "function", "name": n, "description": d, "parameters": s, "strict": False}
                           for n, d, s in TOOLS]
        if thinking:
            kw["reasoning"] = {"effort": "low", "summary": "auto"}
            kw["include"] = ["reasoning.encrypted_content"]
        if stream:
            with self.client.responses.stream(**kw) as s:
                # get_final_response() wants response.completed; an incomplete answer ends otherwise.
                ends = [e.response for e in s if e.type == "response.incomplete"]
                resp = ends[0] if ends else s.get_final_response()
        else:
            resp = self.client.responses.create(**kw)
        return self.outcome(resp)

    @staticmethod
    def outcome(resp: Any) -> Outcome:
        reasoning = [i for i in resp.output if i.type == "reasoning"]
        u = resp.usage
        reason = resp.incomplete_details.reason if resp.incomplete_details else None
        return Outcome(
            text=resp.output_text,
            thinking="".join(s.text for r in reasoning for s in r.summary),
            calls=[(i.call_id, i.name, json.loads(i.arguments)) for i in resp.output if i.type == "function_call"],
            stop=f"{resp.status}:{reason}" if reason else resp.status,
            usage=(u.input_tokens, u.input_tokens_details.cached_tokens, u.output_tokens),
            signature=reasoning[0].encrypted_content if reasoning else None,
            replay=[i.model_dump(exclude_none=True, exclude={"parsed_arguments"}) for i in resp.output],
        )


# --- Gemini ----------------------------------------------------------------------------------


class GeminiCaller(Caller):
    name = "gemini"

    def __init__(self, base_url: str, key: str) -> None:
        # The documented base path (/v1beta); the default client (/v1) has its own test.
        self.client = genai.Client(api_key=key, http_options=gt.HttpOptions(base_url=base_url, api_version="v1beta"))

    @staticmethod
    def contents(turns: list[Any]) -> list[Any]:
        out: list[Any] = []
        for turn in turns:
            if isinstance(turn, User):
                parts = [gt.Part(text=turn.text)]
                if turn.image_b64:
                    parts.append(gt.Part.from_bytes(data=base64.b64decode(PNG_B64), mime_type="image/png"))
                if turn.image_url:
                    parts.append(gt.Part.from_uri(file_uri=IMAGE_URL, mime_type="image/png"))
                out.append(gt.Content(role="user", parts=parts))
            elif isinstance(turn, Results):
                out.append(gt.Content(role="user", parts=[
                    gt.Part(function_response=gt.FunctionResponse(id=i, name=n, response={"content": t}))
                    for i, n, t in turn.items]))
            else:
                out += turn.replay
        return out

    def call(self, model, turns, *, stream, tools=False, thinking=False):
        config: dict[str, Any] = {"max_output_tokens": 2048}
        if tools:
            config["tools"] = [gt.Tool(function_declarations=[
                gt.FunctionDeclaration(name=n, description=d, parameters_json_schema=s) for n, d, s in TOOLS])]
        if thinking:
            config["thinking_config"] = gt.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
        kw = {"model": model, "contents": self.contents(turns), "config": gt.GenerateContentConfig(**config)}
        if stream:
            chunks = list(self.client.models.generate_content_stream(**kw))
            parts = [p for c in chunks if c.candidates for p in (c.candidates[0].content.parts or [])]
            finish = [c.candidates[0].finish_reason for c in chunks if c.candidates and c.candidates[0].finish_reason]
            return self.outcome(parts, finish[-1] if finish else None, chunks[-1].usage_metadata)
        resp = self.client.models.generate_content(**kw)
        cand = resp.candidates[0]
        return self.outcome(cand.content.parts or [], cand.finish_reason, resp.usage_metadata)

    @staticmethod
    def outcome(parts: list[Any], finish: Any, meta: Any) -> Outcome:
        merged = _merge_text(parts)
        calls = [p.function_call for p in merged if p.function_call]
        return Outcome(
            text="".join(p.text for p in merged if p.text and not p.thought),
            thinking="".join(p.text for p in merged if p.text and p.thought),
            calls=[(c.id or "", c.name, dict(c.args or {})) for c in calls],
            stop=finish.value if finish is not None else "",
            usage=(meta.prompt_token_count, meta.cached_content_token_count or 0, meta.total_token_count),
            replay=[gt.Content(role="model", parts=merged)],
        )


def _merge_text(parts: list[Any]) -> list[Any]:
    """Join streamed text pieces of the same kind into one part (what a client keeps as its history)."""
    out: list[Any] = []
    for p in parts:
        if not (p.text or p.function_call or p.thought_signature):
            continue
        prev = out[-1] if out else None
        if (prev is not None and p.text and prev.text is not None and not prev.function_call
                and bool(prev.thought) == bool(p.thought) and not p.thought_signature):
            out[-1] = prev.model_copy(update={"text": prev.text + p.text})
        else:
            out.append(p)
    return out


CALLERS: dict[str, type[Caller]] = {
    "anthropic": AnthropicCaller, "openai": ChatCaller, "responses": ResponsesCaller, "gemini": GeminiCaller,
}
