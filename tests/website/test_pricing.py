"""The pricing page shows exactly the rows of /api/pricing; filters, badges and CNY conversions."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

ROW = re.compile(r'<tr data-id="([^"]+)" data-v="([^"]+)" data-k="([^"]+)" data-s="([^"]+)"([^>]*)>(.*?)</tr>', re.S)
CELL = re.compile(r"<td(?: class=\"p\")?>(.*?)</td>", re.S)
USD = re.compile(r'<span>\$([0-9.,]+)</span><small>¥([0-9.,]+)</small>')
BADGES = {"en": {"live": "Live channel", "scaffold": "Scaffold estimate", "legacy": "Legacy", "demo": "Demo"},
          "zh": {"live": "实时渠道", "scaffold": "预估价格", "legacy": "旧版", "demo": "演示"}}


def page_rows(html: str) -> list[dict]:
    rows = []
    for model_id, vendor, kind, status, attrs, body in ROW.findall(html):
        cells = CELL.findall(body)
        assert len(cells) == 9
        prices = []
        for cell in cells[2:7]:
            match = USD.search(cell)
            # The page writes money by the site's one rule ($3.00, ¥0.72, ¥1,296.00): compare values.
            prices.append((Decimal(match.group(1).replace(",", "")), Decimal(match.group(2).replace(",", "")))
                          if match else None)
        badge = re.search(r'<span class="badge badge-(\w+)">([^<]+)</span>', body)
        link = re.search(r'<a href="([^"]+)">', body).group(1)
        micro = re.search(r'data-m="(\d+) (\d+) (\d+)"', attrs)
        rows.append({"id": model_id, "vendor": vendor, "kind": kind, "status": status, "prices": prices,
                     "badge": badge.groups(), "link": link, "context": cells[7],
                     "micro": tuple(int(x) for x in micro.groups()) if micro else None})
    return rows


def cny(usd: str, rate: str) -> str:
    value = Decimal(usd) * Decimal(rate)
    places = Decimal("0.01") if value >= 1 or value == 0 else Decimal("0.0001")
    return format(value.quantize(places, rounding=ROUND_HALF_UP), "f")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pricing_page_matches_api_row_for_row(site, lang):
    api = site.get("/api/pricing").get_json()
    rows = page_rows(site.get(f"/{lang}/pricing/").get_data(as_text=True))
    assert len(api["models"]) >= 5
    assert [r["id"] for r in rows] == [m["id"] for m in api["models"]]
    for row, model in zip(rows, api["models"], strict=True):
        assert (row["vendor"], row["kind"], row["status"]) == (model["vendor"], model["kind"], model["status"])
        token = [model[k] for k in ("input", "cache_write", "cache_read", "output")]
        assert [p[0] if p else None for p in row["prices"][:4]] == [None if t is None else Decimal(t) for t in token]
        other = (model["per_image"] or model["per_second"] or model.get("per_million_chars")
                 or model.get("per_search"))
        assert (row["prices"][4][0] if row["prices"][4] else None) == (None if other is None else Decimal(other))
        for price in row["prices"]:
            if price:
                assert price[1] == Decimal(cny(str(price[0]), api["cny_per_usd"]))
        assert row["badge"] == (model["status"], BADGES[lang][model["status"]])
        assert row["link"] == f"/{lang}/models/{model['id']}/"
        assert row["context"] == ("{:,}".format(model["context_window"]) if model["context_window"] else "—")


def test_pricing_page_explains_every_badge(site):
    for lang in ("en", "zh"):
        html = site.get(f"/{lang}/pricing/").get_data(as_text=True)
        legend = html[html.index('class="legend"'): html.index('id="rate-filters"')]
        for label in BADGES[lang].values():
            assert label in legend


def test_demo_model_carries_the_demo_badge(site):
    rows = {r["id"]: r for r in page_rows(site.get("/en/pricing/").get_data(as_text=True))}
    assert rows["bytespike-echo"]["badge"] == ("demo", "Demo")


def test_pricing_filters_work_without_javascript(site):
    api = site.get("/api/pricing").get_json()["models"]
    vendor = next(m["vendor"] for m in api if m["vendor"] != "bytespike")
    rows = page_rows(site.get(f"/en/pricing/?vendor={vendor}").get_data(as_text=True))
    assert rows and {r["vendor"] for r in rows} == {vendor}
    assert len(rows) == sum(1 for m in api if m["vendor"] == vendor)
    rows = page_rows(site.get("/en/pricing/?kind=chat&q=echo").get_data(as_text=True))
    assert [r["id"] for r in rows] == ["bytespike-echo"]
    html = site.get("/en/pricing/?q=no-such-model-anywhere").get_data(as_text=True)
    assert page_rows(html) == [] and "No model matches these filters." in html


def test_cny_rate_comes_from_config(tmp_path):
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'r.db'}", BYTESPIKE_CNY_PER_USD="7.00")
    html = app.test_client().get("/en/pricing/").get_data(as_text=True)
    assert "1 USD = 7.00 CNY" in html
    for row in page_rows(html):
        for price in row["prices"]:
            if price:
                assert price[1] == Decimal(cny(str(price[0]), "7.00"))
    app.extensions["bytespike_db"].dispose()


def test_calculator_prices_are_exact_micro_dollars(site):
    api = {m["id"]: m for m in site.get("/api/pricing").get_json()["models"]}
    rows = page_rows(site.get("/en/pricing/").get_data(as_text=True))
    priced = [r for r in rows if r["micro"]]
    assert priced
    for row in rows:
        model = api[row["id"]]
        if model["input"] is None and model["output"] is None:
            assert row["micro"] is None
            continue
        p_in, p_out, p_cr = row["micro"]
        assert p_in == int(Decimal(model["input"] or "0") * 1_000_000)
        assert p_out == int(Decimal(model["output"] or "0") * 1_000_000)
        cache_read = model["cache_read"] if model["cache_read"] is not None else model["input"]
        assert p_cr == int(Decimal(cache_read or "0") * 1_000_000)


def test_model_library_lists_every_model(site):
    api = site.get("/api/pricing").get_json()["models"]
    for lang in ("en", "zh"):
        html = site.get(f"/{lang}/models/").get_data(as_text=True)
        for model in api:
            assert f'href="/{lang}/models/{model["id"]}/"' in html


def test_model_page_shows_facts_and_a_call_per_protocol(site):
    api = {m["id"]: m for m in site.get("/api/pricing").get_json()["models"]}
    chat = next(m for m in api.values() if m["kind"] == "chat" and m["status"] != "demo")
    html = site.get(f"/en/models/{chat['id']}/").get_data(as_text=True)
    for path in ("/v1/messages", "/v1/chat/completions", "/v1/responses", f"/v1beta/models/{chat['id']}:generateContent"):
        assert path in html
    assert f"${Decimal(chat['input']):,.2f}" in html and f"${Decimal(chat['output']):,.2f}" in html
    assert "{:,}".format(chat["context_window"]) in html
    for alias in chat.get("aliases", []):
        assert alias in html
    assert 'class="codehilite"' in html


def test_unknown_model_page_is_404(site):
    assert site.get("/en/models/not-a-model/").status_code == 404


def test_model_cards_never_show_a_missing_price(site):
    for lang in ("en", "zh"):
        html = site.get(f"/{lang}/models/").get_data(as_text=True)
        assert "None" not in html
    api = site.get("/api/pricing").get_json()["models"]
    for model in api:
        assert "None" not in site.get(f"/en/models/{model['id']}/").get_data(as_text=True), model["id"]


@pytest.mark.parametrize(("tokens", "text"), [(1_048_576, "1M"), (2_000_000, "2M"), (1_500_000, "1.5M"),
                                               (200_000, "200K"), (131_072, "131K"), (512, "512")])
def test_compact_tokens(tokens, text):
    from website.pricing import compact_tokens

    assert compact_tokens(tokens) == text


def test_to_cny_rounds_half_up_at_the_right_place(site_app):
    from website.pricing import to_cny

    with site_app.test_request_context():
        assert to_cny("3.00") == "21.60"
        assert to_cny("0.003") == "0.0216"
        assert to_cny("0.00") == "0.00"
        assert to_cny("0.125") == "0.9000"
        assert to_cny(None) is None


def test_every_capability_and_protocol_on_the_card_has_a_label(site):
    from website.pricing import CAPABILITY_LABELS, PROTOCOL_LABELS

    api = site.get("/api/pricing").get_json()["models"]
    assert {c for m in api for c in m["capabilities"]} <= set(CAPABILITY_LABELS)
    assert {p for m in api for p in m["protocols"]} <= set(PROTOCOL_LABELS)
