"""The one resolver: card ids exactly, channel-listed ids as themselves, unpriced unknown ids refused, reloads."""

from __future__ import annotations

import logging
import os
from decimal import Decimal

import pytest

from core import catalog
from core.channels import ChannelFileError, parse


def chan(models: str, extra: str = "", name: str = "up") -> str:
    return (f'[[channels]]\nname = "{name}"\nprotocol = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
            f'api_keys = ["sk-secret-key"]\nmodels = {models}\n{extra}')


def build(tmp_path, text: str) -> catalog.Catalog:
    path = tmp_path / "channels.toml"
    path.write_text(text)
    return catalog.load(str(path))


@pytest.mark.parametrize(("old", "new"), [
    ("gpt-4o", "gpt-5-4"), ("gpt-4o-mini", "gpt-5-4-mini"), ("gpt-4-1", "gpt-5-4"), ("gpt-5", "gpt-5-4"),
    ("gemini-2-5-pro", "gemini-3-1-pro"), ("claude-opus-4-1", "claude-opus-4-8"),
    ("claude-3-7-sonnet", "claude-sonnet-4-6"), ("o4-mini", "gpt-5-mini"),
])
def test_catalog_superseded_models_are_their_own_legacy_rows(old, new):
    card = catalog.build([]).card
    row, newer = card.resolve(old), card.resolve(new)
    assert row.id == old and row.status == "legacy" and row.source.startswith("https://")
    assert newer.id == new and row.display_name != newer.display_name and row.input is not None


def test_catalog_aliases_are_spellings_or_dated_retirements():
    card = catalog.build([]).card
    assert card.resolve("deepseek-chat").id == "deepseek-v4-flash"
    assert card.resolve("deepseek-reasoner").id == "deepseek-v4-pro"
    assert dict(card.get("deepseek-v4-flash").retired) == {"deepseek-chat": "2026-07-24"}
    assert card.resolve("anthropic/claude-sonnet-4-6").id == "claude-sonnet-4-6"
    for m in card.models:  # no alias names another row's id
        for alias in m.aliases:
            assert card.get(alias) is None, (m.id, alias)


def test_catalog_old_and_new_ids_side_by_side(tmp_path):
    text = chan('["gpt-4o", "gpt-5-4"]', '[channels.prices."gpt-4o"]\ninput = "2.00"\noutput = "8.00"\n')
    cat = build(tmp_path, text)
    assert cat.channels[0].models == ("gpt-4o", "gpt-5-4")
    old, new = cat.resolve("gpt-4o"), cat.resolve("gpt-5-4")
    assert (old.id, old.status, old.input, old.output) == ("gpt-4o", "live", Decimal("2.00"), Decimal("8.00"))
    assert (new.id, new.status, new.input, new.output) == ("gpt-5-4", "scaffold", Decimal("2.50"), Decimal("15.00"))


def test_catalog_spelling_is_the_card_id_and_the_listed_name_goes_upstream(tmp_path):
    cat = build(tmp_path, chan('["GPT-5.4"]', '[channels.prices."GPT-5.4"]\ninput = "2.00"\noutput = "12.00"\n'))
    ch = cat.channels[0]
    assert ch.models == ("gpt-5-4",) and ch.upstream_model("gpt-5-4") == "GPT-5.4"
    assert cat.resolve("gpt-5.4").status == "live" and cat.resolve("gpt-5-4").input == Decimal("2.00")


def test_catalog_listed_retired_name_or_snapshot_is_served_as_itself(tmp_path):
    cat = build(tmp_path, chan('["deepseek-reasoner", "claude-sonnet-4-5-20250929"]'))
    assert cat.channels[0].models == ("deepseek-reasoner", "claude-sonnet-4-5-20250929")
    r = cat.resolve("deepseek-reasoner")
    assert r.id == "deepseek-reasoner" and r.input == cat.resolve("deepseek-v4-pro").input
    assert cat.resolve("claude-sonnet-4-5-20250929").id == "claude-sonnet-4-5-20250929"
    assert cat.resolve("claude-sonnet-4-5").id == "claude-sonnet-4-5"  # the card row stays as it was


def test_catalog_unknown_unpriced_id_names_file_line_and_id(tmp_path):
    text = chan('[\n  "gpt-5-4",\n  "house-model",\n]')
    with pytest.raises(ChannelFileError) as info:
        build(tmp_path, text)
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'channels.toml'}:8: channels[0].models: model 'house-model'"), msg
    assert "secret" not in msg
    ok = build(tmp_path, text + '[channels.prices."house-model"]\ninput = "0.10"\noutput = "0.20"\n')
    assert ok.resolve("house-model").status == "live"


def test_catalog_price_for_an_unlisted_model_is_refused(tmp_path):
    with pytest.raises(ChannelFileError, match=r"channels\[0\]\.prices: prices for gpt-4o, which the channel"):
        build(tmp_path, chan('["gpt-5-4"]', '[channels.prices."gpt-4o"]\ninput = "1.00"\noutput = "2.00"\n'))


def test_catalog_holder_reloads_a_changed_file_and_keeps_the_last_good_one(tmp_path, caplog):
    path = tmp_path / "channels.toml"
    path.write_text(chan('["gpt-5-4"]'))
    holder = catalog.Holder(str(path), catalog.load(str(path)), check_s=0)
    first = holder.get()
    path.write_text(chan('["gpt-4o"]'))
    os.utime(path, ns=(1, 1))  # a new stamp even within the file system's time granularity
    second = holder.get()
    assert second.version == first.version + 1 and second.channels[0].models == ("gpt-4o",)
    path.write_text(chan('["gpt-4o"]') + "weight = = 2\n")
    with caplog.at_level(logging.ERROR, logger="bytespike.catalog"):
        assert holder.get() is second
    assert f"{path}: " in caplog.text and "line 7" in caplog.text and "keeping the running configuration" in caplog.text
    assert holder.get() is second  # the same broken file is not tried (nor logged) again
    assert caplog.text.count("not reloaded") == 1


def test_catalog_init_app_falls_back_to_the_masters_copy_only_when_one_is_held(tmp_path):
    from flask import Flask

    from core import channels as core_channels

    path = tmp_path / "channels.toml"
    path.write_text(chan('["gpt-4o"]'))
    catalog.remember(str(path))
    path.write_text("[[channels]]\nname = 1\n")
    app = Flask(__name__)
    app.config["BYTESPIKE_CHANNELS_FILE"] = str(path)
    catalog.init_app(app)
    assert catalog.current(app).channels[0].models == ("gpt-4o",)
    core_channels._LAST_GOOD.clear()
    with pytest.raises(ChannelFileError):
        catalog.init_app(app)


def test_channels_parse_records_each_model_line(tmp_path):
    text = chan('[\n  "a",\n  "b",\n]')
    (ch,) = parse(tmp_path / "c.toml", text)
    assert ch.lines == {"a": 7, "b": 8} and ch.where("b") == f"{tmp_path / 'c.toml'}:8: channels[0].models"


def test_catalog_the_issue_operators_file_serves_every_listed_model(tmp_path):
    listed = ["gpt-4o", "gemini-2.5-pro", "claude-opus-4-1", "gpt-4o-mini", "deepseek-reasoner", "claude-3-7-sonnet"]
    cat = build(tmp_path, chan("[" + ", ".join(f'"{m}"' for m in listed) + "]"))
    (ch,) = cat.channels
    assert ch.models == ("gpt-4o", "gemini-2-5-pro", "claude-opus-4-1", "gpt-4o-mini", "deepseek-reasoner",
                         "claude-3-7-sonnet")
    assert ch.upstream_model("gemini-2-5-pro") == "gemini-2.5-pro"
    for name in listed:
        row = cat.resolve(name)
        assert row.id in ch.models and row.status in ("scaffold", "legacy"), name
    assert cat.resolve("gpt-5-4").id not in ch.models and cat.resolve("gpt-4o").input == Decimal("2.50")
