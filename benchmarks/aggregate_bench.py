"""Aggregate windows' rows (issue 22 item 2, issue 19 item 3): what sums, mins, maxes and a
drawdown cost on the hot path and in replay.

- ``request_allocation``: a fresh controller per round decides (and reserves) 10,000 prebuilt
  intents on benchmarks/policy12.yaml with wide limits (the 12-rule baseline), and on the same
  policy plus six aggregate windows read by one rule: the max and the min of approved risk,
  the sum of requested risk, the drawdown and the min of closes' realized P&L and the sum of
  fills' fees. Interleaved rounds; the ratio is the median of per-round ratios.
- Replay: a trading day's journal (intents every 2 s, each filled with a fee and closed with
  a realized P&L) on the baseline and on that policy, replayed from memory; events per second.

Run: ``python benchmarks/aggregate_bench.py [--quick]`` (numbers on a shared machine vary).
"""

from __future__ import annotations

import argparse
import statistics
import sys
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


def aggregate_policy_text() -> str:
    """The wide 12-rule policy with the six aggregate windows and the rule reading them."""
    head, rules = wide_policy_text().split("\nrules:\n", 1)
    return f"{head}\n{WINDOWS}\nrules:\n{rules.rstrip()}\n{RULE}"


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
    times = rounds_of([base, agg], pool, 3 if args.quick else 7)
    labels = ("12-rule baseline", "+ six sum/min/max/drawdown windows read by a rule")
    for label, t in zip(labels, times, strict=True):
        ratio = statistics.median(x / y for x, y in zip(t, times[0], strict=True))
        print(f"request_allocation, {label}: {statistics.median(t) * 1e6:.2f} us ({ratio:.2f}x)")
    day = day_journal(2_000 if args.quick else 10_000)
    for n, event in enumerate(day):
        if event["type"] == "fill":
            event["fee"] = 0.25 + (n % 7) / 100
    for label, policy in (("the 12-rule baseline", base), ("using them", agg)):
        journal: list[dict[str, Any]] = []
        ctl = PortfolioController(policy, equity=1e9, journal=journal, clock=None)
        for event in day:
            ctl.apply(event)
        rate = replay_rate(journal)
        print(f"replay of a day, {label}: {len(journal)} events, {rate:,.0f} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
