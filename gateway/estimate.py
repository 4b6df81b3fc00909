"""The reservation estimate of a chat call: an upper bound the prompt's shape cannot game (API.md §3).

Input is bounded without a tokenizer. Every text tokenizer the priced vendors
use (byte-level BPE, SentencePiece with byte fallback) spends at least one
byte of UTF-8 per token, and a JSON body is never shorter than the UTF-8 of
the strings it carries (an escape is at least as long as what it encodes). So
the body's length in bytes bounds the text, the system prompt and the tool
definitions together, whatever the text is (prose, code, base64, random
Unicode), with no second pass over the JSON.

Media are priced by what the vendor bills for them, never by their bytes: an
inline image's payload is taken out of the byte count and replaced by the
vendor's per-image maximum (the largest size the vendor keeps, since nothing
is fetched or decoded to learn the real size); a PDF by its pages, counted in
the document when it is inline, else by the vendor's page cap; other media by
reference (video or audio by URI, files by id) by the input cap. No vendor
bills more input than its context window, so the input is capped there too.

Output is ``max_tokens`` (or the model's max output when absent), at least the
thinking budget (Gemini bills thoughts beside it), times the choices asked
for (``n``, ``best_of``, ``candidateCount``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from gateway.canonical import ChatRequest, DocumentPart, ImagePart, RawPart, TextPart, ToolResultPart

DEFAULT_MAX_OUTPUT = 8192
MAX_CHOICES = 128
BASE_OVERHEAD = 64  # chat template tokens around a short request
TOOLS_OVERHEAD = 1024  # the tool-use system prompt a vendor adds when tools are given (Anthropic: ~350)
INPUT_CAP = 2_097_152  # no priced model reads more input than this in one call


@dataclass(frozen=True)
class MediaCost:
    """A vendor's worst case per image, per document page, and pages assumed when they cannot be counted."""

    image: int
    page: int
    pages_cap: int


# Anthropic: ceil(w/28) x ceil(h/28) visual tokens, the long edge at most 2576 px (92 x 92 patches); a PDF
# page is its page image plus its text (up to ~3,000 tokens a page), at most 600 pages a request.
# OpenAI: "original" detail spends up to 10,000 32-px patches (mini and nano models multiply them, below);
# PDF pages carry the page image and its text, 100 pages a file.
# Google: Gemini 3 spends up to 2,240 tokens an image (ultra high), Gemini 2.x 258 per 768-px tile
# (16 tiles at 3072 px); a page at most as an image; 1,000 pages a document.
# Other (OpenAI-compatible) vendors: Qwen-VL and Doubao allow up to 16,384 tokens an image.
MEDIA: dict[str, MediaCost] = {
    "anthropic": MediaCost(image=92 * 92, page=92 * 92 + 3000, pages_cap=600),
    "openai": MediaCost(image=10_000, page=10_000 + 3000, pages_cap=100),
    "google": MediaCost(image=258 * 16, page=258 * 16, pages_cap=1000),
}
OTHER = MediaCost(image=16_384, page=16_384 + 3000, pages_cap=600)
# OpenAI's patch multipliers for its small models (gpt-5-mini 1.62, gpt-5-nano 2.46), as percentages.
_OPENAI_MULTIPLIER = (("nano", 246), ("mini", 162))


class Scan(NamedTuple):
    """What one pass over the request's parts found; priced per candidate model by ``input_tokens``."""

    text_bytes: int  # the body's bytes less the media payloads priced below
    images: int
    pages: int  # pages of inline PDFs whose pages were counted
    uncounted_docs: int  # documents whose pages cannot be counted (by reference, compressed object streams)
    opaque_media: int  # video or audio by reference: bounded only by the input cap
    tools: bool


def scan(req: ChatRequest, body_len: int) -> Scan:
    """Walk the request's parts once: media payloads out of the byte count, media counted by kind."""
    media: list[Any] = []
    for msg in req.messages:
        for part in msg.parts:
            kind = type(part)
            if kind is TextPart:
                continue  # the common case: already in the byte count
            if kind is ToolResultPart:
                media.extend(p for p in part.content if type(p) is ImagePart)  # type: ignore[union-attr]
            elif kind is ImagePart or kind is RawPart or kind is DocumentPart:
                media.append(part)
    tools = bool(req.tools) or bool(req.server_tools) or bool(req.extras.get("tools"))
    if not media:
        return Scan(body_len, 0, 0, 0, 0, tools)
    text, images, pages, docs, opaque = body_len, 0, 0, 0, 0
    for part in media:
        if type(part) is ImagePart:
            images += 1
            text -= len(part.data or "")
            continue
        what, data = _document_media(part) if type(part) is DocumentPart else _media_of(part)
        if what == "image":
            images += 1
        elif what == "pdf":
            n = pdf_pages(data) if data else None
            if n is None:
                docs += 1
            else:
                pages += n
            text -= len(data or "")
        elif what == "doc":
            docs += 1
        elif what == "media":
            opaque += 1
    return Scan(max(0, text), images, pages, docs, opaque, tools)


def input_tokens(found: Scan, card: Any) -> int:
    """Upper bound of the input tokens ``card``'s vendor can bill for the scanned request."""
    cost = media_cost(card)
    cap = max(int(card.context_window or 0), INPUT_CAP)
    if found.opaque_media:
        return cap
    tokens = found.text_bytes + BASE_OVERHEAD + (TOOLS_OVERHEAD if found.tools else 0)
    tokens += found.images * cost.image + (found.pages + found.uncounted_docs * cost.pages_cap) * cost.page
    return min(tokens, cap)


def media_cost(card: Any) -> MediaCost:
    cost = MEDIA.get(card.vendor, OTHER)
    if card.vendor == "openai":
        for word, pct in _OPENAI_MULTIPLIER:
            if word in card.id:
                return MediaCost(cost.image * pct // 100, cost.image * pct // 100 + 3000, cost.pages_cap)
    return cost


def max_output(req: ChatRequest, card: Any) -> int:
    """The most output tokens one answer may have: the request's cap, else the model's."""
    return int(req.max_tokens or card.max_output_tokens or DEFAULT_MAX_OUTPUT)


def output_tokens(req: ChatRequest, raw: Mapping[str, Any] | None, card: Any) -> int:
    """Upper bound of the output tokens billed: every choice, thinking included."""
    out = max_output(req, card)
    budget = int(req.thinking.budget_tokens or 0) if req.thinking is not None else 0
    if req.source == "gemini":
        out += budget  # thinkingBudget is asked beside maxOutputTokens
    else:
        out = max(out, budget)  # Anthropic's budget lies within max_tokens
    return out * choices(raw)


def choices(raw: Mapping[str, Any] | None) -> int:
    """How many answers the request asks for: OpenAI ``n`` / ``best_of``, Gemini ``candidateCount``."""
    if not raw or ("n" not in raw and "best_of" not in raw and "generationConfig" not in raw
                   and "generation_config" not in raw):
        return 1
    found = [raw.get("n"), raw.get("best_of")]
    gen = raw.get("generationConfig") or raw.get("generation_config")
    if isinstance(gen, Mapping):
        found += [gen.get("candidateCount"), gen.get("candidate_count")]
    n = max((v for v in found if isinstance(v, int) and not isinstance(v, bool)), default=1)
    return min(max(1, n), MAX_CHOICES)


# --- media parts -------------------------------------------------------------------------------

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(?:;[^,]*)?;base64,", re.I)


def _document_media(part: DocumentPart) -> tuple[str | None, str | None]:
    """Classify a document: an inline PDF by its pages, one by reference by the page cap, plain text as text."""
    if part.file_id is not None or part.url is not None:
        return "doc", None
    if part.media_type == "application/pdf":
        return "pdf", part.data
    return None, None  # plain text: its bytes are already counted


def _media_of(part: RawPart) -> tuple[str | None, str | None]:
    """Classify a protocol-only part: ("image" | "pdf" | "doc" | "media" | None, inline base64 or None)."""
    d = part.data
    kind = d.get("type")
    if part.origin == "anthropic":
        if kind == "image":
            return "image", None  # by file id
        if kind == "document" and isinstance(d.get("source"), Mapping):
            src = d["source"]
            if src.get("type") == "base64":
                return ("pdf", _str(src.get("data"))) if "pdf" in str(src.get("media_type", "")) else (None, None)
            if src.get("type") in ("url", "file"):
                return "doc", None
        return None, None
    if part.origin in ("openai", "responses"):
        if kind == "input_image":
            return "image", None  # by file id
        spec = d.get("file") if kind == "file" else d
        if kind in ("file", "input_file") and isinstance(spec, Mapping):
            return _file(spec)
        return None, None
    if part.origin == "gemini":
        inline = d.get("inlineData") or d.get("inline_data")
        if isinstance(inline, Mapping):
            mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
            return ("pdf", _str(inline.get("data"))) if "pdf" in mime else (None, None)
        ref = d.get("fileData") or d.get("file_data")
        if isinstance(ref, Mapping):
            mime = str(ref.get("mimeType") or ref.get("mime_type") or "")
            return ("media", None) if mime.startswith(("video/", "audio/")) or not mime else ("doc", None)
    return None, None


def _file(spec: Mapping[str, Any]) -> tuple[str | None, str | None]:
    data = _str(spec.get("file_data"))
    if data:
        m = _DATA_URL.match(data)
        if m is None:
            return "pdf", data  # bare base64
        if "pdf" not in (m.group(1) or "pdf").lower():
            return None, None  # a text-like file: its bytes are already counted
        return "pdf", data[m.end():]
    return "doc", None  # file_id or file_url


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_COUNT = re.compile(rb"/Count\s+(\d{1,7})")
_ESCAPED_NAME = re.compile(rb"/[A-Za-z]*#[0-9A-Fa-f]{2}")


def pdf_pages(b64: str) -> int | None:
    """Pages of an inline PDF, or None when they cannot be counted safely.

    Pages are ``/Type /Page`` objects (and the page tree's ``/Count``); a file
    that could hide them from a byte scan (compressed object streams,
    encryption, escaped names) is not counted.
    """
    try:
        raw = base64.b64decode(b64, validate=False)
    except (binascii.Error, ValueError):
        return None
    if b"%PDF" not in raw[:1024] or b"/ObjStm" in raw or b"/Encrypt" in raw or _ESCAPED_NAME.search(raw):
        return None
    pages = len(_PAGE.findall(raw))
    counts = [int(c) for c in _COUNT.findall(raw)]
    n = max([pages, *counts])
    return n or None
