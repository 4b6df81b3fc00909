"""Docs: ``/<lang>/docs/``, one page per Markdown file, and the client-side search index."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from . import content
from .i18n import LANGS, current_lang, set_twins

bp = Blueprint("docs", __name__, url_prefix="/<lang>/docs")

SECTION_TITLES = {
    "getting-started": _l("Getting started"),
    "concepts": _l("Concepts"),
    "api-reference": _l("API reference"),
    "guides": _l("Guides"),
    "reference": _l("Reference"),
    "self-hosting": _l("Self-hosting"),
}


def sidebar(pages: list[content.Page]) -> list[tuple[str, list[content.Page]]]:
    """Group docs pages by section, keeping the sections' fixed order."""
    groups: dict[str, list[content.Page]] = {}
    for page in pages:
        groups.setdefault(page.section, []).append(page)
    return [(str(SECTION_TITLES[s]), groups[s]) for s in content.SECTIONS if s in groups]


def search(pages: list[content.Page], query: str) -> list[content.Page]:
    """Return the pages containing every term of ``query``, best first (the script's own ranking)."""
    terms = query.lower().split()
    scored = []
    for page in pages:
        fields = (page.title.lower(), " ".join(page.headings).lower(), page.summary.lower(), page.text.lower())
        score = 0
        for term in terms:
            hit = sum(weight for weight, field in zip((10, 5, 3, 1), fields, strict=True) if term in field)
            if not hit:
                break
            score += hit
        else:
            if terms:
                scored.append((-score, page.order, page))
    return [page for _, _, page in sorted(scored, key=lambda t: (t[0], t[1]))]


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """List the docs by section; with ``?q=`` (a search without JavaScript), the matching pages."""
    pages = content.pages(current_lang(), "docs")
    query = request.args.get("q", "").strip()[:100]
    results = search(pages, query) if query else None
    return render_template("docs/index.html", groups=sidebar(pages), query=query, results=results,
                           active_page="docs")


@bp.get("/<slug>/")
def page(slug: str):  # type: ignore[no-untyped-def]
    """Render one docs page with the sidebar and previous/next links."""
    lang = current_lang()
    pages = content.pages(lang, "docs")
    current = next((p for p in pages if p.slug == slug), None)
    if current is None:
        abort(404)
    at = pages.index(current)
    prev_page = pages[at - 1] if at > 0 else None
    next_page = pages[at + 1] if at + 1 < len(pages) else None
    set_twins({
        other: url_for("docs.page", lang=other, slug=slug) if content.page(other, "docs", slug)
        else url_for("docs.index", lang=other)
        for other in LANGS
    })
    return render_template(
        "docs/page.html", page=current, groups=sidebar(pages), prev_page=prev_page,
        next_page=next_page, section_title=SECTION_TITLES[current.section], active_page="docs",
    )


@bp.get("/search-index.json")
def search_index():  # type: ignore[no-untyped-def]
    """Serve the search index the docs search box loads (also written by the freeze)."""
    lang = current_lang()
    entries = [
        {
            "title": p.title,
            "section": str(SECTION_TITLES[p.section]),
            "summary": p.summary,
            "url": url_for("docs.page", slug=p.slug),
            "headings": list(p.headings),
            # The first few thousand characters cover what people search for and keep the file small.
            "text": p.text[:4000],
        }
        for p in content.pages(lang, "docs")
    ]
    response = jsonify({"lang": lang, "pages": entries})
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response
