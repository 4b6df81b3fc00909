"""The nightly rate-card refresh: the operator's price sources, diffed against the card's scaffold rows.

``BYTESPIKE_PRICE_SOURCES`` names a TOML or JSON file of sources, one per vendor,
each a JSON file path or an http(s) URL::

    [sources]
    openai = "https://prices.example.com/openai.json"
    deepseek = "/etc/bytespike/deepseek-prices.json"

A source is ``{"models": {"<card id>": {"input": "1.25", "output": "10.00", ...}}}``
(prices as decimal strings, USD per the card's units). Each row whose prices differ
from what is served is recorded in the refresh file (``BYTESPIKE_PRICE_REFRESH_FILE``,
default ``instance/ratecard-refresh.json``) with its own ``updated_at`` and
``source``; the catalog lays those rows over the card's scaffold and legacy rows.
A ``live`` row (priced by the operator's channels file) and the demo row are never
touched, nor is a model of another vendor than its source's. The file's
``refreshed_at`` is the card's refresh time that ``/api/pricing`` reports.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import requests

from .ratecard import PRICE_FIELDS, ModelCard, RateCard

log = logging.getLogger("bytespike.pricesync")
REFRESHABLE = ("scaffold", "legacy")
FETCH_TIMEOUT = (5.0, 20.0)


class PriceSourceError(ValueError):
    """A sources file or a source is unusable; the message names it."""


def read_overlay(path: str | Path | None) -> dict[str, Any]:
    """The refresh file's content (``{"refreshed_at": ..., "rows": {...}}``); empty when absent."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.error("rate-card refresh file %s unreadable, ignored: %s", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def apply_overlay(rows: list[ModelCard], overlay: Mapping[str, Any]) -> list[ModelCard]:
    """The card's rows with the refreshed prices laid over the scaffold and legacy ones."""
    recorded = overlay.get("rows") or {}
    out = []
    for row in rows:
        rec = recorded.get(row.id)
        if isinstance(rec, dict) and row.status in REFRESHABLE:
            prices: dict[str, Any] = {k: Decimal(v) for k, v in (rec.get("prices") or {}).items()
                                      if k in PRICE_FIELDS}
            row = replace(row, source=str(rec.get("source") or row.source), **prices)
        out.append(row)
    return out


def load_sources(path: str | Path) -> dict[str, str]:
    """vendor -> source (file path or URL) from the operator's TOML or JSON file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text) if str(path).endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise PriceSourceError(f"{path}: {err}") from err
    sources = data.get("sources", data)
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise PriceSourceError(f"{path}: expected a [sources] table of vendor = \"path or URL\"")
    return dict(sources)


def fetch(source: str) -> dict[str, dict[str, Decimal]]:
    """model id -> prices from one source (a JSON file or URL)."""
    try:
        if source.startswith(("http://", "https://")):
            resp = requests.get(source, timeout=FETCH_TIMEOUT, allow_redirects=False)
            resp.raise_for_status()
            data = resp.json()
        else:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        models = data["models"]
        return {str(mid): {k: Decimal(str(v)) for k, v in prices.items() if k in PRICE_FIELDS}
                for mid, prices in models.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InvalidOperation,
            requests.RequestException) as err:
        raise PriceSourceError(f"price source {source}: {type(err).__name__}: {err}") from err


def diff(card: RateCard, vendor: str, prices: Mapping[str, Mapping[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    """The rows of ``vendor`` (scaffold or legacy) whose served prices differ from the source's."""
    changed = {}
    for mid, new in prices.items():
        row = card.get(mid)
        if row is None or row.vendor != vendor or row.status not in REFRESHABLE or not new:
            continue
        if any(getattr(row, k) != v for k, v in new.items()):
            changed[mid] = dict(new)
    return changed


def refresh(card: RateCard, sources_file: str | None, refresh_file: str | Path, now: dt.datetime) -> int:
    """Fetch every source, record the changed rows, stamp the refresh time; return how many rows changed.

    A source that fails is logged and skipped (its rows keep their last prices); the others still apply.
    """
    if not sources_file:
        return 0  # nothing configured: the card stays as shipped, its refresh time unchanged
    overlay = read_overlay(refresh_file)
    rows: dict[str, Any] = dict(overlay.get("rows") or {})
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = 0
    for vendor, source in load_sources(sources_file).items():
        try:
            prices = fetch(source)
        except PriceSourceError as err:
            log.error("rate-card refresh: %s", err)
            continue
        for mid, new in diff(card, vendor, prices).items():
            kept = dict((rows.get(mid) or {}).get("prices") or {})
            kept.update({k: format(v, "f") for k, v in new.items()})
            rows[mid] = {"prices": kept, "source": source, "updated_at": stamp}
            changed += 1
    write_overlay(refresh_file, {"refreshed_at": stamp, "rows": rows})
    return changed


def write_overlay(path: str | Path, data: Mapping[str, Any]) -> None:
    """Replace the refresh file in one step (readers never see half of it)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ratecard-refresh.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, target)


def refreshed_at(path: str | Path | None) -> float:
    """The card's last refresh as a Unix time (0 when it never ran)."""
    stamp = read_overlay(path).get("refreshed_at")
    try:
        return dt.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return 0.0
