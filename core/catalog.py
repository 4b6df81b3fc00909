"""The one model resolver: the rate card merged with the channels file, reloaded when the file changes.

Routing, ``/v1/models``, ``/api/pricing``, the model pages and billing all read
the same ``Catalog``. A channel's ``models`` entry is served under exactly that
id, at the channel's price when it gives one, else at the card's: an id on the
card is that row; another spelling of a card id (``gpt-5.4``,
``openai/gpt-5-4``) is that row too, with the listed name sent upstream; any
other name (a dated snapshot, a retired name, a model the card lacks) is a row
of its own, priced from the card row it aliases or by the channel, which must
price a model the card lacks.

The catalog is built once per process at start-up and again when the channels
file changes on disk (checked at most every ``BYTESPIKE_CHANNELS_CHECK_S``
seconds) or the server reloads (SIGHUP to the gunicorn master). A file that
fails to load keeps the running catalog and logs the error (file, line, field).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, cast

from . import channels as core_channels
from . import pricesync
from .channels import ChannelConfig, ChannelFileError
from .ratecard import CARD_FILE, PRICE_FIELDS, ModelCard, RateCard, load_file, normalize

log = logging.getLogger("bytespike.catalog")

EXT = "bytespike_catalog"
DEFAULT_CHECK_S = 2.0


@dataclass(frozen=True)
class Catalog:
    """The card as served (every channel-listed id on it) and the channels with served ids."""

    card: RateCard
    channels: tuple[ChannelConfig, ...]
    version: int = 0

    def resolve(self, name: str) -> ModelCard | None:
        return self.card.resolve(name)


def served_id(card: RateCard, name: str) -> str:
    """The id a channel's ``models`` entry is served under: a card id, or exactly the listed name."""
    if card.get(name) is not None:
        return name
    row = card.resolve(name)
    if row is not None and normalize(name) == normalize(row.id):
        return row.id  # only a spelling of the row's id (case, dots, a vendor/ prefix)
    return name


def build(channels: Iterable[ChannelConfig], card_file: Path = CARD_FILE, version: int = 0,
          overlay: dict[str, Any] | None = None) -> Catalog:
    """Merge channels into the card; ChannelFileError names the file and line of an unpriced unknown id.

    ``overlay``: the nightly refresh's rows (``core.pricesync``), laid over the scaffold rows first.
    """
    rows, presets = load_file(card_file)
    rows = pricesync.apply_overlay(rows, overlay or {})
    base = RateCard(rows)
    merged = {r.id: r for r in rows}
    out = []
    for ch in channels:
        listed, model_map, prices = [], dict(ch.model_map), dict(ch.prices)
        for name in ch.models:
            sid = served_id(base, name)
            if sid != name:  # a spelling: the upstream still gets the name the operator wrote
                model_map.setdefault(sid, ch.model_map.get(name, name))
                if name in prices:
                    prices.setdefault(sid, prices.pop(name))
            listed.append(sid)
            merged[sid] = _served_row(base, merged.get(sid), ch, name, sid, prices.get(sid))
        unlisted = sorted(set(prices) - set(listed))
        if unlisted:
            raise ChannelFileError(f"{ch.source}:{ch.lines.get(ch.models[0], 1)}: channels[{ch.index}].prices: "
                                   f"prices for {', '.join(unlisted)}, which the channel does not list in models")
        out.append(replace(ch, models=tuple(dict.fromkeys(listed)), model_map=model_map, prices=prices))
    return Catalog(RateCard(merged.values(), presets), tuple(out), version)


def _served_row(base: RateCard, known: ModelCard | None, ch: ChannelConfig, name: str, sid: str,
                prices: dict[str, Decimal] | None) -> ModelCard:
    fields: dict[str, Any] = {k: v for k, v in (prices or {}).items() if k in PRICE_FIELDS}
    if known is None:
        alias_of = base.resolve(name)
        if alias_of is not None:  # a retired name or a dated snapshot: its own row at the aliased row's price
            known = replace(alias_of, id=sid, display_name=f"{alias_of.display_name} ({sid})", aliases=(),
                            retired=(), note=f"Served as '{sid}' by a channel; the same model as {alias_of.id}.")
        elif not fields:
            raise ChannelFileError(f"{ch.where(name)}: model '{name}' is not on the rate card; price it in "
                                   f'[channels.prices."{name}"] (input and output, or per_image / per_second)')
        else:
            return _channel_only(ch, sid, fields)
    if fields and known.status != "demo":
        return replace(known, status="live", **fields)
    return known


def _channel_only(ch: ChannelConfig, model: str, fields: dict[str, Any]) -> ModelCard:
    kind = "image" if "per_image" in fields else "video" if "per_second" in fields else "chat"
    return ModelCard(id=model, vendor=ch.name, kind=kind, display_name=model, family=model.split("-")[0],
                     protocols=(ch.protocol,), source=f"channel {ch.name}", status="live", **fields)


def load(path: str | Path | None, text: str | None = None, version: int = 0, refresh: str | None = None) -> Catalog:
    """Read (or take ``text`` as) the channels file at ``path`` and build the catalog (with ``refresh``'s rows)."""
    overlay = pricesync.read_overlay(refresh)
    if not path:
        return build([], version=version, overlay=overlay)
    chans = core_channels.parse(path, core_channels.read(path) if text is None else text)
    return build(chans, version=version, overlay=overlay)


# --- one catalog per app, reloaded when the file changes ---------------------------------------


def _stamp(path: str | None) -> tuple[int, int, int] | None:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Holder:
    """This process's catalog; swaps in a new one when the channels file changes and loads cleanly."""

    def __init__(self, path: str | None, catalog: Catalog, check_s: float, refresh: str | None = None) -> None:
        self.path, self.catalog, self.check_s, self.refresh = path, catalog, check_s, refresh
        self.stamp = self.tried = self._stamps()
        self.checked_at = time.monotonic()
        self._lock = threading.Lock()

    def get(self) -> Catalog:
        if (self.path or self.refresh) and time.monotonic() - self.checked_at >= self.check_s:
            self.check()
        return self.catalog

    def check(self) -> bool:
        """Reload if the file changed since the last attempt; True when a new catalog is in place."""
        with self._lock:
            self.checked_at = time.monotonic()
            stamp = self._stamps()
            if stamp == self.tried:
                return False
            self.tried = stamp
            try:
                fresh = load(self.path, version=self.catalog.version + 1, refresh=self.refresh)
            except (ChannelFileError, ValueError) as err:
                log.error("channels file not reloaded, keeping the running configuration: %s", err)
                return False
            self.catalog, self.stamp = fresh, stamp
        log.info("channels file %s reloaded: %d channels", self.path, len(fresh.channels))
        return True

    def _stamps(self) -> tuple[Any, Any]:
        return _stamp(self.path), _stamp(self.refresh)


def init_app(app: Any) -> None:
    """Build the app's catalog: a malformed channels file stops start-up, unless this worker was
    forked by a gunicorn master holding a good copy of it (a reload), which it then runs on."""
    path = app.config.get("BYTESPIKE_CHANNELS_FILE")
    refresh = app.config.get("BYTESPIKE_PRICE_REFRESH_FILE")
    try:
        catalog = load(path, refresh=refresh)
    except ChannelFileError as err:
        good = core_channels.last_good(path)
        if good is None:
            raise
        log.error("channels file not loaded, keeping the running configuration: %s", err)
        catalog = load(path, good, refresh=refresh)
    check_s = float(app.config.get("BYTESPIKE_CHANNELS_CHECK_S") or DEFAULT_CHECK_S)
    app.extensions[EXT] = Holder(path, catalog, check_s, refresh)


_init_lock = threading.Lock()


def current(app: Any = None) -> Catalog:
    """The catalog of this app (built on first use when ``init_app`` did not run)."""
    if app is None:
        from flask import current_app

        app = current_app._get_current_object()  # type: ignore[attr-defined]
    holder = app.extensions.get(EXT)
    if holder is None:
        with _init_lock:
            if app.extensions.get(EXT) is None:
                init_app(app)
            holder = app.extensions[EXT]
    return cast(Catalog, holder.get())


def get_card(app: Any = None) -> RateCard:
    """The rate card as served: the one every price, list and page reads."""
    return current(app).card


def remember(path: str | None) -> None:
    """Check the channels file in the gunicorn master and keep its text for the workers it forks."""
    if not path:
        return
    text = core_channels.read(path)
    load(path, text)  # raises with file, line and field
    core_channels.remember_good(path, text)
