"""The marketing home and ``/`` language negotiation."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from core import catalog

from . import content, i18n
from .examples import home_examples
from .freeze import page_urls
from .pricing import rows, vendor_name

bp = Blueprint("marketing", __name__)

# Preset line-ups by vendor, used when the card names no preset models.
PRESET_VENDORS = {
    "global": ("anthropic", "openai", "google", "deepseek"),
    "china": ("deepseek", "bytedance", "zhipu", "moonshot", "minimax"),
}


@bp.get("/")
def root():  # type: ignore[no-untyped-def]
    """Send visitors to their language's home; a frozen build serves the English home here."""
    if current_app.config.get("BYTESPIKE_FREEZING"):
        i18n.set_lang("en")
        return home_page()
    lang = i18n.negotiate(request.headers.get("Accept-Language", ""))
    response = redirect(url_for("marketing.home", lang=lang), code=302)
    response.vary.add("Accept-Language")
    return response


@bp.get("/sitemap.xml")
def sitemap():  # type: ignore[no-untyped-def]
    """List every public page for search engines."""
    urls = [i18n.absolute(u) for u in page_urls(current_app._get_current_object())]  # type: ignore[attr-defined]
    body = render_template("sitemap.xml", urls=urls)
    return current_app.response_class(body, mimetype="application/xml")


@bp.get("/robots.txt")
def robots():  # type: ignore[no-untyped-def]
    """Allow the public pages; point at the sitemap; keep crawlers out of the console and API."""
    lines = ["User-agent: *", "Disallow: /api/", "Disallow: /v1/", "Disallow: /en/console/",
             "Disallow: /zh/console/", "", f"Sitemap: {i18n.absolute(url_for('marketing.sitemap'))}", ""]
    return current_app.response_class("\n".join(lines), mimetype="text/plain")


@bp.get("/<lang>/")
def home():  # type: ignore[no-untyped-def]
    """Render the marketing home in the URL's language."""
    return home_page()


def presets(all_rows: list) -> dict[str, list]:
    """Return each preset's rows: the card's own preset lists, else its vendors' chat models."""
    card = catalog.get_card(current_app._get_current_object())  # type: ignore[attr-defined]
    by_id = {r.id: r for r in all_rows}
    out = {}
    for name, vendors in PRESET_VENDORS.items():
        listed = [by_id[m] for m in card.preset_models(name) if m in by_id]
        listed = listed or [r for r in all_rows if r.vendor in vendors]
        # The home page shows the chat line-up; the model library has the rest.
        out[name] = [r for r in listed if r.kind == "chat" and r.status != "demo"]
    return out


def home_page() -> str:
    """Render the home page in the request's language."""
    all_rows = rows()
    vendors: dict[str, list] = {}
    for row in all_rows:
        if row.status != "demo":
            vendors.setdefault(row.vendor, []).append(row)
    base = (current_app.config.get("BYTESPIKE_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    quickstart = (url_for("docs.page", slug="quickstart") if content.page(i18n.current_lang(), "docs", "quickstart")
                  else url_for("docs.index"))
    return render_template(
        "home.html", quickstart_url=quickstart, active_page="home", examples=home_examples("claude-sonnet-4-6", base),
        vendors=sorted(vendors.items(), key=lambda kv: -len(kv[1])), vendor_name=vendor_name,
        model_count=len(all_rows), presets=presets(all_rows),
    )
