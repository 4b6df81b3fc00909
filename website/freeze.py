"""Fingerprinted assets and the frozen build: ``flask --app app freeze [--out DIR]``.

Assets are served as ``/assets/<name>.<hash>.<ext>``: the hash changes with the
content, so the CDN may cache them forever while HTML stays short-lived.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from flask import Flask, abort, current_app, send_from_directory, url_for

_FINGERPRINT = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{10})(?P<ext>\.[A-Za-z0-9]+)$")
_hash_cache: dict[tuple[str, float], str] = {}


def init_app(app: Flask) -> None:
    """Register the asset route, ``asset_url`` for templates and the ``freeze`` command."""
    app.add_url_rule("/assets/<path:filename>", "assets", _serve_asset)
    app.jinja_env.globals["asset_url"] = asset_url


def asset_url(filename: str) -> str:
    """Return the fingerprinted URL of ``static/<filename>``."""
    path = Path(current_app.static_folder or "static") / filename
    stem, dot, ext = filename.rpartition(".")
    return url_for("assets", filename=f"{stem}.{_digest(path)}{dot}{ext}")


def _digest(path: Path) -> str:
    key = (str(path), path.stat().st_mtime)
    if key not in _hash_cache:
        _hash_cache[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return _hash_cache[key]


def _serve_asset(filename: str):  # type: ignore[no-untyped-def]
    match = _FINGERPRINT.match(filename)
    if not match:
        abort(404)
    real = match["stem"] + match["ext"]
    path = Path(current_app.static_folder or "static") / real
    if not path.is_file() or _digest(path) != match["hash"]:
        abort(404)
    response = send_from_directory(current_app.static_folder or "static", real, max_age=31536000)
    response.cache_control.immutable = True
    response.cache_control.public = True
    return response
