"""Fingerprinted assets and the frozen build: ``flask --app app freeze [--out DIR]``.

Assets are served as ``/assets/<name>.<hash>.<ext>``: the hash changes with the
content, so the CDN may cache them forever while HTML stays short-lived.
"""

from __future__ import annotations

import hashlib
import html
import re
import warnings
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urljoin, urlsplit

import click
from flask import Flask, abort, current_app, render_template, send_from_directory, url_for
from flask.cli import with_appcontext

from core import catalog

from . import content
from .i18n import LANGS, set_lang

_FINGERPRINT = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{10})(?P<ext>\.[A-Za-z0-9]+)$")
_hash_cache: dict[tuple[str, float], str] = {}


def init_app(app: Flask) -> None:
    """Register the asset route, ``asset_url`` for templates and the ``freeze`` command."""
    app.add_url_rule("/assets/<path:filename>", "assets", _serve_asset)
    app.jinja_env.globals["asset_url"] = asset_url
    app.cli.add_command(freeze_command)


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


# --- the frozen build ----------------------------------------------------------------------

# Served live by the origin behind the CDN, never frozen: links to them are not checked.
LIVE_PREFIXES = ("/api/", "/v1/", "/v1beta/", "/payments/", "/en/console/", "/zh/console/",
                 "/en/playground/", "/zh/playground/", "/healthz", "/readyz")
HEADERS_FILE = """\
# Cache policy for the CDN (Netlify / Cloudflare Pages `_headers` syntax).
# HTML and the docs search index change with every deploy: cache briefly, then revalidate.
# /assets/* names carry a content hash: they never change, so cache them for a year.
# /api/*, /v1/*, /v1beta/*, /payments/*, /{lang}/console/ and /{lang}/playground/ are
# proxied to the origin and set their own headers.
/
  Cache-Control: public, max-age=300, must-revalidate
/en/*
  Cache-Control: public, max-age=300, must-revalidate
/zh/*
  Cache-Control: public, max-age=300, must-revalidate
/sitemap.xml
  Cache-Control: public, max-age=3600
/robots.txt
  Cache-Control: public, max-age=3600
/assets/*
  Cache-Control: public, max-age=31536000, immutable
/*
  X-Content-Type-Options: nosniff
  Referrer-Policy: strict-origin-when-cross-origin
"""


def page_urls(app: Flask) -> Iterator[str]:
    """Yield every public HTML page of the site, in both languages."""
    model_ids = [m.id for m in catalog.get_card(app).models]
    for lang in LANGS:
        yield url_for("marketing.home", lang=lang)
        yield url_for("pricing.index", lang=lang)
        yield url_for("pricing.models", lang=lang)
        for model_id in model_ids:
            yield url_for("pricing.model", lang=lang, model_id=model_id)
        yield url_for("docs.index", lang=lang)
        for page in content.pages(lang, "docs"):
            yield url_for("docs.page", lang=lang, slug=page.slug)
        yield url_for("blog.index", lang=lang)
        for post in content.pages(lang, "blog"):
            yield url_for("blog.post", lang=lang, slug=post.slug)


def frozen_urls(app: Flask) -> Iterator[str]:
    """Yield every URL of the static site: pages, search indexes, sitemap, every asset."""
    yield "/"
    yield from page_urls(app)
    for lang in LANGS:
        yield url_for("docs.search_index", lang=lang)
    yield url_for("marketing.sitemap")
    yield url_for("marketing.robots")
    static = Path(app.static_folder or "static")
    for path in sorted(static.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            yield asset_url(path.relative_to(static).as_posix())


def freeze_site(app: Flask, out: Path) -> dict[str, int]:
    """Write the static site into ``out``; raise ``BrokenLinks`` if any internal link dangles."""
    from flask_frozen import Freezer, MissingURLGeneratorWarning

    out = out.resolve()
    saved = {k: app.config.get(k) for k in ("BYTESPIKE_FREEZING", "FREEZER_DESTINATION")}
    app.config.update(BYTESPIKE_FREEZING=True, FREEZER_DESTINATION=str(out), FREEZER_REMOVE_EXTRA_FILES=True)
    try:
        freezer = Freezer(app, with_static_files=False, with_no_argument_rules=False, log_url_for=False)
        freezer.register_generator(lambda: frozen_urls(app))
        with warnings.catch_warnings():
            # Console, playground and API endpoints are left out on purpose.
            warnings.simplefilter("ignore", MissingURLGeneratorWarning)
            urls = list(freezer.freeze_yield())
        with app.test_request_context("/en/404"):
            set_lang("en")
            (out / "404.html").write_text(render_template("404.html"), encoding="utf-8")
    finally:
        app.config.update(saved)
    (out / "_headers").write_text(HEADERS_FILE, encoding="utf-8")
    public = app.config.get("BYTESPIKE_PUBLIC_URL") or ""
    broken = check_links(out, public_url=public)
    if broken:
        raise BrokenLinks(broken)
    return {"pages": len(urls), "files": sum(1 for p in out.rglob("*") if p.is_file())}


class BrokenLinks(Exception):
    """The frozen build links to paths it does not contain."""

    def __init__(self, broken: list[tuple[str, str]]) -> None:
        self.broken = broken
        lines = "\n".join(f"  {page}: {target}" for page, target in broken[:50])
        super().__init__(f"{len(broken)} broken internal link(s):\n{lines}")


# Every tag the site writes quotes its attributes with double quotes (Jinja and Markdown alike).
_LINK = re.compile(r'\s(?:href|src)="([^"]*)"')


def _page_url(out: Path, html_file: Path) -> str:
    rel = html_file.relative_to(out).as_posix()
    if rel.endswith("index.html"):
        return "/" + rel[: -len("index.html")]
    return "/" + rel


def check_links(out: Path, *, public_url: str = "") -> list[tuple[str, str]]:
    """Return ``(page, link)`` for every internal href/src in ``out`` that names no written file."""
    public = public_url.rstrip("/")
    broken = []
    for html_file in sorted(out.rglob("*.html")):
        page = _page_url(out, html_file)
        for match in _LINK.finditer(html_file.read_text(encoding="utf-8")):
            link = html.unescape(match.group(1))
            if public and link.startswith(public + "/"):
                link = link[len(public):]
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                continue  # another site, mailto:, data: ...
            path = unquote(urlsplit(urljoin(page, link)).path)
            if not path or path.startswith(LIVE_PREFIXES):
                continue
            file = out / path.lstrip("/")
            if path.endswith("/"):
                file = file / "index.html"
            if not file.is_file():
                broken.append((page, link))
    return broken


@click.command("freeze")
@with_appcontext
@click.option("--out", "out", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write the static site into (its other files are removed).")
def freeze_command(out: str) -> None:
    """Freeze the public site (both languages) for the CDN and check every internal link."""
    from flask import current_app as app

    try:
        stats = freeze_site(app._get_current_object(), Path(out))  # type: ignore[attr-defined]
    except BrokenLinks as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"froze {stats['pages']} URLs ({stats['files']} files) into {Path(out).resolve()}")
