"""Read typed fields out of a JSON body, failing with an InvalidRequest that names the field.

Codecs never index a client body directly: a missing key or a wrong type must
become a 400 naming the field, never a KeyError or TypeError. Every helper
takes the value itself and the field's name as the caller wrote it
(``opt_str(tool.get("name"), "tools[0].name")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

from core.errors import InvalidRequest


def invalid(field: str, problem: str) -> InvalidRequest:
    """Build the 400 for one bad field: ``"<field>: <problem>"``."""
    return InvalidRequest(f"{field}: {problem}", param=field)


def as_obj(value: Any, field: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a JSON object, else raise naming ``field``."""
    if not isinstance(value, Mapping):
        raise invalid(field, "must be an object")
    return value


def as_list(value: Any, field: str) -> list[Any]:
    """Return ``value`` if it is a JSON array, else raise naming ``field``."""
    if not isinstance(value, list):
        raise invalid(field, "must be a list")
    return value


def as_str(value: Any, field: str) -> str:
    """Return ``value`` if it is a string, else raise naming ``field``."""
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    return value


def pick(body: Mapping[str, Any], *keys: str) -> Any:
    """Return the first present (non-null) key of ``keys``: lowerCamelCase and snake_case alike."""
    for key in keys:
        value = body.get(key)
        if value is not None:
            return value
    return None


def opt_str(value: Any, field: str) -> str | None:
    """An optional string."""
    return None if value is None else as_str(value, field)


def req_str(value: Any, field: str) -> str:
    """A required string (missing or null: "field required")."""
    if value is None:
        raise invalid(field, "field required")
    return as_str(value, field)


def opt_int(value: Any, field: str, *, minimum: int | None = None) -> int | None:
    """An optional integer, at or above ``minimum`` when one is given."""
    if value is None:
        return None
    # JSON has one number type: 1024.0 is fine, 10.5 and true are not.
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise invalid(field, "must be an integer")
    if minimum is not None and value < minimum:
        raise invalid(field, f"must be >= {minimum}")
    return int(value)


def opt_num(value: Any, field: str) -> float | None:
    """An optional number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(field, "must be a number")
    return float(value)


def opt_bool(value: Any, field: str) -> bool | None:
    """An optional boolean."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(field, "must be a boolean")
    return value


def opt_obj(value: Any, field: str) -> Mapping[str, Any] | None:
    """An optional object."""
    return None if value is None else as_obj(value, field)


def opt_list(value: Any, field: str) -> list[Any]:
    """An optional array: absent or null reads as empty."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise invalid(field, "must be a list")
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
            raise invalid(f"{field}[{i}]", "must be a string")
    return tuple(items)


def extras_of(body: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Return the top-level fields the codec does not model (kept for a same-protocol upstream)."""
    skip = set(known)
    return {k: v for k, v in body.items() if k not in skip}
