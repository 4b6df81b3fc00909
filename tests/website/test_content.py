"""Markdown pages: front matter, rendering, docs sidebar and pager, search index, blog order."""

from __future__ import annotations

import datetime as dt
import re

from website.content import split_front_matter


def test_front_matter_split_reads_key_values():
    meta, body = split_front_matter("---\ntitle: Hello: world\norder: 3\ntags: a, b\n---\n\n# Body\n")
    assert meta == {"title": "Hello: world", "order": "3", "tags": "a, b"}
    assert body.strip() == "# Body"


def test_front_matter_absent_or_unclosed_keeps_the_text():
    assert split_front_matter("# Just text\n") == ({}, "# Just text\n")
    assert split_front_matter("---\ntitle: x\nno end\n")[0] == {}


def test_docs_page_renders_markdown_with_anchors_and_highlighting(fixture_site):
    html = fixture_site.get("/en/docs/start-here/").get_data(as_text=True)
    assert '<h2 id="install">Install<a class="headerlink" href="#install"' in html
    assert '<div class="codehilite"><pre>' in html and '<span class="nb">print</span>' in html
    assert "<table>" in html and "<th>key</th>" in html
    assert '<a href="/en/pricing/">link to pricing</a>' in html
    assert "<title>Start here · ByteSpike</title>" in html


def test_docs_sidebar_groups_by_section_in_order(fixture_site):
    html = fixture_site.get("/en/docs/concepts-one/").get_data(as_text=True)
    side = html[html.index('<aside class="docs-side"'): html.index("</aside>")]
    assert side.index("Getting started") < side.index("Start here") < side.index("Concepts")
    assert side.index("Concepts") < side.index("Credits explained")
    assert 'href="/en/docs/concepts-one/" aria-current="page"' in side
    zh = fixture_site.get("/zh/docs/start-here/").get_data(as_text=True)
    assert "快速上手" in zh[zh.index('<aside class="docs-side"'): zh.index("</aside>")]


def test_docs_pager_links_previous_and_next(fixture_site):
    first = fixture_site.get("/en/docs/start-here/").get_data(as_text=True)
    assert 'rel="next"' in first and 'href="/en/docs/concepts-one/" rel="next"' in first
    assert 'rel="prev"' not in first
    second = fixture_site.get("/en/docs/concepts-one/").get_data(as_text=True)
    assert 'href="/en/docs/start-here/" rel="prev"' in second and 'rel="next"' not in second


def test_docs_search_index_lists_each_page_in_its_language(fixture_site):
    data = fixture_site.get("/en/docs/search-index.json").get_json()
    assert data["lang"] == "en"
    by_url = {p["url"]: p for p in data["pages"]}
    assert set(by_url) == {"/en/docs/start-here/", "/en/docs/concepts-one/"}
    start = by_url["/en/docs/start-here/"]
    assert start["title"] == "Start here" and start["section"] == "Getting started"
    assert start["headings"] == ["Install", "Configure"]
    assert "Intro paragraph" in start["text"] and "<" not in start["text"]
    zh = fixture_site.get("/zh/docs/search-index.json").get_json()
    assert [p["url"] for p in zh["pages"]] == ["/zh/docs/start-here/"]
    assert zh["pages"][0]["section"] == "快速上手"


def test_unknown_docs_and_blog_pages_are_404(fixture_site):
    assert fixture_site.get("/en/docs/nope/").status_code == 404
    assert fixture_site.get("/en/blog/nope/").status_code == 404
    assert fixture_site.get("/en/docs/..%2Fsecret/").status_code == 404


def test_blog_index_lists_newest_first_with_dates(fixture_site):
    html = fixture_site.get("/en/blog/").get_data(as_text=True)
    assert html.index("A newer post") < html.index("An older post")
    assert '<time datetime="2026-03-10">March 10, 2026</time>' in html
    zh = fixture_site.get("/zh/blog/").get_data(as_text=True)
    assert '<time datetime="2026-03-10">2026年3月10日</time>' in zh
    assert "一篇较新的文章" in zh and "An older post" not in zh


def test_blog_post_shows_meta_tags_and_more_posts(fixture_site):
    html = fixture_site.get("/en/blog/newer-post/").get_data(as_text=True)
    assert "<h1>A newer post</h1>" in html
    assert "The ByteSpike team" in html and "1 min read" in html
    assert '<li class="chip">protocols</li>' in html
    assert 'href="/en/blog/older-post/"' in html  # "more from the blog"
    assert '<span class="nb">curl</span>' in html or "curl" in html


def test_reading_time_counts_chinese_characters(fixture_app):
    from website.content import Page

    page = Page("x", "zh", "blog", {}, "", "字" * 1200)
    assert page.reading_minutes == 3
    assert Page("x", "en", "blog", {"date": "2026-02-01"}, "", "word " * 440).reading_minutes == 2
    assert Page("x", "en", "blog", {"date": "2026-02-01"}, "", "").date == dt.date(2026, 2, 1)


def test_shipped_docs_have_a_chinese_twin_for_every_english_page(site_app):
    from website import content

    with site_app.test_request_context():
        for kind in ("docs", "blog"):
            en = {p.slug for p in content.pages("en", kind)}
            zh = {p.slug for p in content.pages("zh", kind)}
            assert en and en == zh, (kind, sorted(en ^ zh))


def test_docs_search_works_without_javascript(fixture_site):
    html = fixture_site.get("/en/docs/?q=credit").get_data(as_text=True)
    results = html[html.index('id="results"'): html.index("</section>")]
    assert 'href="/en/docs/concepts-one/"' in results and "start-here" not in results
    assert 'value="credit"' in html
    html = fixture_site.get("/en/docs/?q=zzzz-nothing").get_data(as_text=True)
    assert "No pages match." in html
    zh = fixture_site.get("/zh/docs/?q=安装").get_data(as_text=True)
    assert 'href="/zh/docs/start-here/"' in zh[zh.index('id="results"'):]


def test_long_docs_pages_list_their_sections(fixture_site, site_app):
    from website import content

    short = fixture_site.get("/en/docs/start-here/").get_data(as_text=True)
    assert 'class="on-page"' not in short  # two sections: no list needed
    with site_app.test_request_context():
        long_page = next(p for p in content.pages("en", "docs") if len(p.sections) >= 3)
    html = site_app.test_client().get(f"/en/docs/{long_page.slug}/").get_data(as_text=True)
    nav = html[html.index('class="on-page"'):]
    anchors = re.findall(r'<a href="#([^"]+)">', nav[: nav.index("</nav>")])
    assert len(anchors) >= 3
    for anchor in anchors:
        assert f'<h2 id="{anchor}">' in html
