"""Buckets live while something needs them (issue 19, hostile volumes): a bucket equal to a
fresh one is dropped, so the state, the snapshots and a metrics scrape stay bounded by the
live state, not by every symbol, cohort or scope value ever seen; and dropping one changes
no decision and no snapshot. The speed is proven in benchmarks/hostile.py."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from policy_engine import load_policy_text
from policy_engine.control import snapshot as snapshots
from policy_engine.control.core import ControlCore
from policy_engine.control.metrics import OTHER, ControlMetrics
from policy_engine.control.scrape import core_reader
from policy_engine.control.state import COUNTERS, Bucket

from support.hostile import DAY_POLICY, distinct_symbols


def _core(events: list[dict[str, object]]) -> ControlCore:
    core = ControlCore(load_policy_text(DAY_POLICY))
    core.apply({"type": "equity", "equity": 10_000_000, "timestamp": None})
    for event in events:
        assert core.apply(event).records  # every event answered
    return core


def _names(core: ControlCore) -> dict[str, int]:
    state = core.state
    return {
        "strategies": len(state.strategies),
        "symbols": len(state.symbols),
        "cohorts": len(state.cohorts),
    }


def test_a_closed_trade_leaves_no_bucket_behind() -> None:
    """2,000 symbols traded and closed with nothing realized: no bucket stays (before: 2,000
    symbol and 2,000 cohort buckets of zeros, in every snapshot and every scrape)."""
    core = _core(distinct_symbols(2_000, None))
    assert _names(core) == {"strategies": 0, "symbols": 0, "cohorts": 0}
    assert core.snapshot()["symbols"] == [] and core.portfolio_state()["symbols"] == {}


def test_a_bucket_holding_the_days_pnl_stays_until_the_rollover() -> None:
    """A bucket with realized P&L or a loss streak is read by rules: it stays, exactly, until
    the rollover zeroes the day; then it is dropped."""
    core = _core(distinct_symbols(300, -1.5, live=2))
    assert _names(core) == {"strategies": 1, "symbols": 302, "cohorts": 302}
    bucket = core.state.symbols["SYM7"]
    assert (bucket.day_pnl_units, bucket.loss_streak, bucket.active_trades) == (-1_500_000, 1, 0)
    assert core.state.strategies["S"].loss_streak == 300
    core.apply({"type": "tick", "timestamp": "2026-03-03T00:00:01+00:00"})  # the next day
    # only the two live trades' buckets are left
    assert _names(core) == {"strategies": 1, "symbols": 2, "cohorts": 2}
    assert sorted(core.state.symbols) == ["SYM300", "SYM301"]


def test_a_scrape_copies_only_the_buckets_of_live_trades_under_the_lock() -> None:
    """5,000 symbols closed today keep their P&L buckets (rules read them), but a scrape
    copies only what it shows, under the lock: the buckets of the 3 live trades."""
    core = _core(distinct_symbols(5_000, 2.0, live=3))
    assert len(core.state.symbols) == 5_003
    live = core_reader(core, threading.RLock())()
    assert sorted(live.state.symbols) == ["SYM5000", "SYM5001", "SYM5002"]
    assert len(live.state.cohorts) == 3
    assert list(live.state.strategies) == ["S"]
    assert live.state.counters() == core.state.counters()
    for name, bucket in live.state.symbols.items():
        assert bucket.counters() == core.state.symbols[name].counters()


def test_an_older_snapshot_with_fresh_buckets_migrates_to_the_same_state() -> None:
    """Format 9 kept every bucket ever seen, in order of first use; migrated, it restores to
    the state the new core has (fresh rows dropped, the rest sorted)."""
    core = _core(distinct_symbols(20, 0.5, live=2))
    new = core.snapshot()
    # format 10 changed only the bucket rows; 11 added notional columns, dropped here again,
    # and 12 each trade's order group, currency and notional (last) and the balances
    # and 13 only the windows (this policy declares none)
    assert snapshots.FORMAT_VERSION == 13

    def row10(row: list[Any]) -> list[Any]:
        return [*row[:7], *row[12:14]]

    old = dict(new, format=f"{snapshots.FORMAT_PREFIX}9", windows={})
    old["portfolio"] = row10(["", *new["portfolio"]])[1:]
    old["trades"] = [t[:-7] for t in new["trades"]]
    del old["marks"]
    del old["balances"]
    zeros = [0] * 8
    symbols = [row10(r) for r in new["symbols"]]
    old["symbols"] = [["ZZZ", *zeros], *reversed(symbols), ["AAA", *zeros]]
    for key in ("strategies", "cohorts"):
        old[key] = [row10(r) for r in new[key]]
    old["scopes"] = {"venue": [["X", *zeros]]}
    restored = ControlCore.restore(old)
    assert restored.snapshot() == new


def test_a_label_keeps_its_series_after_its_bucket_is_dropped() -> None:
    """Series stay stable: a symbol once labelled, and `other` once shown, are still scraped
    (at 0) after their trades closed and their buckets were dropped."""
    core = _core(distinct_symbols(0, None, live=2))
    metrics = ControlMetrics(CollectorRegistry(), max_buckets=1)
    metrics.watch(core_reader(core, threading.RLock()))

    def symbols() -> dict[str, float]:
        text = generate_latest(metrics.registry).decode()
        return {
            s.labels["bucket"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "policy_engine_heat" and s.labels["scope"] == "symbol"
        }

    assert symbols() == {"SYM0": 1.0, OTHER: 1.0}
    for iid in ("i0", "i1"):
        core.apply({"type": "close", "intent_id": iid, "timestamp": "2026-03-02T11:00:00+00:00"})
    assert core.state.symbols == {}
    assert symbols() == {"SYM0": 0.0, OTHER: 0.0}


WINDOWED = """\
api_version: policy-engine/v1
name: windowed
version: 1
strategies:
  S: {max_trades: 1000000}
windows:
  approvals_1h: {count: approvals, per: symbol, over: 1h}
rules:
  - id: one-an-hour
    require: symbol.approvals_1h < 1000
"""


def test_buckets_only_a_window_kept_are_swept_once_the_window_ran_out() -> None:
    """No trading day, so no rollover sweep: a bucket kept by a window count and left fresh
    when it ran out (no trade ended there) is dropped by the sweep the tables' growth
    triggers, so they stay within twice what is live (here: 6,000 symbols, the first 3,000
    out of their window, leave at most the 3,000 counted ones and what grew since a sweep)."""
    core = ControlCore(load_policy_text(WINDOWED))
    core.apply({"type": "equity", "equity": 10_000_000, "timestamp": None})
    for event in distinct_symbols(3_000, None):
        core.apply(event)
    assert len(core.state.symbols) == 3_000  # each still counted by its window
    later = []  # the same again two hours later, on other symbols
    for event in distinct_symbols(3_000, None):
        moved = {**event, "intent_id": f"n{event['intent_id']}"}
        moved["timestamp"] = "2026-03-02T12:00:00+00:00"
        if "symbol" in event:
            moved["symbol"] = f"NEW{event['symbol']}"
        later.append(moved)
    for event in later:
        core.apply(event)
    assert all(name.startswith("NEW") for name in core.state.symbols)
    assert len(core.state.symbols) <= 3_000


@pytest.mark.parametrize("name", [*COUNTERS, "day_pnl_units", "loss_streak"])
def test_a_bucket_with_any_counter_set_is_not_fresh(name: str) -> None:
    """`is_fresh` reads every counter (written out one by one for speed: a counter added to
    COUNTERS and not to it would let a live bucket be dropped)."""
    bucket = Bucket()
    assert bucket.is_fresh()
    setattr(bucket, name, 1)
    assert not bucket.is_fresh()
    setattr(bucket, name, 0)
    bucket.windows["w"] = 1
    assert not bucket.is_fresh()


def test_reused_buckets_change_no_record_and_no_snapshot() -> None:
    """A dropped bucket is handed to the next trade that needs one (Book.spare): a core
    carrying spares and one restored from its snapshot (none) answer the same events with
    the same records and end in the same snapshot, and every reused bucket reads as new."""
    first = distinct_symbols(40, None)  # 40 trades opened and closed: their buckets dropped
    live = _core(first)
    assert live.book.spare  # what the next trades' new names are given
    restored = ControlCore.restore(live.snapshot())
    more = [
        {**event, "intent_id": f"m{event['intent_id']}", "symbol": f"N{event.get('symbol')}"}
        if event["type"] == "intent"
        else {**event, "intent_id": f"m{event['intent_id']}"}
        for event in distinct_symbols(30, -0.5, live=5)
    ]
    for event in more:
        assert live.apply(event).records == restored.apply(event).records
    assert live.snapshot() == restored.snapshot()
    assert live.portfolio_state() == restored.portfolio_state()
    fresh = Bucket()
    names = [*COUNTERS, "active_risk", "reserved_risk", "heat", "long_risk", "net_risk"]
    for name in ("NSYM30", "NSYM31"):  # live trades' buckets, some of them reused objects
        got, want = live.state.symbols[name], restored.state.symbols[name]
        assert [getattr(got, n) for n in names] == [getattr(want, n) for n in names]
    assert [getattr(fresh, n) for n in names] == [0] * len(COUNTERS) + [0.0] * 5
