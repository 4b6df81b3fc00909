"""The pricing page and the model library, drawn from the same rows as ``GET /api/pricing``.

Every figure on these pages comes from ``core.ratecard.public_row``: the page
and the API cannot disagree. CNY amounts convert at ``BYTESPIKE_CNY_PER_USD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import lazy_gettext as _l

from core import catalog, ratecard

from .examples import model_examples

bp = Blueprint("pricing", __name__, url_prefix="/<lang>")

KIND_LABELS = {
    "chat": _l("Chat"), "image": _l("Image"), "video": _l("Video"),
    "embedding": _l("Embedding"), "rerank": _l("Rerank"), "audio": _l("Audio"),
}
STATUS_LABELS = {"live": _l("Live channel"), "scaffold": _l("Scaffold estimate"), "legacy": _l("Legacy"),
                 "demo": _l("Demo")}
CAPABILITY_LABELS = {
    "tools": _l("Tool use"), "vision": _l("Vision"), "thinking": _l("Extended thinking"),
    "cache": _l("Prompt caching"), "search": _l("Web search"), "web_search": _l("Web search"),
    "json": _l("JSON output"), "demo": _l("Demo"), "audio": _l("Audio input"), "streaming": _l("Streaming"),
    "embedding": _l("Embeddings"), "rerank": _l("Reranking"), "image_generation": _l("Image generation"),
    "image_edit": _l("Image editing"), "video_generation": _l("Video generation"),
    "tts": _l("Text to speech"), "stt": _l("Speech to text"), "pdf": _l("PDF input"),
    "code_execution": _l("Code execution"), "web_fetch": _l("Web page fetch"),
}
PROTOCOL_LABELS = {
    "anthropic": "Anthropic Messages", "openai": "OpenAI", "gemini": "Gemini", "tasks": _l("Async tasks"),
}
# Vendors known in China by a Chinese name get one on the Chinese pages; brands stay as written.
VENDOR_NAMES: dict[str, Any] = {
    "anthropic": "Anthropic", "openai": "OpenAI", "google": "Google", "deepseek": "DeepSeek",
    "moonshot": _l("Moonshot"), "zhipu": _l("Zhipu"), "minimax": "MiniMax", "alibaba": _l("Alibaba"),
    "bytedance": _l("ByteDance"), "bytespike": "ByteSpike", "xai": "xAI", "mistral": "Mistral",
    "cohere": "Cohere", "jina": "Jina", "baai": _l("BAAI"), "kuaishou": _l("Kuaishou"), "qwen": _l("Qwen"),
}
# Display-name suffixes the rate card writes in English.
NAME_SUFFIXES = {"(legacy)": _l("(legacy)"), "(demo, free)": _l("(demo, free)")}
TOKEN_FIELDS = ("input", "cache_write", "cache_read", "output")
MICRO = Decimal(1_000_000)


@dataclass(frozen=True)
class Row:
    """One public rate-card row plus what the page needs to show it."""

    data: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    @property
    def vendor_name(self) -> str:
        return vendor_name(self.data["vendor"])

    @property
    def display_name(self) -> str:
        """The card's name, its "(legacy)" / "(demo, free)" note in the page's language."""
        name = str(self.data.get("display_name") or self.data["id"])
        for suffix, label in NAME_SUFFIXES.items():
            if name.endswith(" " + suffix):
                return f"{name[: -len(suffix) - 1]} {label}"
        return name

    @property
    def token_priced(self) -> bool:
        return any(self.data.get(f) is not None for f in TOKEN_FIELDS)

    def micro(self, field: str) -> int | None:
        """Return a USD-per-unit price in micro-dollars (an exact integer) for the calculator."""
        value = self.data.get(field)
        return None if value is None else int(Decimal(value) * MICRO)

    @property
    def unit_price(self) -> tuple[str, str] | None:
        """Return the non-token price and its unit label (per image, per second, per 1M characters)."""
        for field, unit in (("per_image", _l("per image")), ("per_second", _l("per second")),
                            ("per_million_chars", _l("per 1M characters")), ("per_search", _l("per search unit"))):
            if self.data.get(field) is not None:
                return self.data[field], str(unit)
        return None


def compact_tokens(n: int) -> str:
    """Write a token count the way model cards do: 1M, 262K, 512."""
    if n >= 1_000_000:
        tenths = (n % 1_000_000) // 100_000
        return f"{n // 1_000_000}M" if tenths == 0 else f"{n // 1_000_000}.{tenths}M"
    return f"{n // 1000}K" if n >= 1000 else str(n)


def vendor_name(vendor: str) -> str:
    """Return a vendor's display name."""
    return str(VENDOR_NAMES.get(vendor, vendor.replace("-", " ").title()))


def rows() -> list[Row]:
    """Return every rate-card row exactly as ``/api/pricing`` serialises it, in card order."""
    card = catalog.get_card(current_app._get_current_object())  # type: ignore[attr-defined]
    return [Row(ratecard.public_row(m)) for m in card.models]


def cny_rate() -> Decimal:
    """Return the CNY per USD rate of this deployment."""
    return Decimal(str(current_app.config.get("CNY_PER_USD") or current_app.config["BYTESPIKE_CNY_PER_USD"]))


def to_cny(usd: str | None) -> str | None:
    """Convert a USD decimal string to CNY: cents for amounts over 1 yuan, else four places."""
    if usd is None:
        return None
    value = Decimal(usd) * cny_rate()
    places = Decimal("0.01") if value >= 1 or value == 0 else Decimal("0.0001")
    return format(value.quantize(places, rounding=ROUND_HALF_UP), "f")


def filter_rows(all_rows: list[Row], q: str, vendor: str, kind: str) -> list[Row]:
    """Apply the page's filters (the same ones the script applies without a reload)."""
    q = q.strip().lower()
    out = []
    for row in all_rows:
        if vendor and row.vendor != vendor:
            continue
        if kind and row.kind != kind:
            continue
        haystack = " ".join([row.id, row.display_name or "", row.vendor, *row.data.get("aliases", [])]).lower()
        if q and q not in haystack:
            continue
        out.append(row)
    return out


def _template_helpers() -> dict[str, Any]:
    return {
        "KIND_LABELS": KIND_LABELS, "STATUS_LABELS": STATUS_LABELS, "CAPABILITY_LABELS": CAPABILITY_LABELS,
        "PROTOCOL_LABELS": PROTOCOL_LABELS,
        "to_cny": to_cny, "vendor_name": vendor_name, "cny_rate": cny_rate(), "compact_tokens": compact_tokens,
    }


@bp.get("/pricing/")
def index():  # type: ignore[no-untyped-def]
    """Render the full rate card with filters, badges and the cost calculator."""
    all_rows = rows()
    q = request.args.get("q", "")
    vendor = request.args.get("vendor", "")
    kind = request.args.get("kind", "")
    shown = filter_rows(all_rows, q, vendor, kind)
    vendors = sorted({r.vendor for r in all_rows}, key=lambda v: vendor_name(v).lower())
    kinds = [k for k in ratecard.KINDS if any(r.kind == k for r in all_rows)]
    return render_template(
        "pricing/index.html", rows=shown, total=len(all_rows), vendors=vendors, kinds=kinds,
        q=q, vendor=vendor, kind=kind, active_page="pricing", **_template_helpers(),
    )


@bp.get("/models/")
def models():  # type: ignore[no-untyped-def]
    """Render the model library, grouped by vendor."""
    groups: dict[str, list[Row]] = {}
    for row in rows():
        groups.setdefault(row.vendor, []).append(row)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] == "bytespike", vendor_name(kv[0]).lower()))
    return render_template("pricing/models.html", groups=ordered, active_page="models", **_template_helpers())


@bp.get("/models/<model_id>/")
def model(model_id: str):  # type: ignore[no-untyped-def]
    """Render one model's page: facts, prices and a call example per protocol."""
    row = next((r for r in rows() if r.id == model_id), None)
    if row is None:
        abort(404)
    base = (current_app.config.get("BYTESPIKE_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    return render_template(
        "pricing/model.html", row=row, examples=model_examples(row.data, base), active_page="models",
        **_template_helpers(),
    )
