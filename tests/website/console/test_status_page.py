"""Console status page: the /api/status document, server-rendered in both languages, behind login."""

from __future__ import annotations

import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from .conftest import signup

ROOT = Path(__file__).resolve().parents[3]
PO = ROOT / "translations" / "console" / "zh" / "LC_MESSAGES" / "messages.po"
_ROW = re.compile(r'<tr data-model="([^"]+)" data-status="(\w+)" data-availability="([^"]*)" data-requests="(\d+)" '
                  r'data-p50="([^"]*)" data-p95="([^"]*)">(.*?)</tr>', re.S)


def _call_echo(client, key: str, text: str) -> None:
    r = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                    json={"model": "bytespike-echo", "max_tokens": 20, "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    assert r.get_json()["choices"][0]["message"]["content"] == text


def _rows(html: str) -> dict[str, tuple]:
    return {m[0]: m[1:] for m in _ROW.findall(html)}


def _num(text: str) -> float | None:
    return float(text) if text else None


@pytest.fixture
def traffic(console_app):
    """A signed-up person whose key has made three calls to the demo model."""
    person = signup(console_app, "status@example.com")
    minted = person.post("/keys", {"name": "status"})
    key = re.search(r'id="new-key" class="key">(sk-byts-[\w-]+)<', minted.text).group(1)
    for i in range(3):
        _call_echo(person.client, key, f"status check {i}")
    return person


def test_status_page_needs_login(console_app):
    r = console_app.test_client().get("/en/console/status/")
    assert r.status_code == 302 and "/en/console/login" in r.headers["Location"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_status_page_shows_the_api_status_figures(console_app, traffic, lang):
    traffic.lang = lang
    page = traffic.get("/status/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    doc = console_app.test_client().get("/api/status").get_json()
    html = page.text
    echo = next(m for m in doc["models"] if m["model"] == "bytespike-echo")
    assert echo["requests"] == 3 and echo["availability"] == 1.0 and echo["latency_ms"]["p50"] is not None

    rows = _rows(html)
    assert list(rows) == [m["model"] for m in doc["models"]]
    for m in doc["models"]:
        status, avail, requests, p50, p95, cells = rows[m["model"]]
        assert status == m["status"] and int(requests) == m["requests"] and _num(avail) == m["availability"]
        assert _num(p50) == m["latency_ms"]["p50"] and _num(p95) == m["latency_ms"]["p95"]
        if m["availability"] is not None:
            assert f"{m['availability'] * 100:.2f}%" in cells
        if m["latency_ms"]["p95"] is not None:
            assert f"{m['latency_ms']['p95']:,} ms" in cells
    assert f'id="overall-status" data-status="{doc["status"]}"' in html
    channels = re.findall(r'<tr data-channel="([^"]+)" data-circuit="(\w+)">', html)
    assert channels == [(c["name"], c["circuit"]) for c in doc["channels"]]
    assert ("bytespike-echo", "closed") in channels
    assert f'href="/{lang}/console/status/" aria-current="page"' in html  # the sidebar link, marked current

    text = unescape(html)
    if lang == "zh":
        for heading in ("<h1>服务状态</h1>", "<h2>模型</h2>", "<h2>渠道</h2>", "可用率", "p95 延迟", "所有服务运行正常", "闭合（正常转发）"):
            assert heading in text
        assert "Service status" not in text and "Availability" not in text
    else:
        for heading in ("<h1>Service status</h1>", "<h2>Models</h2>", "<h2>Channels</h2>", "Availability", "All systems operational"):
            assert heading in text


def test_console_catalog_translates_every_console_string(tmp_path):
    pot = tmp_path / "console.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "extract", "-F", "translations/console/babel.cfg", "-k", "_l", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as fh:
        ids = [m.id for m in read_po(fh) if m.id]
    with pot.open("rb") as fh:
        keyed = [(m.context, m.id) for m in read_po(fh) if m.id]
    with PO.open("rb") as fh:
        po = read_po(fh, locale="zh")
    with PO.with_suffix(".mo").open("rb") as fh:
        mo = read_mo(fh)
    assert "Service status" in ids
    assert [(c, i) for c, i in keyed if po.get(i, context=c) is None or not po.get(i, context=c).string] == []
    assert [m.id for m in po if m.id and m.fuzzy] == []
    assert [m.id for m in po if m.id and (mo.get(m.id, context=m.context) is None
                                          or mo.get(m.id, context=m.context).string != m.string)] == []
