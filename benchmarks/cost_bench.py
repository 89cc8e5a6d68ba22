"""Issue 18's cost rows of benchmarks/run.py: what the live controller costs around its rules.

- ``request_allocation + cancel_reservation``: a fresh controller per round decides a
  pool of prebuilt ``PortfolioIntent``s (fresh intent ids, the wide 12-rule policy:
  every intent runs the whole chain and is approved) and cancels each reservation right
  after; per pair, against the hand-written 12-check ``if`` chain over plain dicts
  (``dict_baseline`` in run.py), interleaved in the same rounds.
- The same pairs with a journal file written with durability ``off`` (no fsync: the
  disk's noise stays out; every line is still serialised, hash-chained and written),
  against the same pairs without a journal, interleaved in the same rounds.
- Group commit: ``request_allocation`` with durability ``event`` (an fdatasync before
  any call returns) from 8 threads against 1 thread, decisions per second of wall time
  (a sync is waiting, not computing), 3 interleaved rounds, median of the ratios.
- With ``--cost-only`` also the issue's other two rows: ``request_allocation`` with
  ``ControlMetrics`` against without (``controller_bench.metrics_rows``), and on
  ``day_trading.yaml`` against the 12-rule policy (interleaved, fresh controllers).

CPU time of the thread (``run.CLOCK``), the collector paused while timing as timeit does.
"""

from __future__ import annotations

import gc
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def pairs(policy: Any, pool: list[Any], journal: Path | None, cancel: bool = True) -> float:
    """Seconds per request_allocation + cancel_reservation pair on a fresh controller
    (without ``cancel``: per request_allocation alone)."""
    from policy_engine import PortfolioController

    sys.path.insert(0, str(HERE))
    from run import CLOCK

    options: dict[str, Any] = {}
    if journal is not None:
        journal.unlink(missing_ok=True)
        options = {"journal": str(journal), "durability": "off"}
    ctl = PortfolioController(policy, equity=1e9, **options)
    request, release = ctl.request_allocation, ctl.cancel_reservation
    gc.collect()
    gc.disable()
    try:
        t0 = CLOCK()
        if cancel:
            for x in pool:
                request(x)
                release(x.intent_id)
        else:
            for x in pool:
                request(x)
        spent = CLOCK() - t0
    finally:
        gc.enable()
        ctl.close()
    return spent / len(pool)


def base(pool: list[Any], intent: dict[str, Any], snap: dict[str, Any]) -> float:
    """Seconds per call of the dict baseline, over as many calls as the pool has intents."""
    sys.path.insert(0, str(HERE))
    from run import CLOCK, dict_baseline

    gc.collect()
    gc.disable()
    try:
        t0 = CLOCK()
        for _x in pool:
            dict_baseline(intent, snap)
        spent = CLOCK() - t0
    finally:
        gc.enable()
    return spent / len(pool)


def threaded(policy: Any, pool: list[Any], threads: int, journal: Path) -> float:
    """Decisions per second of wall time: ``threads`` threads share the pool on one
    controller whose journal syncs every line before its call returns."""
    from policy_engine import PortfolioController

    journal.unlink(missing_ok=True)
    ctl = PortfolioController(policy, equity=1e9, journal=str(journal), durability="event")
    share = len(pool) // threads
    parts = [pool[i * share : (i + 1) * share] for i in range(threads)]

    def decide(part: list[Any]) -> None:
        for x in part:
            ctl.request_allocation(x)

    workers = [threading.Thread(target=decide, args=(part,)) for part in parts]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    spent = time.perf_counter() - t0
    ctl.close()
    return share * threads / spent


def group_commit(row: Any, fails: list[str], args: Any, policy: Any) -> None:
    from controller_bench import intent_pool

    one: list[float] = []
    eight: list[float] = []
    with tempfile.TemporaryDirectory(dir=HERE.parent) as tmp:  # a real disk, not tmpfs
        path = Path(tmp) / "group.jsonl"
        for i in range(3):
            pool = intent_pool(f"g{i}", 400 if args.quick else 800)
            for n in (1, 8) if i % 2 == 0 else (8, 1):
                (one if n == 1 else eight).append(threaded(policy, pool, n, path))
    ratio = statistics.median(e / o for e, o in zip(eight, one, strict=True))
    ok = ratio >= 4
    if not ok:
        fails.append("durability event: 8 threads vs 1")
    row(
        "durability event (group commit): 8 threads vs 1",
        f"{statistics.median(eight):,.0f}/s",
        f"{ratio:.2f}x",
        f"1 thread {statistics.median(one):,.0f} decisions/s; wall time; "
        f"target >= 4x {'ok' if ok else 'MISSED'}",
    )


def day_trading(row: Any, fails: list[str], args: Any, rounds: int, wide: Any) -> None:
    """request_allocation on day_trading.yaml (limits widened: every constraint evaluated,
    every window, scope bucket and latch kept) against the wide 12-rule policy, the two
    interleaved in the same rounds, a fresh controller each; median of the ratios."""
    from controller_bench import day_pool, intent_pool, wide_day_trading_text

    from policy_engine import load_policy_text

    day = load_policy_text(wide_day_trading_text(), "wide-day-trading.yaml")
    n = 5_000 if args.quick else 20_000
    day_t: list[float] = []
    wide_t: list[float] = []
    for i in range(rounds):
        day_pool_i, wide_pool_i = day_pool(day, f"dt{i}", n), intent_pool(f"w{i}", n)
        for case in (0, 1) if i % 2 == 0 else (1, 0):
            if case == 0:
                day_t.append(pairs(day, day_pool_i, None, cancel=False))
            else:
                wide_t.append(pairs(wide, wide_pool_i, None, cancel=False))
    ratio = statistics.median(d / w for d, w in zip(day_t, wide_t, strict=True))
    ok = ratio <= 2
    if not ok:
        fails.append("request_allocation day_trading.yaml vs 12 rules")
    row(
        "request_allocation, day_trading.yaml vs the 12-rule policy",
        f"{statistics.median(day_t) * 1e6:.2f} us",
        f"{ratio:.2f}x",
        f"12 rules {statistics.median(wide_t) * 1e6:.2f} us; target <= 2x {'ok' if ok else 'MISSED'}",
    )


def run(row: Any, fails: list[str], args: Any, rounds: int, ai: Any, asnap: Any) -> None:
    from policy_engine import load_policy_text

    sys.path.insert(0, str(HERE))
    from controller_bench import intent_pool, wide_policy_text
    from run import as_dicts

    logging.getLogger("policy_engine").setLevel(logging.WARNING)  # no INFO lines built
    policy = load_policy_text(wide_policy_text(), "wide-12.yaml")
    pool = intent_pool("cost", 5_000 if args.quick else 20_000)
    intent, snap = as_dicts(ai, asnap)
    plain: list[float] = []
    journaled: list[float] = []
    baseline: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cost.jsonl"
        for i in range(rounds):
            order = (0, 1, 2) if i % 2 == 0 else (2, 1, 0)
            for case in order:
                if case == 0:
                    baseline.append(base(pool, intent, snap))
                elif case == 1:
                    plain.append(pairs(policy, pool, None))
                else:
                    journaled.append(pairs(policy, pool, path))
    ratio = statistics.median(p / b for p, b in zip(plain, baseline, strict=True))
    ok = ratio <= 15
    if not ok:
        fails.append("request_allocation + cancel_reservation vs dict baseline")
    row(
        "request_allocation + cancel_reservation vs dict if chain",
        f"{statistics.median(plain) * 1e6:.2f} us",
        f"{ratio:.2f}x",
        f"dict baseline {statistics.median(baseline) * 1e6:.2f} us; "
        f"target <= 15x {'ok' if ok else 'MISSED'}",
    )
    cost = statistics.median(j / p for j, p in zip(journaled, plain, strict=True))
    ok = cost <= 1.5
    if not ok:
        fails.append("journal durability off vs no journal")
    row(
        "  the same with a journal file (durability off) vs none",
        f"{statistics.median(journaled) * 1e6:.2f} us",
        f"{cost:.2f}x",
        f"target <= 1.5x {'ok' if ok else 'MISSED'}",
    )
    group_commit(row, fails, args, policy)
    if args.cost_only:  # (a full run has these rows among the controller's)
        from controller_bench import metrics_rows

        metrics_rows(row, fails, rounds, policy, pool)
        day_trading(row, fails, args, rounds, policy)
