"""Language in the URL: ``/<lang>/...`` routes, the Babel locale selector and language switch.

Every site route carries a ``<lang>`` URL part (``/en/pricing/``). The URL
processors registered here take it out of the view arguments and keep it with
the request (views read it with :func:`current_lang`, templates get ``lang``), and
put it back into ``url_for`` calls automatically, so templates and views write
``url_for("pricing.index")`` and stay in the current language.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from flask import Flask, abort, current_app, has_request_context, request, url_for
from flask_babel import Babel, Domain, format_date, refresh

LANGS = ("en", "zh")
DEFAULT_LANG = "en"
# Accept-Language tags that mean Simplified Chinese (and, failing better, Chinese at all).
_ZH_TAGS = ("zh", "zh-cn", "zh-hans", "zh-sg", "zh-hans-cn", "zh-tw", "zh-hk", "zh-hant")
LANG_NAMES = {"en": "English", "zh": "简体中文"}
HTML_LANG = {"en": "en", "zh": "zh-Hans"}
# Blueprints whose pages read the console's catalog (translations/console) over the site's.
CONSOLE_BLUEPRINTS = frozenset({"console", "payments", "oauth_console"})


def init_app(app: Flask) -> None:
    """Bind Flask-Babel and the ``<lang>`` URL processors to ``app``."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANG)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=locale_selector)
    # Two catalogs, never merged into one: the site's pages read translations/ only; the console's
    # pages read translations/console first and the site's for the shared layout (header, footer).
    root = app.root_path
    site = Domain(translation_directories=[f"{root}/translations"])
    console = Domain(translation_directories=[f"{root}/translations", f"{root}/translations/console"])
    app.extensions["bytespike_domains"] = {"site": site, "console": console}
    app.url_value_preprocessor(_pull_lang)
    # Frozen-Flask sends every page through one app context: drop Babel's cached locale per request.
    app.before_request(refresh)
    app.before_request(pick_domain)
    app.url_defaults(_push_lang)
    app.context_processor(_template_globals)


def pick_domain() -> None:
    """Point gettext at the console's catalog on console pages, at the site's everywhere else."""
    domains = current_app.extensions["bytespike_domains"]
    domains["console" if request.blueprint in CONSOLE_BLUEPRINTS else "site"].as_default()


def current_lang() -> str:
    """Return the language of this request: from the URL, else negotiated, else English."""
    if not has_request_context():
        return DEFAULT_LANG
    lang = _state().get("lang")
    if lang in LANGS:
        return lang
    return negotiate(request.headers.get("Accept-Language", ""))


def _state() -> dict[str, Any]:
    # Kept on the request, not on ``g``: an app context (and its ``g``) can outlive many requests.
    return request.environ.setdefault("bytespike.i18n", {})


def negotiate(accept_language: str) -> str:
    """Pick ``en`` or ``zh`` from an Accept-Language header (zh-CN, zh-Hans, zh -> zh)."""
    best_lang, best_q = DEFAULT_LANG, -1.0
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        base = tag.split("-")[0]
        lang = "zh" if (tag in _ZH_TAGS or base == "zh") else ("en" if base == "en" else None)
        # Earlier entries win ties, as browsers list preferences in order.
        score = q - position * 1e-6
        if lang and q > 0 and score > best_q:
            best_lang, best_q = lang, score
    return best_lang


def locale_selector() -> str:
    """Tell Flask-Babel which catalog to use: the URL's language."""
    return current_lang()


def set_lang(lang: str) -> None:
    """Set the language of this request (for pages served outside a ``<lang>`` URL)."""
    _state()["lang"] = lang
    refresh()


def set_twins(urls: dict[str, str]) -> None:
    """Record this page's URL per language, for pages whose twin may be missing."""
    _state()["twins"] = urls


def switch_url(lang: str, keep_query: bool = True) -> str:
    """Return this same page's URL in ``lang`` (the home page when there is no equivalent).

    The query string comes along (``?q=claude`` stays on the other language's page), except
    for canonical and hreflang links, which name the page itself.
    """
    url = _twin_url(lang)
    query = request.query_string.decode("utf-8", "replace") if keep_query and has_request_context() else ""
    return f"{url}?{query}" if query else url


def _twin_url(lang: str) -> str:
    twins = _state().get("twins")
    if twins and lang in twins:
        return twins[lang]
    endpoint = request.endpoint if request else None
    args = dict(request.view_args or {}) if request else {}
    if endpoint and endpoint != "static" and _expects_lang(endpoint):
        args["lang"] = lang
        try:
            return url_for(endpoint, **args)
        except Exception:  # noqa: BLE001 - a page with no twin falls back to that language's home
            pass
    return url_for("marketing.home", lang=lang)


def absolute(path: str) -> str:
    """Make ``path`` absolute against the public URL (for hreflang and canonical links)."""
    base = current_app.config.get("BYTESPIKE_PUBLIC_URL") or request.host_url
    return urljoin(base.rstrip("/") + "/", path.lstrip("/"))


def canonical_url() -> str:
    """Return this page's absolute URL (the language's own; ``/`` points at the English home)."""
    return absolute(switch_url(current_lang(), keep_query=False))


def alternates() -> list[tuple[str, str]]:
    """Return ``(hreflang, absolute url)`` pairs for this page, x-default being English."""
    pairs = [(HTML_LANG[lang], absolute(switch_url(lang, keep_query=False))) for lang in LANGS]
    pairs.append(("x-default", absolute(switch_url(DEFAULT_LANG, keep_query=False))))
    return pairs


def _expects_lang(endpoint: str) -> bool:
    return current_app.url_map.is_endpoint_expecting(endpoint, "lang")


def _pull_lang(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values and "lang" in values:
        lang = values.pop("lang")
        if lang not in LANGS:
            abort(404)
        _state()["lang"] = lang


def _push_lang(endpoint: str, values: dict[str, Any]) -> None:
    if "lang" not in values and _expects_lang(endpoint):
        values["lang"] = current_lang()


def _template_globals() -> dict[str, Any]:
    lang = current_lang()
    return {
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "other_lang": "zh" if lang == "en" else "en",
        "LANGS": LANGS,
        "LANG_NAMES": LANG_NAMES,
        "switch_url": switch_url,
        "alternates": alternates,
        "canonical_url": canonical_url,
        "format_date": format_date,
    }
