"""Issue 23's rows (items 1, 2, 5): order groups, modifies and balances on the hot path.

On the wide 12-rule policy (benchmarks/policy12.yaml, limits no pool reaches) plus a modify
rule reading a window of modifies, `currencies: [USD]` and a free-balance rule reading
`balance.quote.free`, a fresh controller per round (interleaved rounds; ratios are the
median of the per-round ratios to the first row):

- ``request_allocation`` of a prebuilt intent (the 12-rule baseline of this benchmark);
- ``request_group`` of a 3-order bracket (an entry and two reduce-only legs), per bracket;
- ``request_modify`` of a live order (its risk alternately 10 and 9: a shrink decided by the
  modify rule alone, then a growth decided by the intent and modify rules with the order
  taken out of the book), per modify;
- ``request_allocation`` of an intent with a notional in USD: the balance rule and the
  reservation's lock.

Run: ``python benchmarks/orders_bench.py [--quick]`` (numbers on a shared machine vary).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from controller_bench import intent_pool, wide_policy_text  # noqa: E402

EXTRA = """
currencies: [USD]
windows:
  modifies_1s: {count: modify_requests, per: portfolio, over: 1s}
"""
RULES = """
  - id: modify-rate
    applies_to: [modify]
    require: portfolio.modifies_1s < 1e12
  - id: free-balance
    when: has(intent.requested_notional_abs)
    require: intent.requested_notional_abs <= balance.quote.free
"""


def orders_policy_text() -> str:
    """The wide 12-rule policy with a modify rule and a balance rule."""
    head, rules = wide_policy_text().split("\nrules:\n", 1)
    return f"{head}\n{EXTRA}\nrules:\n{rules.rstrip()}\n{RULES}"


def brackets(count: int) -> list[tuple[str, list[dict[str, Any]]]]:
    ts = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    leg = {"strategy": "SCALPER", "symbol": "BTC-USD", "timestamp": ts, "reduce_only": True}
    out = []
    for i in range(count):
        entry = {"intent_id": f"b{i}", "strategy": "SCALPER", "symbol": "BTC-USD", "side": "long"}
        entry.update(requested_risk_abs=10.0, timestamp=ts)
        stop = {**leg, "intent_id": f"b{i}-sl", "side": "short", "requested_risk_abs": 10.0}
        take = {**leg, "intent_id": f"b{i}-tp", "side": "short", "requested_risk_abs": 10.0}
        out.append((f"g{i}", [entry, stop, take]))
    return out


def timed(run: Callable[[], int]) -> float:
    """Seconds per operation of ``run`` (which returns how many it made)."""
    start = time.perf_counter()
    n = run()
    return (time.perf_counter() - start) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from policy_engine import load_policy_text
    from policy_engine.control.controller import PortfolioController

    logging.getLogger("policy_engine").setLevel(logging.ERROR)
    policy = load_policy_text(orders_policy_text(), "orders.yaml")
    size = 1_000 if args.quick else 5_000
    pool = intent_pool("ob", size)
    groups = brackets(size // 3)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [(t0 + timedelta(microseconds=i)).isoformat() for i in range(size)]
    priced = [p.model_copy(update={"intent_id": f"p{i}"}) for i, p in enumerate(pool)]
    priced = [
        policy.intent_model.model_validate(
            {**p.model_dump(), "requested_notional_abs": 1.0, "quote_currency": "USD"}
        )
        for p in priced
    ]

    def fresh() -> Any:
        ctl = PortfolioController(policy, equity=1e9)
        ctl.update_balance("USD", 1e12, 0, t0.isoformat())
        return ctl

    first = fresh()
    assert first.request_allocation(pool[0]).decision_code == "approved_full"
    assert first.request_group(*groups[0])["approved"]
    assert first.request_modify(pool[0].intent_id, 9, stamps[1])["status"] == "modified"
    assert first.request_modify(pool[0].intent_id, 10, stamps[2])["status"] == "modified"
    assert first.request_allocation(priced[0]).decision_code == "approved_full"

    def allocate() -> int:
        request = fresh().request_allocation
        for intent in pool:
            request(intent)
        return len(pool)

    def group() -> int:
        request = fresh().request_group
        for gid, members in groups:
            request(gid, members)
        return len(groups)

    def modify() -> int:
        ctl = fresh()
        ctl.request_allocation(pool[0])
        request, iid = ctl.request_modify, pool[0].intent_id
        for i, ts in enumerate(stamps):
            request(iid, 9 if i % 2 == 0 else 10, ts)
        return len(stamps)

    def balance() -> int:
        request = fresh().request_allocation
        for intent in priced:
            request(intent)
        return len(priced)

    cases = [allocate, group, modify, balance]
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(3 if args.quick else 7):
        for i, case in enumerate(cases):  # interleaved: the same load for each
            times[i].append(timed(case))
    labels = (
        "request_allocation, 12-rule baseline (+ a modify rule, a balance rule)",
        "request_group, a 3-order bracket (per bracket)",
        "request_modify, shrink and grow in turn (per modify)",
        "request_allocation with a notional in USD (balance rule, lock)",
    )
    for label, t in zip(labels, times, strict=True):
        ratio = statistics.median(x / y for x, y in zip(t, times[0], strict=True))
        print(f"{label}: {statistics.median(t) * 1e6:.2f} us ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
