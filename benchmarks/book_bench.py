"""Issue 23's rows (items 6 and 4): notional on the hot path, and marks while deciding.

- ``request_allocation``: a fresh controller per round decides (and reserves) a pool of
  prebuilt intents on benchmarks/policy12.yaml with wide limits (the 12-rule baseline, no
  notional), the same intents carrying a notional (reserved in every bucket), and those on
  the policy plus a gross-notional cap that counts pending orders (NautilusTrader 4419:
  ``portfolio.gross_notional + intent.notional <= 3 * portfolio.equity``). Interleaved
  rounds; the ratio is the median of per-round ratios.
- Marks while deciding: a controller holding priced positions in one symbol (1, then 50 of
  them) takes ``MARKS_PER_DECISION`` marks of that symbol between consecutive decisions
  (each decision reserves, on the notional-capped policy). Reported: marks per second
  sustained (marks over the time the marks took, with decisions interleaved), the cost of
  one mark, and the decision's cost next to those marks against the same decisions with no
  marks (the same rounds, interleaved).

Run: ``python benchmarks/book_bench.py [--quick]`` (numbers on a shared machine vary).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from controller_bench import intent_pool, wide_policy_text  # noqa: E402

CAP = """
  - id: gross-exposure
    require: portfolio.gross_notional + intent.notional <= 3 * portfolio.equity
"""
MARKS_PER_DECISION = 10
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def capped_policy_text() -> str:
    return wide_policy_text().rstrip() + "\n" + CAP


def with_notional(pool: list[Any]) -> list[Any]:
    return [x.model_copy(update={"requested_notional_abs": 1_000.0}) for x in pool]


def decide_rounds(cases: list[tuple[Any, list[Any]]], rounds: int) -> list[list[float]]:
    from policy_engine.control.controller import PortfolioController

    out: list[list[float]] = [[] for _ in cases]
    for _ in range(rounds):
        for i, (policy, pool) in enumerate(cases):  # interleaved: the same load for all
            request = PortfolioController(policy, equity=1e9).request_allocation
            start = time.perf_counter()
            for intent in pool:
                request(intent)
            out[i].append((time.perf_counter() - start) / len(pool))
    return out


def holding(policy: Any, positions: int) -> Any:
    """A controller with ``positions`` priced positions in BTC-USD."""
    from policy_engine.control.controller import PortfolioController

    ctl = PortfolioController(policy, equity=1e9, clock=None)
    for i in range(positions):
        iid = f"held-{i}"
        opened = {"intent_id": iid, "strategy": "SCALPER", "symbol": "BTC-USD", "side": "long"}
        opened |= {"requested_risk_abs": 10.0, "requested_notional_abs": 1_000.0}
        assert ctl.request_allocation({**opened, "timestamp": T0}).approved
        fill = {"intent_id": iid, "fill_id": "f", "filled_risk_abs": 10.0, "price": 100.0}
        ctl.on_fill_update({**fill, "timestamp": T0})
    return ctl


def marks_round(policy: Any, pool: list[Any], positions: int, marks: bool) -> tuple[float, float]:
    """(seconds per decision, seconds per mark) over the pool, with MARKS_PER_DECISION
    marks between decisions when ``marks``."""
    ctl = holding(policy, positions)
    request, mark = ctl.request_allocation, ctl.mark
    stamps = [T0 + timedelta(microseconds=i) for i in range(MARKS_PER_DECISION)]
    prices = [100.0 + (i % 7) for i in range(MARKS_PER_DECISION)]
    deciding = marking = 0.0
    clock = time.perf_counter
    for intent in pool:
        if marks:
            start = clock()
            for ts, price in zip(stamps, prices, strict=True):
                mark("BTC-USD", price, ts)
            marking += clock() - start
        start = clock()
        request(intent)
        deciding += clock() - start
    n = len(pool)
    return deciding / n, (marking / (n * MARKS_PER_DECISION) if marks else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from policy_engine import load_policy_text

    logging.getLogger("policy_engine").setLevel(logging.ERROR)
    base = load_policy_text(wide_policy_text(), "wide-12.yaml")
    capped = load_policy_text(capped_policy_text(), "capped.yaml")
    size = 2_000 if args.quick else 10_000
    pool = intent_pool("bb", size)
    priced = with_notional(pool)
    rounds = 3 if args.quick else 7
    times = decide_rounds([(base, pool), (base, priced), (capped, priced)], rounds)
    labels = (
        "12-rule baseline",
        "the same intents carrying a notional (reserved in every bucket)",
        "+ a gross-notional cap counting pending orders",
    )
    for label, t in zip(labels, times, strict=True):
        ratio = statistics.median(x / y for x, y in zip(t, times[0], strict=True))
        print(f"request_allocation, {label}: {statistics.median(t) * 1e6:.2f} us ({ratio:.2f}x)")
    small = with_notional(intent_pool("mk", size // 5))
    for positions in (1, 50):
        plain, with_marks, per_mark = [], [], []
        for _ in range(rounds):
            plain.append(marks_round(capped, small, positions, False)[0])
            decision, mark = marks_round(capped, small, positions, True)
            with_marks.append(decision)
            per_mark.append(mark)
        m = statistics.median(per_mark)
        ratio = statistics.median(x / y for x, y in zip(with_marks, plain, strict=True))
        print(
            f"marks on a symbol holding {positions} priced position(s), {MARKS_PER_DECISION} "
            f"per decision: {m * 1e6:.2f} us a mark, {1 / m:,.0f} marks/s sustained; "
            f"a decision among them {statistics.median(with_marks) * 1e6:.2f} us "
            f"({ratio:.2f}x the same decisions without marks)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
