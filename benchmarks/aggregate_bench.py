"""Aggregate windows' rows (issue 22 item 2, issue 19 item 3): what sums, mins, maxes and a
drawdown cost on the hot path and in replay.

- ``request_allocation``: a fresh controller per round decides (and reserves) 10,000 prebuilt
  intents on benchmarks/policy12.yaml with wide limits (the 12-rule baseline), and on the same
  policy plus six aggregate windows read by one rule: the max and the min of approved risk,
  the sum of requested risk, the drawdown and the min of closes' realized P&L and the sum of
  fills' fees. Interleaved rounds; the ratio is the median of per-round ratios.
- Fills' notional: intents with a notional (400 for 10 of risk), each decided by
  ``request_allocation`` and then half filled (``on_fill_update``, a prebuilt fill), on the
  baseline and on it plus a sum of fills' notional per symbol read by one rule (every fill
  moves its share into the window); the time of the pair, interleaved rounds as above.
- Replay: a trading day's journal (intents every 2 s, each filled with a fee and closed with
  a realized P&L) on the baseline and on that policy, replayed from memory; events per second;
  then the day with a notional on every intent, on the baseline and with the fills-notional
  window (every fill and close carries a notional).

Run: ``python benchmarks/aggregate_bench.py [--quick]`` (numbers on a shared machine vary).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from controller_bench import intent_pool, wide_policy_text  # noqa: E402
from lang_bench import day_journal, replay_rate, rounds_of  # noqa: E402

WINDOWS = """
windows:
  risk_max_1h: {count: approvals, per: strategy, over: 1h, max: risk}
  risk_min_1h: {count: approvals, per: symbol, over: 1h, min: risk}
  asked_1h: {count: requests, per: portfolio, over: 1h, sum: risk}
  pnl_fall_1h: {count: closes, per: strategy, over: 1h, drawdown: realized_pnl}
  pnl_min_1h: {count: closes, per: symbol, over: 1h, min: realized_pnl}
  fees_1h: {count: fills, per: strategy, over: 1h, sum: fee}
"""
RULE = """
  - id: aggregates
    require: strategy.risk_max_1h < 1e12 and symbol.risk_min_1h < 1e12
      and portfolio.asked_1h < 1e15 and strategy.pnl_fall_1h < 1e12
      and symbol.pnl_min_1h > -1e12 and strategy.fees_1h < 1e12
"""
TRADED = """
windows:
  traded_1h: {count: fills, per: symbol, over: 1h, sum: notional}
"""
TRADED_RULE = """
  - id: traded
    require: symbol.traded_1h < 1e15
"""


def aggregate_policy_text(windows: str = WINDOWS, rule: str = RULE) -> str:
    """The wide 12-rule policy with ``windows`` and the ``rule`` reading them (by default
    the six aggregate windows)."""
    head, rules = wide_policy_text().split("\nrules:\n", 1)
    return f"{head}\n{windows}\nrules:\n{rules.rstrip()}\n{rule}"


def fill_rounds(policies: list[Any], pool: list[Any], rounds: int) -> list[list[float]]:
    """Per policy and round: the time of one decision and one (half) fill of its intent."""
    from policy_engine.control.controller import PortfolioController
    from policy_engine.control.fields import FillUpdate

    fills = [
        FillUpdate(
            intent_id=i.intent_id,
            fill_id="f",
            filled_risk_abs=i.requested_risk_abs / 2,
            timestamp=i.timestamp,
        )
        for i in pool
    ]
    out: list[list[float]] = [[] for _ in policies]
    for _ in range(rounds):
        for n, policy in enumerate(policies):  # interleaved: the same load for both
            ctl = PortfolioController(policy, equity=1e9)
            request, on_fill = ctl.request_allocation, ctl.on_fill_update
            start = time.perf_counter()
            for intent, fill in zip(pool, fills, strict=True):
                request(intent)
                on_fill(fill)
            out[n].append((time.perf_counter() - start) / len(pool))
    return out


def report(labels: tuple[str, ...], times: list[list[float]], what: str) -> None:
    for label, t in zip(labels, times, strict=True):
        ratio = statistics.median(x / y for x, y in zip(t, times[0], strict=True))
        print(f"{what}, {label}: {statistics.median(t) * 1e6:.2f} us ({ratio:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from policy_engine import load_policy_text
    from policy_engine.control.controller import PortfolioController

    base = load_policy_text(wide_policy_text(), "wide-12.yaml")
    agg = load_policy_text(aggregate_policy_text(), "aggregates.yaml")
    pool = intent_pool("ab", 2_000 if args.quick else 10_000)
    for policy in (base, agg):
        first = PortfolioController(policy, equity=1e9).request_allocation(pool[0])
        assert first.decision_code == "approved_full", first
    rounds = 3 if args.quick else 7
    times = rounds_of([base, agg], pool, rounds)
    labels = ("12-rule baseline", "+ six sum/min/max/drawdown windows read by a rule")
    report(labels, times, "request_allocation")
    traded = load_policy_text(aggregate_policy_text(TRADED, TRADED_RULE), "traded.yaml")
    priced = [i.model_copy(update={"requested_notional_abs": 400.0}) for i in pool]
    probe = PortfolioController(traded, equity=1e9)
    probe.request_allocation(priced[0])
    half = {"intent_id": priced[0].intent_id, "fill_id": "f", "filled_risk_abs": 5.0}
    assert probe.on_fill_update({**half, "timestamp": "2026-01-01T00:00:00Z"})["status"] == (
        "committed"
    )
    assert probe.state.symbols["BTC-USD"].windows == {"traded_1h": 200.0}  # its half
    times = fill_rounds([base, traded], priced, rounds)
    labels = ("12-rule baseline", "+ a sum of fills' notional read by a rule")
    report(labels, times, "request_allocation + a fill, intents with a notional")
    day = day_journal(2_000 if args.quick else 10_000)
    for n, event in enumerate(day):
        if event["type"] == "fill":
            event["fee"] = 0.25 + (n % 7) / 100
    noted = [{**e, "requested_notional_abs": 400.0} if e["type"] == "intent" else e for e in day]
    for label, policy, events in (
        ("the 12-rule baseline", base, day),
        ("using them", agg, day),
        ("with a notional, the 12-rule baseline", base, noted),
        ("with a notional, a sum of fills' notional", traded, noted),
    ):
        journal: list[dict[str, Any]] = []
        ctl = PortfolioController(policy, equity=1e9, journal=journal, clock=None)
        for event in events:
            ctl.apply(event)
        rate = replay_rate(journal)
        print(f"replay of a day, {label}: {len(journal)} events, {rate:,.0f} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
