"""Read typed fields out of a JSON body, failing with an InvalidRequest that names the field.

Codecs never index a client body directly: a missing key or a wrong type must
become a 400 naming the field, never a KeyError or TypeError.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from core.errors import InvalidRequest
from gateway.protocols.common import invalid, parse_data_uri


def bad(field: str, what: str) -> InvalidRequest:
    """Build the 400 for ``field`` in the wording every codec uses."""
    return invalid(field, what)


def as_map(value: Any, field: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a JSON object."""
    if not isinstance(value, Mapping):
        raise bad(field, "must be an object")
    return value


def pick(body: Mapping[str, Any], *keys: str) -> Any:
    """Return the first present (non-null) key of ``keys``: lowerCamelCase and snake_case alike."""
    for key in keys:
        value = body.get(key)
        if value is not None:
            return value
    return None


def opt_str(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(field, "must be a string")
    return value


def req_str(value: Any, field: str) -> str:
    if value is None:
        raise invalid(field, "field required")
    text = opt_str(value, field)
    assert text is not None
    return text


def opt_int(value: Any, field: str, *, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise bad(field, "must be an integer")
    if minimum is not None and value < minimum:
        raise bad(field, f"must be >= {minimum}")
    return value


def opt_num(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(field, "must be a number")
    return float(value)


def opt_bool(value: Any, field: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad(field, "must be a boolean")
    return value


def opt_list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise bad(field, "must be a list")
    return list(value)


def str_list(value: Any, field: str) -> tuple[str, ...]:
    """Accept one string or an array of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    items = opt_list(value, field)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise bad(f"{field}[{i}]", "must be a string")
    return tuple(items)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """Split ``data:<mime>;base64,<data>`` into (mime, data); None for any other URL."""
    return parse_data_uri(url)


def dumps(value: Any) -> str:
    """Serialise compactly, keeping non-ASCII text as is (the wire form every vendor uses)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads_object(text: str) -> dict[str, Any] | None:
    """Parse JSON text that should hold an object; None when it does not."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
