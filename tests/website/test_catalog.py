"""The Chinese catalog covers every UI string, with no fuzzy entries, and the .mo is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")


def _extract(tmp_path: Path):
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "extract", "-F", "babel.cfg", "-k", "_l", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as fh:
        return read_po(fh)


def test_catalog_translates_every_ui_string(tmp_path):
    pot = _extract(tmp_path)
    with PO.open("rb") as fh:
        po = read_po(fh, locale="zh")
    ids = [m.id for m in pot if m.id]
    assert len(ids) > 100  # the site's templates and views were found
    missing = [i for i in ids if i not in po or not po[i].string]
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    assert missing == []
    assert fuzzy == []


def test_compiled_catalog_matches_the_po_file():
    with PO.open("rb") as fh:
        po = read_po(fh, locale="zh")
    with MO.open("rb") as fh:
        mo = read_mo(fh)
    for message in po:
        if message.id:
            found = mo.get(message.id, context=message.context)
            assert found is not None and found.string == message.string, message.id


def test_chinese_pages_use_the_catalog(site):
    html = site.get("/zh/pricing/").get_data(as_text=True)
    for text in ("实时渠道", "预估价格", "演示", "费用计算器"):
        assert text in html
    assert "Live channel" not in html and "Cost calculator" not in html
