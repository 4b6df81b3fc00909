"""The frozen build: both languages, fingerprinted assets, cache headers, link check, size budgets."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import make_app
from website.freeze import BrokenLinks, check_links, freeze_site

from .conftest import FIXTURE_CONTENT

HTML_BUDGET = 60 * 1024
ASSET_BUDGET = 100 * 1024


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """Freeze the site once, with the fixture blog and docs; yield (build dir, app, stats)."""
    tmp = tmp_path_factory.mktemp("frozen")
    app = make_app(f"sqlite:///{tmp / 'site.db'}", BYTESPIKE_CONTENT_DIR=str(FIXTURE_CONTENT))
    out = tmp / "build"
    stats = freeze_site(app, out)
    yield out, app, stats
    app.extensions["bytespike_db"].dispose()


def model_ids(app) -> list[str]:
    return [m["id"] for m in app.test_client().get("/api/pricing").get_json()["models"]]


def test_freeze_writes_every_page_in_both_languages(frozen):
    out, app, stats = frozen
    for lang in ("en", "zh"):
        for path in ("", "pricing/", "models/", "docs/", "docs/start-here/", "blog/", "blog/newer-post/"):
            assert (out / lang / path / "index.html").is_file(), f"/{lang}/{path}"
        for model_id in model_ids(app):
            assert (out / lang / "models" / model_id / "index.html").is_file()
        index = json.loads((out / lang / "docs" / "search-index.json").read_text())
        assert index["lang"] == lang
        assert all(p["url"].startswith(f"/{lang}/docs/") for p in index["pages"])
    assert (out / "en" / "docs" / "concepts-one" / "index.html").is_file()
    assert (out / "en" / "blog" / "older-post" / "index.html").is_file()
    assert stats["pages"] > 2 * len(model_ids(app))


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


def test_link_check_reports_a_broken_link(frozen, tmp_path):
    out, _, _ = frozen
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    page = copy / "en" / "pricing" / "index.html"
    page.write_text(page.read_text().replace("</main>", '<a href="/en/docs/nowhere/">x</a>'
                                                       '<img src="../../assets/missing.png" alt=""></main>'))
    broken = check_links(copy)
    assert ("/en/pricing/", "/en/docs/nowhere/") in broken
    assert ("/en/pricing/", "../../assets/missing.png") in broken
    assert len(broken) == 2


def test_freeze_fails_on_content_linking_nowhere(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, content)
    (content / "en" / "docs" / "bad-link.md").write_text(
        "---\ntitle: Bad\nsection: guides\norder: 1\nsummary: x\n---\n\nSee [this](/en/docs/does-not-exist/).\n")
    app = make_app(f"sqlite:///{tmp_path / 's.db'}", BYTESPIKE_CONTENT_DIR=str(content))
    with pytest.raises(BrokenLinks) as info:
        freeze_site(app, tmp_path / "build")
    assert info.value.broken == [("/en/docs/bad-link/", "/en/docs/does-not-exist/")]
    result = app.test_cli_runner().invoke(args=["freeze", "--out", str(tmp_path / "build2")])
    assert result.exit_code != 0 and "/en/docs/does-not-exist/" in result.output
    app.extensions["bytespike_db"].dispose()


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
        html = re.sub(r'<link rel="alternate"[^>]*>', "", page.read_text())
        assert not re.search(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', html), page


def test_freeze_command_writes_the_shipped_site(site_app, tmp_path):
    """The real content, frozen by the CLI command, in both languages, with no broken link."""
    result = site_app.test_cli_runner().invoke(args=["freeze", "--out", str(tmp_path / "build")])
    assert result.exit_code == 0, result.output
    assert "froze" in result.output
    out = Path(tmp_path / "build")
    for lang in ("en", "zh"):
        assert list((out / lang / "docs").glob("*/index.html"))
        assert list((out / lang / "blog").glob("*/index.html"))
    for page in out.rglob("*.html"):
        assert page.stat().st_size < HTML_BUDGET, page
