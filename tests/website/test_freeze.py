"""The frozen build: both languages, fingerprinted assets, cache headers, link check, size budgets."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import make_app
from website.freeze import BrokenLinks, check_links

from .conftest import FIXTURE_CONTENT

HTML_BUDGET = 60_000  # "under 60 KB", read strictly (decimal)
ASSET_BUDGET = 100_000


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """Freeze the shipped site once with the CLI command; yield (build dir, app, command output)."""
    tmp = tmp_path_factory.mktemp("frozen")
    app = make_app(f"sqlite:///{tmp / 'site.db'}")
    out = tmp / "build"
    result = app.test_cli_runner().invoke(args=["freeze", "--out", str(out)])
    assert result.exit_code == 0, result.output
    yield out, app, result.output
    app.extensions["bytespike_db"].dispose()


def shipped(app, lang: str, kind: str) -> list[str]:
    from website import content

    with app.test_request_context():
        return [p.slug for p in content.pages(lang, kind)]


def model_ids(app) -> list[str]:
    return [m["id"] for m in app.test_client().get("/api/pricing").get_json()["models"]]


def test_freeze_writes_every_page_in_both_languages(frozen):
    out, app, output = frozen
    assert re.search(r"froze \d+ URLs", output)
    for lang in ("en", "zh"):
        for path in ("", "pricing/", "models/", "docs/", "blog/"):
            assert (out / lang / path / "index.html").is_file(), f"/{lang}/{path}"
        for model_id in model_ids(app):
            assert (out / lang / "models" / model_id / "index.html").is_file()
        for kind in ("docs", "blog"):
            slugs = shipped(app, lang, kind)
            assert slugs
            for slug in slugs:
                assert (out / lang / kind / slug / "index.html").is_file(), (lang, kind, slug)
        index = json.loads((out / lang / "docs" / "search-index.json").read_text())
        assert index["lang"] == lang
        assert [p["url"] for p in index["pages"]] == [f"/{lang}/docs/{s}/" for s in shipped(app, lang, "docs")]


def test_frozen_sitemap_lists_every_page_once(frozen):
    out, app, _ = frozen
    public = app.config["BYTESPIKE_PUBLIC_URL"].rstrip("/")
    locs = re.findall(r"<loc>([^<]+)</loc>", (out / "sitemap.xml").read_text())
    pages = {public + "/" + str(p.relative_to(out).parent).strip(".") for p in out.rglob("index.html")}
    pages = {u.rstrip("/") + "/" for u in pages}
    assert len(locs) == len(set(locs))
    assert set(locs) == pages - {public + "/"}
    assert f"Sitemap: {public}/sitemap.xml" in (out / "robots.txt").read_text()


def test_freeze_leaves_out_live_pages(frozen):
    out, _, _ = frozen
    for lang in ("en", "zh"):
        assert not (out / lang / "console").exists()
        assert not (out / lang / "playground").exists()
    assert not (out / "api").exists() and not (out / "static").exists()


def test_frozen_root_is_the_english_home(frozen):
    out, _, _ = frozen
    root = (out / "index.html").read_text()
    assert '<html lang="en">' in root
    assert "One key, every frontier model" in root
    assert 'class="lang-switch" href="/zh/"' in root
    zh = (out / "zh" / "index.html").read_text()
    assert '<html lang="zh-Hans">' in zh and "一个密钥" in zh


def test_frozen_assets_are_fingerprinted_and_cached_forever(frozen):
    out, _, _ = frozen
    names = sorted(p.name for p in (out / "assets").iterdir())
    assert any(re.fullmatch(r"app\.[0-9a-f]{10}\.css", n) for n in names)
    assert any(re.fullmatch(r"pricing\.[0-9a-f]{10}\.js", n) for n in names)
    pricing = (out / "en" / "pricing" / "index.html").read_text()
    for ref in re.findall(r'(?:href|src)="(/assets/[^"]+)"', pricing):
        assert (out / ref.lstrip("/")).is_file()
    assert "/static/" not in pricing
    headers = (out / "_headers").read_text()
    assert re.search(r"/assets/\*\n\s+Cache-Control: public, max-age=31536000, immutable", headers)
    assert re.search(r"/en/\*\n\s+Cache-Control: public, max-age=300", headers)
    assert (out / "404.html").is_file()


def test_frozen_links_all_resolve(frozen):
    out, app, _ = frozen
    assert check_links(out, public_url=app.config["BYTESPIKE_PUBLIC_URL"]) == []


def test_link_check_reports_a_broken_link(tmp_path):
    (tmp_path / "en" / "pricing").mkdir(parents=True)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.0123456789.css").write_text("body{}")
    (tmp_path / "en" / "index.html").write_text('<a href="pricing/">ok</a> <a href="/en/pricing/#calc">ok</a>')
    (tmp_path / "en" / "pricing" / "index.html").write_text(
        '<link rel="stylesheet" href="/assets/app.0123456789.css"><a href="https://example.com/x">elsewhere</a>'
        '<a href="http://site.test/en/">own site, absolute</a><a href="/api/pricing">live</a>'
        '<a href="/en/docs/nowhere/">x</a><img src="../../assets/missing.png" alt="">'
        '<a href="http://site.test/zh/">absolute, missing</a><a href="mailto:hello@bytespike.ai">mail</a>')
    broken = check_links(tmp_path, public_url="http://site.test")
    assert broken == [("/en/pricing/", "/en/docs/nowhere/"), ("/en/pricing/", "../../assets/missing.png"),
                      ("/en/pricing/", "/zh/")]


def test_freeze_fails_on_content_linking_nowhere(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, content)
    (content / "en" / "docs" / "bad-link.md").write_text(
        "---\ntitle: Bad\nsection: guides\norder: 1\nsummary: x\n---\n\nSee [this](/en/docs/does-not-exist/).\n")
    app = make_app(f"sqlite:///{tmp_path / 's.db'}", BYTESPIKE_CONTENT_DIR=str(content))
    result = app.test_cli_runner().invoke(args=["freeze", "--out", str(tmp_path / "build")])
    assert result.exit_code != 0
    assert "1 broken internal link(s)" in result.output
    assert "/en/docs/bad-link/: /en/docs/does-not-exist/" in result.output
    app.extensions["bytespike_db"].dispose()


def test_broken_links_error_names_each_page_and_target():
    err = BrokenLinks([("/en/", "/en/nope/"), ("/zh/", "/zh/nope/")])
    assert str(err).splitlines() == ["2 broken internal link(s):", "  /en/: /en/nope/", "  /zh/: /zh/nope/"]


def test_frozen_pages_fit_the_size_budgets(frozen):
    out, _, _ = frozen
    pages = list(out.rglob("*.html"))
    assert pages
    heavy = {str(p.relative_to(out)): p.stat().st_size for p in pages if p.stat().st_size >= HTML_BUDGET}
    assert heavy == {}
    assets = sum(p.stat().st_size for p in (out / "assets").iterdir() if p.suffix in (".css", ".js"))
    assert assets < ASSET_BUDGET


def test_frozen_pages_fetch_nothing_from_other_hosts(frozen):
    out, _, _ = frozen
    for page in out.rglob("*.html"):
        # hreflang alternates name this site's own public URL; nothing else may point off-site.
        html = re.sub(r'<link rel="(?:alternate|canonical)"[^>]*>', "", page.read_text())
        assert not re.search(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', html), page




def test_frozen_pages_have_unique_ids_and_one_h1(frozen):
    out, _, _ = frozen
    for page in out.rglob("*.html"):
        html = page.read_text()
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), (page, sorted({i for i in ids if ids.count(i) > 1}))
        assert html.count("<h1") == 1, page
        assert '<main id="main">' in html and "<header" in html and "<footer" in html
        for img in re.findall(r"<img [^>]*>", html):
            assert " alt=" in img and " width=" in img and " height=" in img, (page, img)
