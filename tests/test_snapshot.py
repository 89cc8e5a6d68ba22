"""The core's snapshot round-trips exactly: restored, it behaves exactly as the original.

A property test drives a core through random event streams (intents of every
side, partial and duplicate fills, cancels, closes and partial closes with realized P&L,
latch resets, ticks past TTLs and trading-day rollovers, equity
moves across drawdown tiers, overrides), takes a snapshot at a random point,
sends it through JSON, restores it, and feeds the rest of the stream to both:
every record and the final snapshot must be identical. A tampered snapshot
is refused.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError, canonical
from policy_engine.control.lines import checkpoint_body
from policy_engine.control.state import Bucket
from policy_engine.engine.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent
POLICY = load_policy(ROOT / "policies" / "portfolio.yaml")
RICH = load_policy(ROOT / "tests" / "policies" / "snapshot_rich.yaml")
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
STRATEGIES = ["BREAKOUT", "MOMENTUM", "SCALPER"]
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "AVAX-USD", "LINK-USD"]
IDS = [f"i{n}" for n in range(12)]


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


EVENT = st.one_of(
    st.builds(
        lambda iid, strat, sym, side, risk, venue, notional, position: {
            "type": "intent",
            "intent_id": iid,
            "strategy": strat,
            "symbol": sym,
            "side": side,
            "requested_risk_abs": risk,
            **({} if venue is None else {"venue": venue}),
            **({} if notional is None else {"requested_notional_abs": notional}),
            **({} if position is None else {"position_id": position, "reduce_only": True}),
        },
        st.sampled_from(IDS),
        st.sampled_from(STRATEGIES),
        st.sampled_from(SYMBOLS),
        st.sampled_from(["long", "long", "short", "flat"]),
        st.sampled_from([0, 0.1, 100, 333.333333, 800, 1500, 5000]),
        st.sampled_from([None, "XNAS", "BINANCE", "LSE"]),
        st.sampled_from([None, 1_000, 12_345.678901]),  # notional (issue 23)
        st.sampled_from([None, None, None, *IDS[:2]]),  # a position it reduces
    ),
    st.builds(
        lambda iid, fid, risk, price: {
            "type": "fill",
            "intent_id": iid,
            "fill_id": fid,
            "filled_risk_abs": risk,
            **({} if price is None else {"price": price}),
        },
        st.sampled_from(IDS),
        st.sampled_from(["f1", "f2", "f3"]),
        st.sampled_from([0.1, 50, 200, 999.999999]),
        st.sampled_from([None, 99.5, 101]),
    ),
    st.builds(
        lambda sym, price: {"type": "mark", "symbol": sym, "price": price},
        st.sampled_from(SYMBOLS),
        st.sampled_from([90, 100.25, 120]),
    ),
    st.builds(lambda iid: {"type": "cancel", "intent_id": iid}, st.sampled_from(IDS)),
    st.builds(lambda iid: {"type": "close", "intent_id": iid}, st.sampled_from(IDS)),
    st.builds(
        lambda iid, risk, pnl: {
            "type": "close",
            "intent_id": iid,
            "risk_abs": risk,
            "realized_pnl": pnl,
        },
        st.sampled_from(IDS),
        st.sampled_from([0.1, 50, 199.999999, 1000]),
        st.sampled_from([-120.5, -0.000001, 0, 33.3]),
    ),
    st.just({"type": "tick"}),
    st.builds(
        lambda name: {"type": "reset_latch", "name": name, "reason": "desk"},
        st.sampled_from(["daily_loss", "deep"]),
    ),
    st.builds(
        lambda eq: {"type": "equity", "equity": eq},
        st.sampled_from([100_000, 96_000, 94_000, 89_000, 101_000]),
    ),
    st.builds(
        lambda mode: {"type": "mode", "mode": mode, "reason": "judge"},
        st.sampled_from([None, "defensive", "risk_off"]),  # declared by both policies
    ),
)
STEP = st.sampled_from([0, 0, 1, 30, 299.999999, 300, 301, 900, 43_200])  # 12 h: rollovers


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = draw(st.lists(st.tuples(EVENT, STEP), min_size=1, max_size=60))
    clock = 0.0
    out = []
    for event, step in events:
        clock += step
        out.append({**event, "timestamp": _ts(clock)})
    return out


def _run(core: ControlCore, events: list[dict[str, Any]]) -> list[str]:
    return [canonical(r) for e in events for r in core.apply(e).records]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=streams(), cut=st.integers(min_value=0, max_value=60), rich=st.booleans())
def test_a_restored_core_continues_exactly_as_the_original(
    events: list[dict[str, Any]], cut: int, rich: bool
) -> None:
    """On the bundled portfolio policy, and on one with a trading day, inputs and scopes."""
    cut = min(cut, len(events))
    if not rich:  # the bundled policy declares no inputs (a venue) and no latches
        events = [
            {k: v for k, v in e.items() if k != "venue"}
            for e in events
            if e["type"] != "reset_latch"
        ]
    original = ControlCore(RICH if rich else POLICY)
    original.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    _run(original, events[:cut])
    snapshot = original.snapshot()
    # A checkpoint line's cheap capture, encoded only after the core went on (as its thread
    # encodes it while decisions go on), reads back as exactly the snapshot at the capture.
    captured = original.checkpoint()
    wire = json.loads(json.dumps(snapshot))  # through JSON, as a workflow or a file holds it
    restored = ControlCore.restore(wire)
    assert restored.snapshot() == snapshot
    assert restored.portfolio_state() == original.portfolio_state()
    assert _run(restored, events[cut:]) == _run(original, events[cut:])
    assert restored.snapshot() == original.snapshot()
    line = json.loads(checkpoint_body({"type": "checkpoint", "snapshot": captured}))
    assert line["snapshot"] == snapshot


def _plain(rows: list[Any]) -> Any:
    """Rows as a JSON file holds them (datetimes as ISO 8601 text, tuples as lists)."""
    return json.loads(json.dumps(rows, default=lambda t: t.isoformat()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=streams(), cut=st.integers(min_value=0, max_value=60), read=st.integers(0, 12))
def test_a_capture_read_while_the_core_goes_on_is_the_snapshot_at_the_capture(
    events: list[dict[str, Any]], cut: int, read: int
) -> None:
    """The checkpoint thread reads the captured rows while the core goes on: whether a trade
    changed before its row was read or after, its row is the one it had at the capture (and
    the ended trades' too)."""
    cut = min(cut, len(events))
    core = ControlCore(RICH)
    core.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    for iid in IDS[:6]:  # live trades for the stream's fills, cancels and closes to change
        intent = {"type": "intent", "intent_id": iid, "strategy": "SCALPER", "side": "long"}
        core.apply({**intent, "symbol": "BTC-USD", "requested_risk_abs": 100, "timestamp": _ts(0)})
    _run(core, events[:cut])
    snapshot = core.snapshot()
    captured = core.checkpoint()
    trades, ended = iter(captured["trades"]), iter(captured["ended"])
    first = [row for _, row in zip(range(read), trades, strict=False)]
    _run(core, events[cut:])
    assert _plain([*first, *trades]) == snapshot["trades"]
    assert _plain(list(ended)) == snapshot["ended"]
    # and so does the line its thread writes (the rows encoded a chunk at a time)
    line = json.loads(checkpoint_body({"type": "checkpoint", "snapshot": captured}))
    assert line["snapshot"] == snapshot
    # the standard encoder (what a line with an integer beyond 64 bits takes) reads the same
    captured = core.checkpoint()
    snapshot = core.snapshot()
    assert _plain(captured["trades"].plain()) == snapshot["trades"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=streams(), cut=st.integers(min_value=0, max_value=60))
def test_a_dropped_bucket_decides_and_snapshots_as_a_fresh_one(
    events: list[dict[str, Any]], cut: int
) -> None:
    """A bucket equal to a fresh one is dropped: putting a fresh bucket back under every name
    (in another order) changes no record and no snapshot from then on."""
    cut = min(cut, len(events))
    original = ControlCore(RICH)
    original.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    _run(original, events[:cut])
    state = original.state
    for table, names in (
        (state.strategies, STRATEGIES),
        (state.symbols, SYMBOLS),
        (state.cohorts, [*state.cohorts, "L1", "majors", *SYMBOLS]),
        (state.scopes.setdefault("venue", {}), ["XNAS", "BINANCE", "LSE"]),
    ):
        for name in reversed(names):
            table.setdefault(name, Bucket())
    padded = original
    plain = ControlCore.restore(original.snapshot())  # restored: no fresh bucket
    assert padded.snapshot() == plain.snapshot()
    assert padded.portfolio_state() == plain.portfolio_state()
    assert _run(padded, events[cut:]) == _run(plain, events[cut:])
    assert padded.snapshot() == plain.snapshot()


def _busy_snapshot() -> dict[str, Any]:
    core = ControlCore(POLICY)
    core.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    core.apply(
        {
            "type": "intent",
            "intent_id": "a",
            "strategy": "BREAKOUT",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 700,
            "timestamp": _ts(0),
        }
    )
    core.apply(
        {
            "type": "fill",
            "intent_id": "a",
            "fill_id": "f",
            "filled_risk_abs": 300,
            "timestamp": _ts(1),
        }
    )
    return core.snapshot()


def test_a_snapshot_whose_buckets_disagree_with_its_trades_is_refused() -> None:
    snapshot = _busy_snapshot()
    tampered = copy.deepcopy(snapshot)
    tampered["strategies"][0][1] += 1  # one micro-unit of active risk out of nowhere
    with pytest.raises(EventError, match=r"strategies\.BREAKOUT does not match its trades"):
        ControlCore.restore(tampered)


def test_a_snapshot_whose_policy_text_was_edited_is_refused() -> None:
    tampered = _busy_snapshot()
    tampered["policy"]["source"] = tampered["policy"]["source"].replace(
        "heat_cap: 6%", "heat_cap: 60%"
    )
    with pytest.raises(EventError, match="does not match its hash"):
        ControlCore.restore(tampered)


def test_something_that_is_not_a_snapshot_is_refused() -> None:
    with pytest.raises(EventError, match="not a core snapshot"):
        ControlCore.restore({"format": "something else"})
