"""Language in the URL, Accept-Language on /, alternates and the language switch."""

from __future__ import annotations

import re

import pytest

from website.i18n import negotiate

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-Hans", "zh"),
        ("zh", "zh"),
        ("zh-TW", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9", "en"),
        ("", "en"),
        ("en;q=0.5, zh-CN;q=0.9", "zh"),
        ("zh-CN;q=0, en", "en"),
        ("de, zh-Hans;q=0.3", "zh"),
    ],
)
def test_negotiate_picks_language(header, expected):
    assert negotiate(header) == expected


@pytest.mark.parametrize(("header", "target"), [("zh-CN,zh;q=0.9", "/zh/"), ("zh-Hans", "/zh/"),
                                                 ("en-GB", "/en/"), (None, "/en/")])
def test_root_redirects_by_accept_language(site, header, target):
    headers = {"Accept-Language": header} if header else {}
    resp = site.get("/", headers=headers)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(target)
    assert "Accept-Language" in resp.headers.get("Vary", "")


@pytest.mark.parametrize("path", ["/{l}/", "/{l}/pricing/", "/{l}/models/", "/{l}/docs/", "/{l}/blog/"])
def test_pages_declare_html_lang_and_alternates(site, path):
    for lang, html_lang in (("en", "en"), ("zh", "zh-Hans")):
        url = path.format(l=lang)
        html = site.get(url).get_data(as_text=True)
        assert f'<html lang="{html_lang}">' in html
        en, zh = path.format(l="en"), path.format(l="zh")
        assert re.search(rf'hreflang="en" href="[^"]*{re.escape(en)}"', html)
        assert re.search(rf'hreflang="zh-Hans" href="[^"]*{re.escape(zh)}"', html)
        assert re.search(rf'hreflang="x-default" href="[^"]*{re.escape(en)}"', html)
        assert re.search(rf'<link rel="canonical" href="http[^"]*{re.escape(url)}">', html)


@pytest.mark.parametrize("path", ["/{l}/", "/{l}/pricing/", "/{l}/models/", "/{l}/models/bytespike-echo/",
                                  "/{l}/docs/", "/{l}/blog/", "/{l}/playground/"])
def test_language_switch_keeps_the_page(site, path):
    en, zh = path.format(l="en"), path.format(l="zh")
    en_html = site.get(en).get_data(as_text=True)
    zh_html = site.get(zh).get_data(as_text=True)
    assert re.search(rf'class="lang-switch" href="{re.escape(zh)}"', en_html)
    assert re.search(rf'class="lang-switch" href="{re.escape(en)}"', zh_html)


def test_language_switch_on_docs_and_blog_pages(fixture_site):
    html = fixture_site.get("/en/docs/start-here/").get_data(as_text=True)
    assert 'class="lang-switch" href="/zh/docs/start-here/"' in html
    # No Chinese twin: the switch goes to the other language's docs index, never to a 404.
    html = fixture_site.get("/en/docs/concepts-one/").get_data(as_text=True)
    assert 'class="lang-switch" href="/zh/docs/"' in html
    html = fixture_site.get("/zh/blog/newer-post/").get_data(as_text=True)
    assert 'class="lang-switch" href="/en/blog/newer-post/"' in html
    html = fixture_site.get("/en/blog/older-post/").get_data(as_text=True)
    assert 'class="lang-switch" href="/zh/blog/"' in html


def test_unknown_language_is_404(site):
    resp = site.get("/fr/pricing/")
    assert resp.status_code == 404
    assert "ByteSpike" in resp.get_data(as_text=True)


def _nav(html: str) -> str:
    return html[html.index('<nav class="site-nav"'): html.index("</nav>")]


def test_navigation_is_in_the_page_language(site):
    en = _nav(site.get("/en/pricing/").get_data(as_text=True))
    zh = _nav(site.get("/zh/pricing/").get_data(as_text=True))
    assert not CJK.search(en)
    for word in ("首页", "价格", "模型", "文档", "博客", "控制台"):
        assert word in zh
    assert 'href="/zh/console/"' in zh and 'href="/en/console/"' in en


def test_urls_inside_a_page_stay_in_its_language(site):
    html = site.get("/zh/").get_data(as_text=True)
    # Every link but the language switches (marked with hreflang) stays in Chinese.
    tags = [t for t in re.findall(r"<a [^>]*>", html) if "hreflang" not in t]
    internal = [m for t in tags for m in re.findall(r'href="(/(?:en|zh)/[^"]*)"', t)]
    assert internal and all(u.startswith("/zh/") for u in internal)


def test_language_switch_keeps_the_query_string_but_canonical_does_not(site):
    html = site.get("/en/pricing/?q=claude&vendor=anthropic").get_data(as_text=True)
    assert 'class="lang-switch" href="/zh/pricing/?q=claude&amp;vendor=anthropic"' in html
    assert 'rel="canonical" href="http://127.0.0.1:8000/en/pricing/"' in html


def test_chinese_404_is_chinese(site):
    r = site.get("/zh/nope/")
    assert r.status_code == 404 and 'lang="zh-Hans"' in r.text and "This page does not exist" not in r.text
