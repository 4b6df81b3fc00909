"""Markdown pages with front matter from ``content/{lang}/{blog,docs}/*.md``.

Front matter is the block between two ``---`` lines at the top of a file, one
``key: value`` per line. Pages are rendered once per file version (cached by
modification time), so a request costs a dictionary lookup.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import markdown
from flask import current_app
from markupsafe import Markup
from pygments import highlight as _pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from core import catalog
from core.config import ROOT

KINDS = ("blog", "docs")
SECTIONS = ("getting-started", "concepts", "api-reference", "guides", "reference", "self-hosting")
_EXTENSIONS = ["fenced_code", "tables", "toc", "codehilite", "sane_lists"]
_EXTENSION_CONFIGS = {
    "toc": {"permalink": "#", "permalink_class": "headerlink", "permalink_title": ""},
    "codehilite": {"css_class": "codehilite", "guess_lang": False},
}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Page:
    """One rendered Markdown page."""

    slug: str
    lang: str
    kind: str
    meta: dict[str, str]
    html: Markup
    text: str
    headings: tuple[str, ...] = field(default=())
    sections: tuple[tuple[str, str], ...] = field(default=())  # (anchor id, text) of each h2

    @property
    def title(self) -> str:
        return self.meta.get("title") or self.slug.replace("-", " ").capitalize()

    @property
    def summary(self) -> str:
        return self.meta.get("summary", "")

    @property
    def date(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(self.meta.get("date", ""))
        except ValueError:
            return None

    @property
    def author(self) -> str:
        return self.meta.get("author", "")

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.meta.get("tags", "").split(",") if t.strip())

    @property
    def section(self) -> str:
        section = self.meta.get("section", "")
        return section if section in SECTIONS else "reference"

    @property
    def order(self) -> int:
        try:
            return int(self.meta.get("order", "999"))
        except ValueError:
            return 999

    @property
    def reading_minutes(self) -> int:
        # CJK text has no spaces: count its characters at ~400 a minute, words at ~220.
        cjk = sum(1 for ch in self.text if "\u4e00" <= ch <= "\u9fff")
        words = len(self.text.split())
        return max(1, round(cjk / 400 + words / 220))


def split_front_matter(source: str) -> tuple[dict[str, str], str]:
    """Split ``source`` into its front matter (``key: value`` lines) and Markdown body."""
    lines = source.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, source
    meta: dict[str, str] = {}
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return meta, "\n".join(lines[index + 1 :])
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return {}, source


# Line breaks after table tags carry nothing (a table is never inside <pre>): big reference tables shed them.
_TABLE_BREAKS = re.compile(r"(</?(?:table|thead|tbody|tr|th|td)(?: [^>]*)?>)\n")


def render_markdown(body: str) -> tuple[Markup, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Render Markdown to HTML; return it with its heading texts and its h2 anchors."""
    md = markdown.Markdown(extensions=_EXTENSIONS, extension_configs=_EXTENSION_CONFIGS)
    rendered = _TABLE_BREAKS.sub(r"\1", md.convert(body))
    tokens = getattr(md, "toc_tokens", [])
    headings = tuple(_flatten_toc(tokens))
    sections = tuple(_h2(tokens))
    return Markup(rendered), headings, sections


def _h2(tokens: list[dict]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for token in tokens:
        if token.get("level") == 2:
            out.append((token["id"], html.unescape(_TAG.sub("", token.get("name", "")))))
        else:  # a page that starts at h1 keeps its h2s one level down
            out.extend(_h2(token.get("children", [])))
    return out


def _flatten_toc(tokens: list[dict]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        out.append(html.unescape(_TAG.sub("", token.get("name", ""))))
        out.extend(_flatten_toc(token.get("children", [])))
    return out


def plain_text(markup: str) -> str:
    """Strip tags and collapse whitespace (for search and reading time)."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", markup))).strip()


@functools.lru_cache(maxsize=2048)
def highlight(code: str, lang: str) -> Markup:
    """Highlight ``code`` the same way the Markdown pages do."""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        lexer = TextLexer()
    return Markup(_pygments_highlight(code.strip("\n") + "\n", lexer, HtmlFormatter(cssclass="codehilite")))


# Customer-facing pages write the hosted service's address as this placeholder and the model
# count as %MODEL_COUNT%; both are filled in when the page is served (BYTESPIKE_PUBLIC_URL, the card).
PUBLIC_URL_PLACEHOLDER = "https://bytespike.example"
MODEL_COUNT_PLACEHOLDER = "%MODEL_COUNT%"


def fill(markup: str) -> Markup:
    """Put this deployment's public URL and the rate card's model count into a rendered page."""
    text = str(Markup.escape(markup))  # plain text (a summary) is escaped; rendered HTML is kept
    if PUBLIC_URL_PLACEHOLDER in text:
        public = str(current_app.config.get("BYTESPIKE_PUBLIC_URL") or PUBLIC_URL_PLACEHOLDER).rstrip("/")
        text = text.replace(PUBLIC_URL_PLACEHOLDER, public)
    if MODEL_COUNT_PLACEHOLDER in text:
        count = len(catalog.get_card(current_app._get_current_object()).models)  # type: ignore[attr-defined]
        text = text.replace(MODEL_COUNT_PLACEHOLDER, str(count))
    return Markup(text)


def content_root() -> Path:
    """Return the content directory (``BYTESPIKE_CONTENT_DIR`` overrides it, for tests)."""
    return Path(current_app.config.get("BYTESPIKE_CONTENT_DIR") or ROOT / "content")


_cache: dict[tuple[str, float], Page] = {}


def load_page(path: Path, lang: str, kind: str) -> Page:
    """Read and render one Markdown file, reusing the rendering while the file is unchanged."""
    key = (str(path), path.stat().st_mtime)
    page = _cache.get(key)
    if page is None:
        meta, body = split_front_matter(path.read_text(encoding="utf-8"))
        rendered, headings, sections = render_markdown(body)
        page = Page(path.stem, lang, kind, meta, rendered, plain_text(rendered), headings, sections)
        _cache[key] = page
    return page


def pages(lang: str, kind: str) -> list[Page]:
    """Return the pages of one kind: blog newest first, docs by section then order."""
    folder = content_root() / lang / kind
    found = [load_page(p, lang, kind) for p in sorted(folder.glob("*.md"))] if folder.is_dir() else []
    if kind == "blog":
        return sorted(found, key=lambda p: (p.date or dt.date.min, p.slug), reverse=True)
    return sorted(found, key=lambda p: (SECTIONS.index(p.section), p.order, p.slug))


def page(lang: str, kind: str, slug: str) -> Page | None:
    """Return one page by slug, or None."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", slug):
        return None
    path = content_root() / lang / kind / f"{slug}.md"
    return load_page(path, lang, kind) if path.is_file() else None
