"""The shared-log windows against their definition (issue 19 item 3): for any stream of
intents (with or without a notional), fills (partial, over the reservation, late after a
close) and closes (whole or partial), every window (several of one kind, open and closed
boundaries, counts, sums, mins, maxes of risk, P&L and notional, a drawdown, an exit-reason
filter) shows after each event exactly what
the plain definition computes from the events in ``(t - over, t]`` (``[t - over, t]``),
also after a snapshot is restored halfway and after a reload adds a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine import load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.events import PolicyEvent

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
POLICY = """\
api_version: policy-engine/v1
name: definition
version: 1
strategies:
  S: {max_trades: 1000}
  T: {max_trades: 1000}
windows:
  asks: {count: requests, per: portfolio, over: 10s}
  asks_closed: {count: requests, per: strategy, over: 10s, boundary: closed}
  risk_max: {count: approvals, per: symbol, over: 7s, max: risk}
  risk_sum: {count: requests, per: strategy, over: 20s, sum: risk}
  pnl_min: {count: closes, per: portfolio, over: 15s, min: realized_pnl}
  pnl_fall: {count: closes, per: strategy, over: 12s, drawdown: realized_pnl, boundary: closed}
  stops: {count: closes, per: symbol, over: 9s, reason: stop_loss}
  traded: {count: fills, per: symbol, over: 6s, sum: notional}
  least_traded: {count: fills, per: portfolio, over: 5s, min: notional, boundary: closed}
  filled: {count: fills, per: strategy, over: 8s, sum: risk}
  unwound: {count: closes, per: strategy, over: 11s, max: notional}
rules:
  - id: r
    require: "true"
"""
EXTRA = "  late: {count: closes, per: portfolio, over: 8s, sum: realized_pnl}\n"


@dataclass(frozen=True)
class Seen:
    """An event as the definition sees it."""

    kind: str
    at: datetime
    keys: dict[str, str]
    quantities: dict[str, int]
    reason: str | None


def expected(spec: Any, seen: list[Seen], now: datetime) -> dict[str, float]:
    """What window ``spec`` shows per key at ``now`` by its definition over ``seen``."""
    span = timedelta(seconds=spec.over)
    values: dict[str, list[int]] = {}
    for e in seen:
        inside = e.at >= now - span if spec.closed else e.at > now - span
        if e.kind != spec.count or not inside:
            continue
        if spec.reasons and e.reason not in spec.reasons:
            continue
        if spec.quantity is not None and spec.quantity not in e.quantities:
            continue
        key = "" if spec.per == "portfolio" else e.keys[spec.per]
        values.setdefault(key, []).append(e.quantities.get(spec.quantity or "", 1))
    out: dict[str, float] = {}
    for key, units in values.items():
        value: float
        if spec.aggregate is None:
            value = len(units)
        elif spec.aggregate == "sum":
            value = sum(units) / 1e6
        elif spec.aggregate == "min":
            value = min(units) / 1e6
        elif spec.aggregate == "max":
            value = max(units) / 1e6
        else:
            total = peak = fall = 0
            for u in units:
                total += u
                peak = max(peak, total)
                fall = max(fall, peak - total)
            value = fall / 1e6
        if value:
            out[key] = value
    return out


def shown(core: ControlCore, spec: Any) -> dict[str, float]:
    state = core.state
    if spec.per == "portfolio":
        table: dict[str, Any] = {"": state}
    else:
        table = {"strategy": state.strategies, "symbol": state.symbols}[spec.per]
    return {k: b.windows[spec.name] for k, b in table.items() if spec.name in b.windows}


EVENT = st.tuples(
    st.sampled_from([0, 0, 1, 3, 5]),  # seconds after the last event (0: the same time)
    st.sampled_from(["intent", "intent", "fill", "fill", "close", "tick"]),
    st.sampled_from(["S", "T"]),
    st.sampled_from(["BTC-USD", "ETH-USD"]),
    # a close's P&L, an intent's risk (its absolute value + 1) and notional per unit of risk
    # (0, 1 or 2: none, or one every fill and close moves exactly), which trade a fill or
    # close takes and how much
    st.integers(-50, 50),
    st.sampled_from([None, "stop_loss", "roi"]),
)


@dataclass
class Held:
    """A trade as the definition follows it: its keys, notional per unit, filled risk."""

    keys: dict[str, str]
    per_unit: int
    filled: int = 0

    def moved(self, units: int) -> dict[str, int]:
        """The quantities of a fill or close of ``units``: its risk, and its notional when
        the trade has one (every move of it is ``per_unit`` a unit: exact)."""
        out = {"risk": units * 1_000_000}
        if self.per_unit:
            out["notional"] = self.per_unit * units * 1_000_000
        return out


@settings(max_examples=60, deadline=None)
@given(st.lists(EVENT, max_size=40), st.integers(0, 40), st.integers(0, 40))
def test_every_window_shows_its_definition(
    events: list[tuple[int, str, str, str, int, str | None]], restore_at: int, reload_at: int
) -> None:
    core = ControlCore(load_policy_text(POLICY))
    seen: list[Seen] = []
    held: dict[str, Held] = {}
    open_trades: list[str] = []
    closed: list[str] = []  # ended trades a late fill may still come for
    now = T0
    added: int | None = None  # how many events were seen before the reload
    for n, (step, kind, strategy, symbol, amount, reason) in enumerate(events):
        if n == restore_at:
            core = ControlCore.restore(core.snapshot())
        if n == reload_at and added is None:
            text = POLICY.replace("version: 1", "version: 2").replace("rules:", EXTRA + "rules:")
            core.apply(PolicyEvent(load_policy_text(text)))
            added = len(seen)
        now += timedelta(seconds=step)
        ts = now.isoformat()
        if kind == "intent":
            iid = f"i{n}"
            risk = abs(amount) + 1
            intent: dict[str, Any] = {"type": "intent", "intent_id": iid}
            intent.update(strategy=strategy, symbol=symbol)
            trade = held[iid] = Held({"strategy": strategy, "symbol": symbol}, abs(amount) % 3)
            if trade.per_unit:
                intent["requested_notional_abs"] = risk * trade.per_unit
            core.apply({**intent, "side": "long", "requested_risk_abs": risk, "timestamp": ts})
            asked = trade.moved(risk)
            seen.append(Seen("requests", now, trade.keys, asked, None))
            seen.append(Seen("approvals", now, trade.keys, asked, None))
            open_trades.append(iid)
        elif kind == "fill" and (open_trades or closed):
            if closed and (amount < -30 or not open_trades):  # late: an orphan position
                iid = closed.pop(0)
                held[iid].filled = 0
                open_trades.append(iid)
            else:
                iid = open_trades[amount % len(open_trades)]
            trade, units = held[iid], abs(amount) % 7 + 1  # may run over the reservation
            fill = {"type": "fill", "intent_id": iid, "fill_id": f"f{n}", "timestamp": ts}
            core.apply({**fill, "filled_risk_abs": units})
            trade.filled += units
            seen.append(Seen("fills", now, trade.keys, trade.moved(units), None))
        elif kind == "close" and open_trades:
            iid = open_trades[0]
            trade = held[iid]
            close: dict[str, Any] = {"type": "close", "intent_id": iid, "timestamp": ts}
            close["realized_pnl"] = amount
            units = trade.filled
            if amount % 3 == 0 and trade.filled >= 2:  # a partial close of half the position
                units = close["risk_abs"] = trade.filled // 2
            else:
                closed.append(open_trades.pop(0))
            trade.filled -= units
            if reason is not None:
                close["reason"] = reason
            core.apply(close)
            quantities = {**trade.moved(units), "realized_pnl": amount * 1_000_000}
            seen.append(Seen("closes", now, trade.keys, quantities, reason))
        else:
            core.apply({"type": "tick", "timestamp": ts})
        for spec in core.policy.windows:
            history = seen[added:] if spec.name == "late" else seen  # it starts empty
            assert shown(core, spec) == expected(spec, history, now), (spec.name, n)
    restored = ControlCore.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    assert restored.windows.view() == core.windows.view()
