"""Issue 22's rows: the language's new state on the hot path and in replay.

- ``request_allocation``: a fresh controller per round decides (and reserves) a pool of
  prebuilt intents, on benchmarks/policy12.yaml with wide limits (the 12-rule baseline) and
  on the same policy plus a daily counter (``over: trading_day``), a closed 1 s window, a
  window per a composite-key scope (``[intent.strategy, intent.side]``), a window of
  stoploss closes with a timed lock on it (a deferring rule reads it), each read by a rule;
  and that plus a rule with ``when_missing`` whose value is missing. Interleaved
  rounds; the ratio is the median of per-round ratios.
- Replay: a trading day's journal on that policy (intents, fills, closes with exit
  reasons, a rollover), replayed from memory; events per second.

Run: ``python benchmarks/lang_bench.py [--quick]`` (numbers on a shared machine vary).
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

EXTRA = """
trading_day: {timezone: UTC, rollover: "22:00"}
inputs:
  price: {type: number, default: null}
scopes:
  book: {key: [intent.strategy, intent.side]}
windows:
  orders_today: {count: approvals, per: strategy, over: trading_day}
  flow_1s: {count: approvals, per: portfolio, over: 1s, boundary: closed}
  book_1h: {count: approvals, per: book, over: 1h}
  stops_1h: {count: losing_closes, per: symbol, over: 1h, reason: stop_loss}
locks:
  cool: {window: stops_1h, at_least: 2, for: 30s, round_to: 5s}
"""
RULES = """
  - id: daily-orders
    require: strategy.orders_today < 1e12
  - id: flow
    require: portfolio.flow_1s < 1e12 and book.book_1h < 1e12 and symbol.stops_1h < 1e12
  - id: cooling
    require: not lock.cool
    on_reject: defer
"""
# A rule that steps aside when the price is missing: the generated chain cannot tell a
# missing value from a failure, so such an intent is decided by the reference interpreter.
MISSING = """
  - id: notional
    require: intent.price * 1 < 1e12
    when_missing: approve
"""


def language_policy_text(extra_rules: str = "") -> str:
    """The wide 12-rule policy with the new declarations and two rules reading them."""
    text = wide_policy_text()
    head, rules = text.split("\nrules:\n", 1)
    return f"{head}\n{EXTRA}\nrules:\n{rules.rstrip()}\n{RULES}{extra_rules}"


def rounds_of(policies: list[Any], pool: list[Any], rounds: int) -> list[list[float]]:
    from policy_engine.control.controller import PortfolioController

    out: list[list[float]] = [[] for _ in policies]
    for _ in range(rounds):
        for i, policy in enumerate(policies):  # interleaved: the same load for both
            ctl = PortfolioController(policy, equity=1e9)
            request = ctl.request_allocation
            start = time.perf_counter()
            for intent in pool:
                request(intent)
            out[i].append((time.perf_counter() - start) / len(pool))
    return out


def day_journal(n: int) -> list[dict[str, Any]]:
    """A day of events: intents every 2 s (spread over strategies and sides), a fill and a
    close (a third of them stoplosses) for every intent, crossing the 22:00 rollover."""
    t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for i in range(n):
        ts = t0 + timedelta(seconds=2 * i)
        iid = f"d-{i}"
        events.append(
            {
                "type": "intent",
                "intent_id": iid,
                "strategy": ("SCALPER", "MOMENTUM")[i % 2],
                "symbol": ("BTC-USD", "ETH-USD", "SOL-USD")[i % 3],
                "side": ("long", "short")[(i // 2) % 2],
                "requested_risk_abs": 10.0,
                "timestamp": ts.isoformat(),
            }
        )
        fill = {"type": "fill", "intent_id": iid, "fill_id": "f", "filled_risk_abs": 10.0}
        events.append({**fill, "timestamp": (ts + timedelta(seconds=1)).isoformat()})
        close: dict[str, Any] = {"type": "close", "intent_id": iid, "realized_pnl": -1.0}
        close["reason"] = "stop_loss" if i % 3 == 0 else "roi"
        events.append({**close, "timestamp": (ts + timedelta(seconds=1.5)).isoformat()})
    return events


def replay_rate(journal: list[dict[str, Any]]) -> float:
    """Events per second of the best of three replays of ``journal`` from memory."""
    from policy_engine.control.replay import replay

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _record in replay(journal):
            pass
        best = min(best, time.perf_counter() - start)
    return len(journal) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from policy_engine import load_policy_text
    from policy_engine.control.controller import PortfolioController

    logging.getLogger("policy_engine").setLevel(logging.ERROR)  # (fills of deferred intents)
    base = load_policy_text(wide_policy_text(), "wide-12.yaml")
    lang = load_policy_text(language_policy_text(), "lang.yaml")
    missing = load_policy_text(language_policy_text(MISSING), "missing.yaml")
    pool = intent_pool("lb", 2_000 if args.quick else 10_000)
    for policy in (base, lang, missing):
        first = PortfolioController(policy, equity=1e9).request_allocation(pool[0])
        assert first.decision_code == "approved_full", first
    times = rounds_of([base, lang, missing], pool, 3 if args.quick else 7)
    base_t = times[0]
    labels = (
        "12-rule baseline",
        "+ daily counter, closed, composite-key and reason windows, a lock",
        "+ the same and a when_missing rule, the value missing",
    )
    for label, t in zip(labels, times, strict=True):
        ratio = statistics.median(x / y for x, y in zip(t, base_t, strict=True))
        print(f"request_allocation, {label}: {statistics.median(t) * 1e6:.2f} us ({ratio:.2f}x)")
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(lang, equity=1e9, journal=journal, clock=None)
    for event in day_journal(2_000 if args.quick else 10_000):
        ctl.apply(event)
    rate = replay_rate(journal)
    print(f"replay of a day using them: {len(journal)} events, {rate:,.0f} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
