"""JSON from strangers: bounded depth, numbers in range, text that is valid Unicode.

``json.loads`` alone lets a request reach a 500: nesting past the recursion
limit, ``1e999`` (infinity), ``NaN``, integers too large for the database, and
lone UTF-16 surrogates (``"\\ud800"``) that fail the moment they are encoded.
``loads`` refuses each with a ``BadJSON`` naming the problem, and costs almost
nothing on ordinary bodies: the depth and text walks run only when a cheap
look at the raw bytes says they could find something.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeAlias

from flask.json.provider import DefaultJSONProvider

# A JSON value, and a JSON object (what a request body must be).
JSON: TypeAlias = "None | bool | int | float | str | list[JSON] | dict[str, JSON]"
JSONObject: TypeAlias = "dict[str, JSON]"

MAX_DEPTH = 128
# Numbers beyond 2**53 do not survive a trip through most JSON parsers (RFC 7493, I-JSON).
MAX_SAFE = 2**53
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BadJSON(ValueError):
    """The body is not JSON this service will read; ``str()`` says why."""


def _int(text: str) -> int:
    if len(text) > 17 or abs(value := int(text)) > MAX_SAFE:
        raise BadJSON(f"number {text[:24]}{'…' if len(text) > 24 else ''} is out of range (|n| <= 2^53)")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_SAFE:
        raise BadJSON(f"number {text[:24]} is out of range (finite, |n| <= 2^53)")
    return value


def _constant(name: str) -> Any:
    raise BadJSON(f"{name} is not a JSON number")


# Built once: ``json.loads`` with these hooks builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def _decode(data: bytes | str) -> Any:
    """``json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)``."""
    if isinstance(data, (bytes, bytearray)):
        text = data.decode(json.detect_encoding(data), "surrogatepass")
    else:
        text = data
        if text.startswith("\ufeff"):
            raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
    return _DECODER.decode(text)


def loads(data: bytes | str) -> Any:
    """Parse ``data`` or raise ``BadJSON``."""
    try:
        value = _decode(data)
    except BadJSON:
        raise
    except RecursionError:
        raise BadJSON(f"JSON is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except UnicodeDecodeError:
        raise BadJSON("body is not valid UTF-8") from None
    except ValueError:
        raise BadJSON("body is not valid JSON") from None
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    text = _SURROGATE_ESCAPE.search(raw) is not None or isinstance(data, str)
    if deep or text:
        _walk(value, check_text=text)
    return value


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON with ``loads`` bounded as above: ``request.get_json`` refuses what ``loads`` does."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def _walk(value: Any, *, check_text: bool) -> None:
    """Refuse nesting deeper than MAX_DEPTH and (when asked) strings that are not valid Unicode."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.items()
        elif isinstance(node, list):
            children = ((None, v) for v in node)
        else:
            if check_text and isinstance(node, str):
                _valid_text(node)
            continue
        if depth > MAX_DEPTH:
            raise BadJSON(f"JSON is nested too deeply (at most {MAX_DEPTH} levels)")
        for key, child in children:
            if check_text and key is not None:
                _valid_text(key)
            if isinstance(child, (dict, list)) or (check_text and isinstance(child, str)):
                stack.append((child, depth + 1))


def _valid_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJSON("text contains a lone UTF-16 surrogate (\\ud800-\\udfff); send valid Unicode") from None
