"""Blog: ``/<lang>/blog/`` and one page per post."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, url_for

from . import content
from .i18n import LANGS, current_lang, set_twins

bp = Blueprint("blog", __name__, url_prefix="/<lang>/blog")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """List posts, newest first."""
    return render_template("blog/index.html", posts=content.pages(current_lang(), "blog"), active_page="blog")


@bp.get("/<slug>/")
def post(slug: str):  # type: ignore[no-untyped-def]
    """Render one post."""
    lang = current_lang()
    current = content.page(lang, "blog", slug)
    if current is None:
        abort(404)
    posts = content.pages(lang, "blog")
    more = [p for p in posts if p.slug != slug][:3]
    set_twins({
        other: url_for("blog.post", lang=other, slug=slug) if content.page(other, "blog", slug)
        else url_for("blog.index", lang=other)
        for other in LANGS
    })
    return render_template("blog/post.html", post=current, more=more, active_page="blog")
