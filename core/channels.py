"""The channels file (TOML): upstream endpoints, their key pools and operator prices.

Parsed by ``core.catalog`` (once at start-up, again when the file changes). A
malformed file stops start-up with a message that names the file, the line
and the field; a key never appears in that message. A running server keeps
its last good file instead (``remember_good`` / ``last_good``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

PROTOCOLS = ("anthropic", "openai", "gemini")
PRICE_FIELDS = ("input", "cache_write", "cache_read", "output", "per_image", "per_second", "per_million_chars", "per_search")


class ChannelFileError(ValueError):
    """The channels file is unusable; str() names file, line and field."""


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    protocol: str  # anthropic | openai | gemini | echo (the built-in demo)
    base_url: str
    api_keys: tuple[str, ...]
    models: tuple[str, ...]
    priority: int = 0
    weight: int = 1
    timeout_s: float = 600.0
    connect_timeout_s: float = 10.0
    model_map: dict[str, str] = field(default_factory=dict)
    # model id -> {"input": Decimal, ...}: operator prices, which make a rate-card row `live`
    prices: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # where it was written, for messages: the file, its index in the file, each model's line
    source: str = field(default="", compare=False)
    index: int = field(default=0, compare=False)
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    def where(self, model: str) -> str:
        """``file:line: channels[i].models`` for a model this channel lists."""
        return f"{self.source}:{self.lines.get(model, 1)}: channels[{self.index}].models"

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)

    def __repr__(self) -> str:  # never print keys
        return f"ChannelConfig(name={self.name!r}, protocol={self.protocol!r}, keys={len(self.api_keys)})"


# The last text of each channels file that loaded, kept by the gunicorn master so that workers
# it forks on a reload (SIGHUP) can run on it while the file on disk is malformed.
_LAST_GOOD: dict[str, str] = {}


def remember_good(path: str | Path, text: str) -> None:
    _LAST_GOOD[str(path)] = text


def last_good(path: str | Path | None) -> str | None:
    return _LAST_GOOD.get(str(path)) if path else None


def read(path: str | Path) -> str:
    """The file's text (ChannelFileError naming the file when it cannot be read)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ChannelFileError(f"{path}: cannot read channels file ({exc.strerror})") from exc


def load(path: str | Path | None) -> list[ChannelConfig]:
    """Parse and validate the channels file; an absent path gives no channels."""
    if not path:
        return []
    return parse(path, read(path))


def parse(path: str | Path, text: str) -> list[ChannelConfig]:
    """Parse and validate channels-file text read from ``path`` (named in every message)."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ChannelFileError(f"{path}: {exc}") from exc
    raw = data.get("channels", [])
    if not isinstance(raw, list):
        raise ChannelFileError(f"{path}:{_line_of(text, 'channels', 0)}: 'channels' must be an array of tables ([[channels]])")
    channels = [_parse_one(path, text, i, entry) for i, entry in enumerate(raw)]
    names = [c.name for c in channels]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ChannelFileError(f"{path}:{_line_of(text, 'name', i)}: channels[{i}].name: duplicate channel name {name!r}")
    return channels


def _parse_one(path: Path, text: str, i: int, entry: Any) -> ChannelConfig:
    def fail(fld: str, why: str) -> ChannelFileError:
        return ChannelFileError(f"{path}:{_line_of(text, fld, i)}: channels[{i}].{fld}: {why}")

    if not isinstance(entry, dict):
        raise ChannelFileError(f"{path}: channels[{i}] must be a table")
    for req in ("name", "protocol", "base_url", "api_keys", "models"):
        if req not in entry:
            raise fail(req, "required field is missing")
    name, protocol, base_url = entry["name"], entry["protocol"], entry["base_url"]
    if not isinstance(name, str) or not name:
        raise fail("name", "must be a non-empty string")
    if protocol not in PROTOCOLS:
        raise fail("protocol", f"must be one of {', '.join(PROTOCOLS)}")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise fail("base_url", "must be an http(s) URL")
    keys = entry["api_keys"]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise fail("api_keys", "must be a non-empty array of strings")
    models = entry["models"]
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        raise fail("models", "must be a non-empty array of model ids")
    ints: dict[str, int] = {}
    for fld, default in (("priority", 0), ("weight", 1)):
        v = entry.get(fld, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise fail(fld, "must be a non-negative integer")
        ints[fld] = v
    timeouts: dict[str, float] = {}
    for fld, fallback in (("timeout_s", 600.0), ("connect_timeout_s", 10.0)):
        t = entry.get(fld, fallback)
        if not isinstance(t, int | float) or isinstance(t, bool) or t <= 0:
            raise fail(fld, "must be a positive number of seconds")
        timeouts[fld] = float(t)
    model_map = entry.get("model_map", {})
    if not isinstance(model_map, dict) or not all(isinstance(v, str) for v in model_map.values()):
        raise fail("model_map", "must map model ids to upstream model names (strings)")
    prices = _parse_prices(entry.get("prices") or {}, fail)
    return ChannelConfig(
        source=str(path),
        index=i,
        lines={m: _model_line(text, i, m) for m in models},
        name=name,
        protocol=protocol,
        base_url=base_url.rstrip("/"),
        api_keys=tuple(keys),
        models=tuple(models),
        model_map=dict(model_map),
        prices=prices,
        priority=ints["priority"],
        weight=ints["weight"],
        timeout_s=timeouts["timeout_s"],
        connect_timeout_s=timeouts["connect_timeout_s"],
    )


def _parse_prices(table: dict[str, Any], fail: Callable[[str, str], ChannelFileError]) -> dict[str, dict[str, Decimal]]:
    """A channel's ``prices`` table: per model, each known price field as a non-negative Decimal."""
    prices: dict[str, dict[str, Decimal]] = {}
    for model, row in table.items():
        if not isinstance(row, dict):
            raise fail(f"prices.{model}", "must be a table of prices")
        parsed = {}
        for k, v in row.items():
            if k not in PRICE_FIELDS:
                raise fail(f"prices.{model}.{k}", f"unknown price field (known: {', '.join(PRICE_FIELDS)})")
            if isinstance(v, float):
                raise fail(f"prices.{model}.{k}", 'write prices as decimal strings, e.g. "3.00" (floats lose cents)')
            try:
                d = Decimal(str(v))
            except InvalidOperation:
                raise fail(f"prices.{model}.{k}", f"not a decimal: {v!r}") from None
            if d < 0:
                raise fail(f"prices.{model}.{k}", "must not be negative")
            parsed[k] = d
        prices[model] = parsed
    return prices


def _line_of(text: str, fld: str, index: int) -> int:
    """Best-effort line number of ``fld`` (e.g. ``weight``, ``prices.m.output``) in the index-th channel."""
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines) if line.strip() == "[[channels]]"]
    if index >= len(starts):
        return 1
    lo, hi = starts[index], starts[index + 1] if index + 1 < len(starts) else len(lines)
    parts = fld.split(".")
    if len(parts) > 1:  # a sub-table: find its header, then the key inside it
        for n in range(lo, hi):
            header = lines[n].strip().replace('"', "").replace("'", "")
            if header == f"[channels.{parts[0]}.{parts[1]}]" or (header == f"[channels.{parts[0]}]" and len(parts) == 2):
                key = parts[2] if len(parts) > 2 else parts[1]
                return _key_line(lines, n + 1, hi, key) or n + 1
    return _key_line(lines, lo, hi, parts[0]) or lo + 1


def _key_line(lines: list[str], lo: int, hi: int, key: str) -> int | None:
    """The 1-based line of ``key = ...`` in the table starting at ``lo``, or of a ``[channels.key...]`` header."""
    for n in range(lo, hi):
        stripped = lines[n].strip()
        if stripped.startswith(f"[channels.{key}"):
            return n + 1
        if "=" in stripped and stripped.split("=", 1)[0].strip().strip("\"'") == key:
            return n + 1
    return None


def _model_line(text: str, index: int, model: str) -> int:
    """The line where the index-th channel's ``models`` array names ``model`` (else the key's line)."""
    lines = text.splitlines()
    start = _line_of(text, "models", index)
    for n in range(start - 1, min(len(lines), start + 200)):
        if f'"{model}"' in lines[n] or f"'{model}'" in lines[n]:
            return n + 1
        if n >= start and lines[n].strip().startswith("["):
            break
    return start
