"""The SQLite close binds the usage row by position: the same values, in column order, as ``usage_values``."""

from __future__ import annotations

import datetime as dt

import pytest

from core import ledger_sql, ledger_writes
from core.ledger import UsageRecord


@pytest.mark.parametrize("billed", [True, False])
@pytest.mark.parametrize("error", [None, "x" * 600])
def test_usage_row_matches_usage_values(billed: bool, error: str | None) -> None:
    rec = UsageRecord("req_1", 7, "key_1", None, "m" * 130, "openai", "openai-main", "openai", True, 200,
                      input_tokens=45, output_tokens=20, cache_write_tokens=3, cache_read_tokens=4,
                      estimated_credits=900, latency_ms=12, overhead_ms=1, fallback_from="gpt-a", error=error)
    now = dt.datetime(2026, 12, 5, 21, 7, 30, 123456)
    values = ledger_writes.usage_values(rec, now, cost=321, billed=billed)
    values.update(created_at=ledger_sql.lite_time(now), stream=int(values["stream"]), billed=int(values["billed"]))
    row = ledger_writes.usage_row(rec, ledger_sql.lite_time(now), cost=321, billed=billed)
    assert row == tuple(values[c] for c in ledger_sql.USAGE_COLS)
    assert ledger_sql.LITE_USAGE.count("?") == len(row)


def test_window_sums_number_the_key_first() -> None:
    stmt = ledger_sql.lite_window_sums(("5h", "1d", "7d"))
    assert "api_key_id = ?1" in stmt and "?2" in stmt and "?4" in stmt and "?5" not in stmt
