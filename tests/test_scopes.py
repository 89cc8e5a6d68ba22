"""Scopes (issue 11): what a scope may be named and keyed by, where it may be read, and the
live buckets the core keeps for it (reserved, filled, released, moved by a reload, restored
from a snapshot). Decisions: tests/cases/scopes_test.yaml and tests/limits/venue_caps.*."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from policy_engine import load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.events import PolicyEvent

from support.loading import problems

LIMITS = Path(__file__).resolve().parent / "limits"
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_what_a_scope_cannot_be_is_refused_with_a_suggestion() -> None:
    assert problems(
        """\
        inputs:
          venue: {type: string, default: null}
          size: {type: number, default: 0}
        scopes:
          symbol: {key: intent.venue}
          place: {key: intent.venu, values: {X: {heat: 5}}}
          sized: {key: intent.size}
        rules: [{id: r, require: "true"}]
        """
    ) == [
        "t.yaml:8:3: PT309 `symbol` is a built-in namespace and cannot name a scope",
        "t.yaml:9:16: PT301 unknown name `intent.venu` (did you mean `intent.venue`?)",
        "t.yaml:9:42: PT309 `heat` is a live counter or built-in name and cannot be "
        "configured in scopes",
        "t.yaml:10:16: PT302 a scope is keyed by a string field of the intent, not `intent.size`",
    ]


def test_a_scope_is_read_where_a_symbol_is() -> None:
    head = "scopes:\n  venue: {key: intent.playbook_id, values: {X: {cap: 5}}}\n"
    assert problems(head + "rules: [{id: r, limit: venue.cap - venue.heat}]\n") == []
    assert problems(head + "envelope: {max_new_risk_abs: venue.cap}\nrules: []\n") == [
        "t.yaml:6:30: PT310 `venue.cap` cannot be read in an envelope value (only `latch`, "
        "`mode`, `params`, `portfolio`)"
    ]
    assert problems(head + "rules: [{id: r, limit: venue.caps}]\n") == [
        "t.yaml:6:24: PT301 unknown name `venue.caps` (did you mean `venue.cap`?)"
    ]
    assert problems(head + "rules: [{id: r, limit: venu.cap}]\n") == [
        "t.yaml:6:24: PT301 unknown name `venu` (did you mean `venue`?)"
    ]


def event(kind: str, n: float, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "timestamp": (T0 + timedelta(seconds=n)).isoformat(), **fields}


def intent(iid: str, n: float, venue: str | None, risk: float = 500) -> dict[str, Any]:
    extra = {} if venue is None else {"venue": venue}
    return event(
        "intent",
        n,
        intent_id=iid,
        strategy="S",
        symbol="BTC-USD",
        side="long",
        requested_risk_abs=risk,
        **extra,
    )


SCOPED = (LIMITS / "venue_caps.yaml").read_text()


def test_the_core_keeps_a_bucket_per_key_value_and_a_snapshot_restores_it() -> None:
    core = ControlCore(load_policy_text(SCOPED))
    core.apply(intent("a", 0, "BINANCE"))
    core.apply(event("fill", 1, intent_id="a", fill_id="f", filled_risk_abs=300))
    core.apply(intent("b", 2, "COINBASE", 100))
    scopes = core.state.scopes["venue"]
    assert (scopes["BINANCE"].active_risk, scopes["BINANCE"].reserved_risk) == (300, 200)
    assert scopes["COINBASE"].heat == 100
    assert core.portfolio_state()["scopes"]["venue"]["COINBASE"]["heat"] == 100
    restored = ControlCore.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    core.apply(event("close", 3, intent_id="a"))
    assert "BINANCE" not in scopes  # closed, nothing realized: dropped as fresh


def test_a_reload_that_adds_a_scope_counts_the_live_trades_in_it() -> None:
    """The trade remembers the intent's string fields, so a scope declared later finds it."""
    plain = (
        "api_version: policy-engine/v1\nname: venue-caps\nversion: 1\n"
        "inputs: {venue: {type: string, required: true}}\nrules: []\n"
    )
    core = ControlCore(load_policy_text(plain))
    core.apply(intent("a", 0, "BINANCE", 700))
    assert core.state.scopes == {}
    core.apply(PolicyEvent(load_policy_text(SCOPED.replace("version: 1", "version: 2"))))
    assert core.state.scopes["venue"]["BINANCE"].heat == 700
    decision = core.apply(intent("b", 1, "BINANCE", 2000)).records[-1]
    assert decision["approved_risk_abs"] == 1300  # the cap sees the trade made before


COMPOSITE = """\
api_version: policy-engine/v1
name: composite
version: 1
strategies:
  S: {max_trades: 100}
scopes:
  book:
    key: [intent.strategy, intent.side]
    values:
      S|long: {cap: 300}
      S|short: {cap: 100}
windows:
  entries_1h: {count: approvals, per: book, over: 1h}
rules:
  - id: two-an-hour-per-side
    require: book.entries_1h < 2
  - id: side-cap
    limit: book.cap - book.heat
    on_exceed: clip
"""


def test_a_composite_key_keeps_one_bucket_per_strategy_and_side() -> None:
    """`key: [intent.strategy, intent.side]`: buckets `S|long` and `S|short`, read, counted
    in a window per key, reserved, released by a close, and carried by a snapshot."""
    core = ControlCore(load_policy_text(COMPOSITE))

    def ask(iid: str, minutes: int, side: str, risk: float) -> tuple[str, float]:
        ts = (T0 + timedelta(minutes=minutes)).isoformat()
        event: dict[str, Any] = {"type": "intent", "intent_id": iid, "strategy": "S"}
        event["symbol"] = "BTC-USD"
        event |= {"side": side, "requested_risk_abs": risk, "timestamp": ts}
        decision = core.apply(event, decide=True).decision
        assert decision is not None
        return decision.decision_code, decision.approved_risk_abs

    assert ask("l1", 0, "long", 200) == ("approved_full", 200)
    assert ask("s1", 1, "short", 200) == ("approved_clipped", 100)
    assert ask("l2", 2, "long", 200) == ("approved_clipped", 100)  # 300 - 200 left
    assert ask("l3", 3, "long", 10) == ("rejected_two_an_hour_per_side", 0)
    books = core.state.scopes["book"]
    assert sorted(books) == ["S|long", "S|short"]
    assert books["S|long"].windows == {"entries_1h": 2}
    assert books["S|short"].windows == {"entries_1h": 1}
    restored = ControlCore.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    ts = (T0 + timedelta(minutes=4)).isoformat()
    core.apply({"type": "cancel", "intent_id": "l1", "timestamp": ts})
    assert books["S|long"].reserved_units == 100_000_000  # l2's 100 left, in micro-units


def test_a_composite_key_names_a_bad_part_where_it_is_written() -> None:
    assert problems(
        """\
        inputs:
          size: {type: number, default: 0}
        scopes:
          book: {key: [intent.strategy, intent.size]}
          typo: {key: [intent.side, intent.strategi]}
        rules: [{id: r, require: "true"}]
        """
    ) == [
        "t.yaml:7:33: PT302 a scope is keyed by a string field of the intent, not `intent.size`",
        "t.yaml:8:29: PT301 unknown name `intent.strategi` (did you mean `intent.strategy`?)",
    ]
