"""The rate card: model catalogue and prices from ``ratecard.toml``; costs and the public row.

Prices are USD per 1M tokens (chat, embedding, rerank), per image, per second
(video, some audio) or per 1M characters (speech). A model some channel prices
is ``live``; a model only the card prices is a ``scaffold`` estimate, or
``legacy`` when a newer model supersedes it; the built-in demo model is
``demo``. Nothing here is ever a float. Aliases are only other spellings of a
row's own model and the retired names its vendor maps to it; the channels
file is merged in by ``core.catalog``, the one resolver every part reads.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any, Iterable

from .money import PER_MILLION

CARD_FILE = Path(__file__).with_name("ratecard.toml")
KINDS = ("chat", "image", "video", "embedding", "rerank", "audio")
PRICE_FIELDS = ("input", "cache_write", "cache_read", "output", "per_image", "per_second", "per_million_chars",
                "per_search")
DEMO_MODEL = "bytespike-echo"
CARD_STATUSES = ("scaffold", "legacy", "demo")  # as the card file writes them; a channel price makes `live`
_DAY = re.compile(r"^20\d\d-\d\d-\d\d$")


@dataclass(frozen=True)
class ModelCard:
    id: str
    vendor: str
    kind: str
    display_name: str
    family: str
    input: Decimal | None = None
    cache_write: Decimal | None = None
    cache_read: Decimal | None = None
    output: Decimal | None = None
    per_image: Decimal | None = None
    per_second: Decimal | None = None
    per_million_chars: Decimal | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    aliases: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    source: str = ""
    status: str = "scaffold"  # live | scaffold | legacy | demo
    per_search: Decimal | None = None  # USD per rerank search unit, or per web search a chat model runs
    note: str = ""
    # retired names the vendor maps to this model, with the day the vendor stops accepting them
    retired: tuple[tuple[str, str], ...] = ()


_DATED = re.compile(r"-(20\d{6}|20\d\d-\d\d-\d\d|latest)$")


def normalize(name: str) -> str:
    """Fold a model name to its lookup form: lower case, no ``vendor/`` prefix, dashes for dots."""
    name = name.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    return re.sub(r"[._\s]+", "-", name)


class RateCard:
    """The models, in card order, with an index of every accepted spelling."""

    def __init__(self, models: Iterable[ModelCard], presets: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.models = list(models)
        self.presets = {name: _preset_ids(self.models, spec) for name, spec in (presets or {}).items()}
        self._by_id = {m.id: m for m in self.models}
        self._index: dict[str, ModelCard] = {}
        for m in self.models:  # aliases first so that an id always wins over another row's alias
            for alias in (*m.aliases, *(name for name, _ in m.retired)):
                self._index.setdefault(normalize(alias), m)
        for m in self.models:
            self._index[normalize(m.id)] = m
            self._index[normalize(f"{m.vendor}/{m.id}")] = m

    def resolve(self, name: str) -> ModelCard | None:
        """Find a model by id, alias, ``vendor/id`` or dotted spelling; None when unknown."""
        if not name:
            return None
        hit = self._by_id.get(name)
        if hit is not None:
            return hit
        key = normalize(name)
        # a dated snapshot ("claude-sonnet-4-5-20250929") falls back to its undated row
        return self._index.get(key) or self._index.get(_DATED.sub("", key))

    def get(self, model_id: str) -> ModelCard | None:
        return self._by_id.get(model_id)

    def preset_models(self, preset: str) -> tuple[str, ...]:
        """The ids a preset grants (empty for an unknown preset)."""
        return self.presets.get(preset, ())


def _preset_ids(models: list[ModelCard], spec: Mapping[str, Any]) -> tuple[str, ...]:
    # A preset grants its vendors' rows, its listed extras, and every model that only a channel
    # brings (the operator chose to serve it).
    vendors, extra = set(spec.get("vendors", ())), set(spec.get("models", ()))
    return tuple(m.id for m in models
                 if m.vendor in vendors or m.id in extra or m.source.startswith("channel "))


# --- loading -----------------------------------------------------------------


def _dec(row: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    v = row.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, float):
        raise ValueError(f"{where}.{key}: write prices as decimal strings, not floats")
    return Decimal(str(v))


def _card_from_row(row: Mapping[str, Any], n: int) -> ModelCard:
    where = f"{CARD_FILE.name}: models[{n}] ({row.get('id', '?')})"
    for req in ("id", "vendor", "kind", "display_name", "family", "source"):
        if not row.get(req):
            raise ValueError(f"{where}: missing {req}")
    if row["kind"] not in KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}")
    if row.get("status", "scaffold") not in CARD_STATUSES:
        raise ValueError(f"{where}: status must be one of {', '.join(CARD_STATUSES)}")
    retired = dict(row.get("retired", {}))
    if not all(isinstance(d, str) and _DAY.match(d) for d in retired.values()):
        raise ValueError(f"{where}: retired maps each old name to its end date, \"YYYY-MM-DD\"")
    prices: dict[str, Any] = {k: _dec(row, k, where) for k in PRICE_FIELDS}
    return ModelCard(
        id=row["id"], vendor=row["vendor"], kind=row["kind"], display_name=row["display_name"],
        family=row["family"], context_window=row.get("context_window"),
        max_output_tokens=row.get("max_output_tokens"), aliases=tuple(row.get("aliases", ())),
        capabilities=tuple(row.get("capabilities", ())), protocols=tuple(row.get("protocols", ("openai",))),
        source=row["source"], status=row.get("status", "scaffold"), note=row.get("note", ""),
        retired=tuple(sorted(retired.items())), **prices,
    )


def load_file(path: Path = CARD_FILE) -> tuple[list[ModelCard], dict[str, dict[str, Any]]]:
    """Parse the card file into rows and presets."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rows = [_card_from_row(r, i) for i, r in enumerate(data.get("models", []))]
    ids = [r.id for r in rows]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"{path.name}: duplicate model ids {sorted(dupes)}")
    return rows, dict(data.get("presets", {}))


# --- cost --------------------------------------------------------------------


def _ceil(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_CEILING))


def chat_cost_credits(card: ModelCard, usage: Any) -> int:
    """Credits for a token-billed call: ceil(sum of tokens x USD-per-1M price), per API.md §3.

    ``usage`` is a canonical ``Usage``: ``input_tokens`` is uncached input only
    (an OpenAI ``prompt_tokens`` minus its cached tokens). A missing cache
    price falls back to the input price.
    """
    p_in = card.input or Decimal(0)
    p_cw = card.cache_write if card.cache_write is not None else p_in
    p_cr = card.cache_read if card.cache_read is not None else p_in
    p_out = card.output or Decimal(0)
    # tokens x (USD per 1M tokens) is USD x 1e6, i.e. credits: summed exactly in integers.
    scale, (a_in, a_cw, a_cr, a_out) = _scaled((p_in, p_cw, p_cr, p_out))
    total = (usage.input_tokens * a_in + usage.cache_write_tokens * a_cw + usage.cache_read_tokens * a_cr
             + usage.output_tokens * a_out)
    # Searches the vendor ran (web search, grounding) at the row's per_search price.
    charged: int = max(0, -(-total // scale))
    searches = getattr(usage, "web_searches", 0) or 0
    return charged + search_cost_credits(card, searches) if searches else charged


@functools.lru_cache(maxsize=4096)
def _scaled(prices: tuple[Decimal, ...]) -> tuple[int, tuple[int, ...]]:
    """Exact prices as integers over one power of ten: (10**k, each price x 10**k)."""
    k = max(0, *(-p.as_tuple().exponent for p in prices if p.is_finite()))  # type: ignore[operator]
    scale = 10 ** k
    return scale, tuple(int(p.scaleb(k)) for p in prices)


def image_cost_credits(card: ModelCard, images: int) -> int:
    """Credits for ``images`` generated images."""
    return _ceil(Decimal(images) * (card.per_image or Decimal(0)) * PER_MILLION)


def seconds_cost_credits(card: ModelCard, seconds: Decimal | int) -> int:
    """Credits for ``seconds`` of rendered video or transcribed audio."""
    return _ceil(Decimal(seconds) * (card.per_second or Decimal(0)) * PER_MILLION)


def search_cost_credits(card: ModelCard, searches: int) -> int:
    """Credits for ``searches`` rerank search units (rows priced ``per_search``)."""
    return _ceil(Decimal(searches) * (card.per_search or Decimal(0)) * PER_MILLION)


def chars_cost_credits(card: ModelCard, chars: int) -> int:
    """Credits for ``chars`` characters of synthesised speech."""
    return _ceil(Decimal(chars) * (card.per_million_chars or Decimal(0)))


_BLOB = re.compile(rb"[A-Za-z0-9+/=]{2000,}")
BLOB_TOKENS = 1600  # an image block is billed at most about this many tokens by the vendors


def estimate_input_tokens(body: bytes) -> int:
    """Guess a typical input token count from a request body: about one per 3 bytes.

    Base64 blobs (images, files) count as a fixed allowance each instead of by
    size. A likely figure, not a bound: it answers ``count_tokens`` and stands in
    for the usage of an upstream that reports none; reservations use the upper
    bound of ``gateway.estimate``.
    """
    blobs = 0
    size = len(body)
    if size > 2000:
        for m in _BLOB.finditer(body):
            blobs += 1
            size -= m.end() - m.start()
    return size // 3 + 1 + blobs * BLOB_TOKENS


def estimate_credits(card: ModelCard, input_tokens: int, max_output_tokens: int) -> int:
    """Upper-bound credits for a chat call: every input token at the dearer of input and cache write."""
    p_in = card.input or Decimal(0)
    p_cw = card.cache_write if card.cache_write is not None else p_in
    p_out = card.output or Decimal(0)
    return max(0, _ceil(Decimal(input_tokens) * max(p_in, p_cw) + Decimal(max_output_tokens) * p_out))


# --- public rendering ---------------------------------------------------------


def price_str(value: Decimal | None) -> str | None:
    """A price as the public card writes it: at least two decimals, trailing precision kept."""
    if value is None:
        return None
    v = value.normalize()
    if v.as_tuple().exponent >= -2:  # type: ignore[operator]
        v = v.quantize(Decimal("0.01"))
    return format(v, "f")


def public_row(m: ModelCard) -> dict[str, Any]:
    """One model as ``GET /api/pricing`` shows it."""
    return {
        "id": m.id, "vendor": m.vendor, "kind": m.kind,
        "input": price_str(m.input), "cache_write": price_str(m.cache_write),
        "cache_read": price_str(m.cache_read), "output": price_str(m.output),
        "per_image": price_str(m.per_image), "per_second": price_str(m.per_second),
        "context_window": m.context_window, "status": m.status, "protocols": list(m.protocols),
        # additive fields for the site
        "display_name": m.display_name, "family": m.family,
        "per_million_chars": price_str(m.per_million_chars), "max_output_tokens": m.max_output_tokens,
        "capabilities": list(m.capabilities), "aliases": list(m.aliases), "source": m.source,
        "per_search": price_str(m.per_search), "note": m.note,
        "retired": [{"name": name, "until": until} for name, until in m.retired],
    }
