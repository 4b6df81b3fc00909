"""The catalog lint (run by ``make lint``) passes, catches what it should, and the two catalogs stay apart."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog

from website import catalog_lint


def test_both_catalogs_pass_the_lint():
    assert catalog_lint.findings() == []


def test_half_width_punctuation_next_to_chinese_is_found_and_fixed():
    assert catalog_lint.fix_punctuation("已有账户?") == "已有账户？"
    assert catalog_lint.fix_punctuation("金额(人民币)") == "金额（人民币）"
    assert catalog_lint.fix_punctuation("登录失败次数过多, 请稍后再试") == "登录失败次数过多，请稍后再试"
    # Placeholders and Latin-only text keep their ASCII.
    assert catalog_lint.fix_punctuation("被拒绝(HTTP %(status)d)。") == "被拒绝（HTTP %(status)d）。"
    assert catalog_lint.fix_punctuation("1 USD = %(rate)s CNY (a, b)") == "1 USD = %(rate)s CNY (a, b)"
    catalog = Catalog(locale="zh")
    catalog.add("Already have an account?", "已有账户?")
    assert catalog_lint.punctuation_findings("t", catalog)


def test_glossary_terms_are_enforced():
    terms = catalog_lint.glossary()
    assert any(t.english == "Global" and t.chinese == "海外" for t in terms)
    catalog = Catalog(locale="zh")
    catalog.add("Global", "全球")
    catalog.add("Live channel", "已上线渠道")
    found = catalog_lint.glossary_findings("t", catalog, terms)
    assert any("全球" in f for f in found) and any("已上线渠道" in f for f in found)


def test_a_msgid_shared_across_catalogs_must_agree():
    site, console = Catalog(locale="zh"), Catalog(locale="zh")
    site.add("Reference", "参考")
    console.add("Reference", "关联单号")
    console.add("Reference", "关联单号", context="ledger")
    found = catalog_lint.domain_findings({"site": site, "console": console})
    assert len(found) == 1 and "Reference" in found[0]


def test_the_makefile_lint_target_runs_the_catalog_lint():
    makefile = (Path(catalog_lint.ROOT) / "Makefile").read_text()
    lint = re.search(r"^lint:.*?(?=^\S)", makefile, re.S | re.M)
    assert lint and "website.catalog_lint" in lint.group(0)


def test_site_pages_read_the_site_catalog_and_console_pages_the_console_one(site):
    docs = site.get("/zh/docs/quickstart/").text
    assert "关联单号" not in docs and "参考" in docs
    home = site.get("/zh/").text
    assert "海外" in home and "全球" not in home
