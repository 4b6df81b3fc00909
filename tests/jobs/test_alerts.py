"""Low-balance and key-budget alerts judged at settle: once per crossing, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from core import alerts, ledger
from core import jobs as core_jobs

from .conftest import hook_account


def rec(p, rid):
    return ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, "claude-sonnet-4-6", "anthropic", "ch",
                              "anthropic", False, 200)


def charge(p, rid, credits):
    """Reserve and settle ``credits`` as the gateway does, then the settle's alert hook."""
    hold = ledger.reserve(p, rid, credits)
    charged = ledger.settle(hold, credits, rec(p, rid))
    alerts.after_settle(hold, charged)
    return charged


def events(receiver):
    return [json.loads(body) for _h, body in receiver.got]


def test_crossed_below_only_downwards_through_the_line():
    assert alerts.crossed_below(600, 400, 500)
    assert alerts.crossed_below(500, 499, 500)
    assert not alerts.crossed_below(499, 300, 500)  # already below: no new crossing
    assert not alerts.crossed_below(900, 600, 500)
    assert not alerts.crossed_below(900, 100, None)


def test_budget_marks_crossed_each_once():
    assert alerts.budget_marks_crossed(0, 790, 1000) == []
    assert alerts.budget_marks_crossed(790, 800, 1000) == [80]
    assert alerts.budget_marks_crossed(500, 1000, 1000) == [80, 100]
    assert alerts.budget_marks_crossed(800, 900, 1000) == []
    assert alerts.budget_marks_crossed(0, 10**9, None) == []


def test_settle_crossing_the_threshold_notifies_once(local_app, receiver):
    org_id, p = hook_account(1_000_000, receiver.url, low_balance_credits=500_000)
    charge(p, "req_1", 300_000)  # 1.0M -> 0.7M: above the line
    assert core_jobs.backend().depth() == 0 and receiver.got == []
    charge(p, "req_2", 300_000)  # 0.7M -> 0.4M: crosses
    assert core_jobs.backend().drain(60)
    charge(p, "req_3", 100_000)  # 0.4M -> 0.3M: still below, no new crossing, nothing queued
    assert core_jobs.backend().depth() == 0
    assert core_jobs.backend().drain(60)
    got = events(receiver)
    assert [e["type"] for e in got] == ["balance.low"]
    assert got[0]["data"]["balance_credits"] == 400_000 and got[0]["data"]["threshold_credits"] == 500_000


def test_settle_crossing_again_after_a_topup_notifies_again(local_app, receiver):
    org_id, p = hook_account(1_000_000, receiver.url, low_balance_credits=500_000)
    charge(p, "req_a", 600_000)
    assert core_jobs.backend().drain(60)
    ledger.credit(org_id, "admin_credit", 1_000_000, "test:refill")  # 1.4M: above again
    from website.payments import webhooks

    assert webhooks.check_low_balance(org_id) is False  # re-armed (a payment does this on its own)
    charge(p, "req_b", 1_000_000)  # 1.4M -> 0.4M: a second crossing
    assert core_jobs.backend().drain(60)
    assert [e["type"] for e in events(receiver)] == ["balance.low", "balance.low"]


def test_key_budget_marks_notify_once_each(local_app, receiver, make_sub):
    _org, master = hook_account(10_000_000, receiver.url)
    _raw, sub = make_sub(master, "budgeted", quota_credits=1_000)
    charge(sub, "req_k1", 500)
    charge(sub, "req_k2", 300)  # 800 of 1000: the 80% mark
    charge(sub, "req_k3", 100)
    charge(sub, "req_k4", 100)  # 1000: the 100% mark
    assert core_jobs.backend().drain(60)
    got = sorted(events(receiver), key=lambda e: e["data"]["percent"])
    assert [(e["type"], e["data"]["percent"], e["data"]["key_id"]) for e in got] == [
        ("key.budget", 80, sub.key_id), ("key.budget", 100, sub.key_id)]
