"""Exactness: reserved, committed and released amounts reconcile to the micro-unit.

A property test drives a real controller through long random sequences of
reserve / partial fill / duplicate fill / cancel / expire / partial close / close and checks,
after every event, that every aggregate (portfolio, strategy, symbol, cohort)
equals what an independent model of the events implies, and that everything
is exactly zero once the portfolio is flat again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import PortfolioController, load_policy
from policy_engine.control.state import Bucket
from policy_engine.engine.contracts import RISK_SCALE, to_units

ROOT = Path(__file__).resolve().parent.parent
POLICY = load_policy(ROOT / "tests" / "policies" / "exactness.yaml")
COHORT = {"S1": "C1", "S2": "C1", "S3": "C2", "S4": "S4"}
TTL = timedelta(seconds=60)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class RefTrade:
    strategy: str
    symbol: str
    approved: int
    deadline: datetime
    filled: int = 0
    reserved: int = 0
    released: bool = False
    fills: set[str] = field(default_factory=set)
    side: str = "long"

    @property
    def open(self) -> bool:
        return bool(self.fills)


class Model:
    """What the events imply, recomputed from scratch (integers only)."""

    def __init__(self) -> None:
        self.trades: dict[str, RefTrade] = {}
        # ended id -> (strategy, symbol, side, its fill ids: a re-sent one is a duplicate)
        self.ended: dict[str, tuple[str, str, str, set[str]]] = {}
        self.clock: datetime | None = None

    def end(self, iid: str) -> None:
        t = self.trades.pop(iid)
        self.ended[iid] = (t.strategy, t.symbol, t.side, set(t.fills))

    def advance(self, ts: datetime) -> None:
        if self.clock is None or ts > self.clock:
            self.clock = ts
        for iid, t in list(self.trades.items()):
            if t.released or t.deadline > self.clock:
                continue
            if t.reserved == 0 and t.open:
                continue
            t.reserved = 0
            t.released = True
            if not t.open:
                self.end(iid)

    def aggregates(self) -> dict[tuple[str, str], tuple[int, ...]]:
        out: dict[tuple[str, str], list[int]] = {}
        for t in self.trades.values():
            keys = [("portfolio", ""), ("strategy", t.strategy), ("symbol", t.symbol)]
            keys.append(("cohort", COHORT[t.symbol]))
            for key in keys:
                acc = out.setdefault(key, [0] * 6)
                acc[0] += t.filled
                acc[1] += t.reserved
                acc[2] += 1
                acc[3] += 1 if t.open else 0
                acc[4 if t.side == "long" else 5] += t.filled + t.reserved
        return {k: tuple(v) for k, v in out.items()}


def observed(ctl: PortfolioController) -> dict[tuple[str, str], tuple[int, ...]]:
    state = ctl.state
    out: dict[tuple[str, str], tuple[int, ...]] = {}

    def take(kind: str, name: str, b: Bucket) -> None:
        # The float mirrors are always exactly the integers they mirror.
        assert b.active_risk == b.active_units / RISK_SCALE
        assert b.reserved_risk == b.reserved_units / RISK_SCALE
        assert b.heat == (b.active_units + b.reserved_units) / RISK_SCALE
        assert b.long_risk == b.long_units / RISK_SCALE
        assert b.short_risk == b.short_units / RISK_SCALE
        assert b.net_risk == (b.long_units - b.short_units) / RISK_SCALE
        assert min(b.active_units, b.reserved_units, b.active_trades, b.open_positions) >= 0
        if not b.is_zero():
            out[(kind, name)] = (
                b.active_units,
                b.reserved_units,
                b.active_trades,
                b.open_positions,
                b.long_units,
                b.short_units,
            )

    take("portfolio", "", state)
    for kind, table in (
        ("strategy", state.strategies),
        ("symbol", state.symbols),
        ("cohort", state.cohorts),
    ):
        for name, bucket in table.items():
            take(kind, name, bucket)
    return out


AMOUNTS = st.sampled_from([0, 0.1, 0.2, 0.3, 0.7, 0.000001, 0.123457, 1 / 3, 0.45, 1.1])
STEPS = st.sampled_from([0, 0, 0.5, 10, 30, 59.999999, 60, 61])
OPS = st.one_of(
    st.tuples(
        st.just("intent"),
        st.sampled_from(["A", "B"]),
        st.sampled_from(list(COHORT)),
        AMOUNTS,
        st.sampled_from(["long", "long", "short", "flat"]),
        STEPS,
    ),
    st.tuples(st.just("fill"), st.integers(0, 50), AMOUNTS, st.integers(0, 3), STEPS),
    st.tuples(st.just("cancel"), st.integers(0, 50), STEPS),
    st.tuples(st.just("close"), st.integers(0, 50), STEPS),
    st.tuples(st.just("reduce"), st.integers(0, 50), AMOUNTS, STEPS),  # a partial close
    st.tuples(st.just("tick"), STEPS),
)


def run(ops: list[tuple[Any, ...]]) -> None:
    ctl = PortfolioController(POLICY, equity=1_000_000)
    model = Model()
    now = T0
    issued: list[str] = []
    for n, op in enumerate(ops):
        now = now + timedelta(seconds=op[-1])
        kind = op[0]
        if kind == "intent":
            _, strategy, symbol, amount, side, _dt = op
            iid = f"i{n}"
            model.advance(now)
            d = ctl.request_allocation(
                {
                    "intent_id": iid,
                    "strategy": strategy,
                    "symbol": symbol,
                    "side": side,
                    "requested_risk_abs": amount,
                    "timestamp": now,
                }
            )
            assert d.approved_risk_abs <= d.requested_risk_abs
            if d.approved and side != "flat":
                units = to_units(d.approved_risk_abs)
                clock = model.clock
                assert clock is not None
                model.trades[iid] = RefTrade(
                    strategy, symbol, units, clock + TTL, reserved=units, side=side
                )
                issued.append(iid)
        elif kind == "fill":
            _, k, amount, fid, _dt = op
            iid = issued[k % len(issued)] if issued else "none"
            t = model.trades.get(iid)
            # Admitted (journaled, and so moving the clock) only if it can change something.
            gone = model.ended.get(iid)
            admitted = (t is not None and f"f{fid}" not in t.fills) or (
                gone is not None and f"f{fid}" not in gone[3]
            )
            if admitted:
                model.advance(now)
            rec = ctl.on_fill_update(
                {
                    "intent_id": iid,
                    "fill_id": f"f{fid}",
                    "filled_risk_abs": amount,
                    "timestamp": now,
                }
            )
            t = model.trades.get(iid)
            units = to_units(amount)
            if not admitted:
                assert rec["status"] in ("duplicate", "unknown")
                assert rec["before"] == rec["after"] and rec["seq"] is None
            elif t is not None:
                take = min(units, t.reserved)
                t.reserved -= take
                t.filled += units
                t.fills.add(f"f{fid}")
                # after a cancel or expiry released the remainder, a fill is late exposure
                assert rec["status"] == ("late" if t.released else "committed")
            else:
                # a fill after the trade ended: an orphan position, counted everywhere
                strategy, symbol, side, fills = model.ended.pop(iid)
                orphan = RefTrade(strategy, symbol, 0, datetime.max.replace(tzinfo=UTC), side=side)
                orphan.filled, orphan.released = units, True
                orphan.fills.update(fills | {f"f{fid}"})
                model.trades[iid] = orphan
                assert rec["status"] == "late"
        elif kind in ("cancel", "close"):
            _, k, _dt = op
            iid = issued[k % len(issued)] if issued else "none"
            t = model.trades.get(iid)
            if kind == "cancel":
                if t is not None and not t.released:
                    model.advance(now)
                    t = model.trades.get(iid)
                    if t is not None and not t.released:
                        t.reserved = 0
                        t.released = True
                        if not t.open:
                            model.end(iid)
                ctl.cancel_reservation(iid, now)
            else:
                if t is not None:
                    model.advance(now)
                    if iid in model.trades:
                        model.end(iid)
                ctl.close_position(iid, now)
        elif kind == "reduce":
            _, k, amount, _dt = op
            iid = issued[k % len(issued)] if issued else "none"
            units = to_units(amount)
            t = model.trades.get(iid)
            if units == 0:
                continue  # `risk_abs: 0` is refused before anything is looked at
            fits = t is not None and units <= t.filled
            if fits:
                model.advance(now)
                t = model.trades.get(iid)
            rec = ctl.close_position(iid, now, risk_abs=amount, realized_pnl=-amount)
            if t is not None and units <= t.filled:
                if units < t.filled:
                    t.filled -= units
                    assert rec["status"] == "reduced", rec
                else:
                    model.end(iid)  # the position ends at zero: the trade closes
                    assert rec["status"] == "closed", rec
            else:
                assert rec["seq"] is None and rec["before"] == rec["after"]
        else:
            model.advance(now)
            ctl.advance_time(now)
        assert observed(ctl) == model.aggregates(), f"after step {n}: {op}"
    # Back to flat: close whatever is left; every aggregate is exactly zero.
    for iid in list(model.trades):
        ctl.close_position(iid, now)
    state = ctl.state
    assert observed(ctl) == {}
    assert (state.active_risk, state.reserved_risk, state.heat) == (0.0, 0.0, 0.0)
    assert ctl.get_portfolio_state()["trades"] == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(OPS, min_size=1, max_size=150))
def test_aggregates_equal_what_the_events_imply_at_every_step(ops: list[tuple[Any, ...]]) -> None:
    """Random reserve / fill / cancel / expire / close sequences: at every step the
    integer aggregates equal the model's, mirrors match exactly, flat means zero."""
    run(ops)


def test_many_cycles_of_awkward_decimals_return_exactly_to_zero() -> None:
    """10,000 reserve / partial fill / fill / close cycles of 0.1 + 0.2 style amounts
    leave every aggregate exactly zero (a float accumulator would drift)."""
    ctl = PortfolioController(POLICY, equity=1_000_000)
    for n in range(10_000):
        ts = T0 + timedelta(seconds=n)
        d = ctl.request_allocation(
            {
                "intent_id": f"c{n}",
                "strategy": "AB"[n % 2],
                "symbol": "S1",
                "side": "long",
                "requested_risk_abs": 0.3,
                "timestamp": ts,
            }
        )
        assert d.approved_risk_abs == 0.3
        for fid, amount in (("a", 0.1), ("b", 0.2)):
            ctl.on_fill_update(
                {"intent_id": f"c{n}", "fill_id": fid, "filled_risk_abs": amount, "timestamp": ts}
            )
        if n % 3 == 0:
            continue  # keep every third open until the next cycle
        ctl.close_position(f"c{n}", ts)
        if n % 3 == 1:
            ctl.close_position(f"c{n - 1}", ts)
    ctl.close_position("c9999", T0 + timedelta(days=1))
    state = ctl.state
    assert (state.active_units, state.reserved_units, state.active_trades) == (0, 0, 0)
    assert (state.active_risk, state.reserved_risk, state.heat) == (0.0, 0.0, 0.0)
    assert all(b.is_zero() for b in state.symbols.values())


def test_clipped_amounts_stay_on_the_grid() -> None:
    """Clipping to a headroom like 0.9 - 0.7 reserves exactly 0.2 (on the 1e-6 grid)."""
    ctl = PortfolioController(POLICY, equity=1_000_000)
    base = {"strategy": "A", "symbol": "S1", "side": "long", "timestamp": T0}
    ctl.request_allocation({**base, "intent_id": "a", "requested_risk_abs": 0.7})
    d = ctl.request_allocation({**base, "intent_id": "b", "requested_risk_abs": 0.7})
    assert d.decision_code == "approved_clipped" and d.approved_risk_abs == 0.2
    assert ctl.state.symbols["S1"].reserved_units == 900_000
