"""Controller cases of benchmarks/run.py: request_allocation, journal replay, memory.

- ``request_allocation``: a fresh controller per round decides (and reserves) a pool of
  prebuilt intents on the 12-rule policy with limits wide enough that every intent
  runs the whole chain and is approved; interleaved with the hand-written baseline.
- ``on_fill_update``, ``close_position``, ``cancel_reservation``: the same pool reserved
  (untimed), then one fill per trade, then one close per trade (timed separately); and
  in another controller one cancel per reservation. Fills are prebuilt ``FillUpdate``
  models, as an execution ledger in the same process would hand them over.
- Replay: a synthetic JSONL journal (intent, fill, close, and equity updates) opened
  by the policy event a real controller writes. The ratio compares ``replay(path)``
  with ``replay(events)`` on the same events already parsed in memory, in one
  process; the full journal then streams in a fresh process (throughput and peak RSS,
  at the full size and at a quarter of it, to show memory stays flat).
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def widened(path: Path, replacements: tuple[tuple[str, str], ...]) -> str:
    """The policy at ``path`` with these limits replaced (each must be there)."""
    text = path.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


def wide_policy_text() -> str:
    """benchmarks/policy12.yaml with limits no pool of intents reaches."""
    return widened(
        HERE / "policy12.yaml",
        (
            ("heat_cap: 6%", "heat_cap: 50%"),
            ("symbol_cap: 1_500", "symbol_cap: 1e12"),
            ("cohort_cap: 2_500", "cohort_cap: 1e12"),
            ("max_positions: 5", "max_positions: 1e12"),
            ("max_trades: 2, budget: 1_000", "max_trades: 1_000_000_000, budget: 1e12"),
        ),
    )


def run(
    row: Any,
    fails: list[str],
    args: Any,
    rounds: int,
    target: float,
    ai: Any,
    asnap: Any,
    baseline: Any,
) -> None:
    from policy_engine import PortfolioIntent, load_policy_text
    from policy_engine.control.controller import PortfolioController

    sys.path.insert(0, str(HERE))

    logging.getLogger("policy_engine").setLevel(logging.WARNING)  # no INFO lines built
    policy = load_policy_text(wide_policy_text(), "wide-12.yaml")
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    pool_size = 5_000 if args.quick else 20_000
    pool = [
        PortfolioIntent(
            intent_id=f"ra-{i}",
            strategy="SCALPER",
            symbol="BTC-USD",
            side="long",
            requested_risk_abs=10.0,
            timestamp=ts,
        )
        for i in range(pool_size)
    ]
    probe = PortfolioController(policy, equity=1e9)
    first = probe.request_allocation(pool[0])
    assert first.approved and first.decision_code == "approved_full", first

    ctl_t, base_t, _ctl = request_rounds(policy, pool, rounds, ai, asnap, baseline)
    ratio = statistics.median(c / b for c, b in zip(ctl_t, base_t, strict=True))
    ok = ratio <= 12
    if not ok:
        fails.append("request_allocation")
    row(
        "request_allocation (evaluate+reserve+decision+record)",
        f"{statistics.median(ctl_t) * 1e6:.2f} us",
        f"{ratio:.2f}x",
        f"target <= 12x {'ok' if ok else 'MISSED'}",
    )

    day_trading_row(row, args, rounds, ai, asnap, baseline)
    lifecycle_rows(row, args, rounds, policy, pool, ai, asnap, baseline)
    replay_rows(row, fails, args, policy)


def request_rounds(
    policy: Any, pool: list[Any], rounds: int, ai: Any, asnap: Any, baseline: Any
) -> tuple[list[float], list[float], Any]:
    """Per round, the baseline over the pool, then a fresh controller deciding the pool:
    (seconds per request, seconds per baseline call, the last controller)."""
    from policy_engine.control.controller import PortfolioController

    sys.path.insert(0, str(HERE))
    from run import CLOCK

    n = len(pool)
    base_t: list[float] = []
    ctl_t: list[float] = []
    ctl: Any = None
    for _ in range(rounds):
        t0 = CLOCK()
        for _x in pool:
            baseline(ai, asnap)
        base_t.append((CLOCK() - t0) / n)
        ctl = PortfolioController(policy, equity=1e9)  # the live default: the wall clock
        request = ctl.request_allocation
        t0 = CLOCK()
        for x in pool:
            request(x)
        ctl_t.append((CLOCK() - t0) / n)
    return ctl_t, base_t, ctl


def wide_day_trading_text() -> str:
    """policies/day_trading.yaml with limits no pool of intents reaches (every constraint
    still evaluated, every window, scope bucket and latch still kept)."""
    return widened(
        ROOT / "policies" / "day_trading.yaml",
        (
            ("trades_per_hour: 3", "trades_per_hour: 1e12"),
            ("cohort_net_cap: 3_000", "cohort_net_cap: 1e12"),
            ("heat_cap: 5%", "heat_cap: 50%"),
            ("max_positions: 8", "max_positions: 1e12"),
            ("SCALPER: {max_trades: 3}", "SCALPER: {max_trades: 1_000_000_000}"),
            ("BINANCE: {cap: 4_000}", "BINANCE: {cap: 1e12}"),
        ),
    )


def day_trading_row(row: Any, args: Any, rounds: int, ai: Any, asnap: Any, baseline: Any) -> None:
    """request_allocation on the day-trading policy: windows counted, a scope bucket and the
    side split kept, the latch evaluated after every intent."""
    from policy_engine import load_policy_text

    sys.path.insert(0, str(HERE))

    policy = load_policy_text(wide_day_trading_text(), "wide-day-trading.yaml")
    ts = datetime(2026, 1, 6, 15, tzinfo=UTC)  # Tuesday 10:00 in New York
    n = 5_000 if args.quick else 20_000
    pool = [
        policy.intent_model.model_validate(
            {
                "intent_id": f"dt-{i}",
                "strategy": "SCALPER",
                "symbol": "BTC-USD",
                "side": "long",
                "requested_risk_abs": 10.0,
                "venue": "BINANCE",
                "timestamp": ts,
            }
        )
        for i in range(n)
    ]
    ctl_t, base_t, ctl = request_rounds(policy, pool, rounds, ai, asnap, baseline)
    assert ctl.state.strategies["SCALPER"].windows["trades_1h"] == n
    ratio = statistics.median(c / b for c, b in zip(ctl_t, base_t, strict=True))
    row(
        "request_allocation, day_trading.yaml (windows, latch, scope counted)",
        f"{statistics.median(ctl_t) * 1e6:.2f} us",
        f"{ratio:.2f}x",
        "",
    )


def lifecycle_rows(
    row: Any,
    args: Any,
    rounds: int,
    policy: Any,
    pool: list[Any],
    ai: Any,
    asnap: Any,
    baseline: Any,
) -> None:
    """Fill, close and cancel, each over the whole pool, interleaved with the baseline."""
    from policy_engine import PortfolioController

    sys.path.insert(0, str(HERE))
    from run import CLOCK

    try:
        from policy_engine.control.events import FillUpdate
    except ImportError:  # an older tree, for before/after comparisons
        from policy_engine.controller import FillUpdate  # type: ignore[no-redef]

    n = len(pool)
    ts = pool[0].timestamp
    fills = [
        FillUpdate(
            intent_id=x.intent_id, fill_id=f"f-{x.intent_id}", filled_risk_abs=10.0, timestamp=ts
        )
        for x in pool
    ]
    ids = [x.intent_id for x in pool]
    times: dict[str, list[float]] = {"base": [], "fill": [], "close": [], "cancel": []}
    for _ in range(rounds):
        t0 = CLOCK()
        for _x in pool:
            baseline(ai, asnap)
        times["base"].append((CLOCK() - t0) / n)
        ctl = PortfolioController(policy, equity=1e9)
        for x in pool:
            ctl.request_allocation(x)
        fill = ctl.on_fill_update
        t0 = CLOCK()
        for f in fills:
            fill(f)
        times["fill"].append((CLOCK() - t0) / n)
        close = ctl.close_position
        t0 = CLOCK()
        for iid in ids:
            close(iid, ts)
        times["close"].append((CLOCK() - t0) / n)
        assert ctl.get_portfolio_state()["totals"]["active_trades"] == 0
        ctl = PortfolioController(policy, equity=1e9)
        for x in pool:
            ctl.request_allocation(x)
        cancel = ctl.cancel_reservation
        t0 = CLOCK()
        for iid in ids:
            cancel(iid, ts)
        times["cancel"].append((CLOCK() - t0) / n)
        assert ctl.get_portfolio_state()["totals"]["reserved_risk"] == 0
    for key, label in (
        ("fill", "on_fill_update (commit a fill; FillUpdate model)"),
        ("close", "close_position (release active risk and the slot)"),
        ("cancel", "cancel_reservation (release the unfilled remainder)"),
    ):
        ratio = statistics.median(c / b for c, b in zip(times[key], times["base"], strict=True))
        row(label, f"{statistics.median(times[key]) * 1e6:.2f} us", f"{ratio:.2f}x", "")


# --- replay ------------------------------------------------------------------------------

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "AVAX-USD", "LINK-USD")
STRATEGIES = ("SCALPER", "MOMENTUM")


def write_journal(path: Path, n_events: int) -> int:
    """A journal of ``n_events`` events after the controller's own opening events."""
    from policy_engine import load_policy
    from policy_engine.control.controller import PortfolioController

    head: list[dict[str, Any]] = []
    PortfolioController(load_policy(HERE / "policy12.yaml"), equity=100_000.0, journal=head)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    written = 0
    with path.open("w", encoding="utf-8") as f:
        for event in head:
            f.write(json.dumps(event, separators=(",", ":")) + "\n")
        i = 0
        while written < n_events:
            stamp = (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
            iid = f"i{i}"
            events: list[dict[str, Any]] = [
                {
                    "type": "intent",
                    "intent_id": iid,
                    "strategy": STRATEGIES[i % 2],
                    "symbol": SYMBOLS[i % len(SYMBOLS)],
                    "side": "long",
                    "requested_risk_abs": 100.0 + (i % 7) * 50,
                    "timestamp": stamp,
                },
                {
                    "type": "fill",
                    "intent_id": iid,
                    "fill_id": f"f{i}",
                    "filled_risk_abs": 100.0,
                    "timestamp": stamp,
                },
                {"type": "close", "intent_id": iid, "timestamp": stamp},
            ]
            if i % 50 == 49:
                events.append(
                    {"type": "equity", "equity": 100_000.0 - (i % 1000), "timestamp": stamp}
                )
            for event in events[: n_events - written]:
                f.write(json.dumps(event, separators=(",", ":")) + "\n")
                written += 1
            i += 1
    return written + len(head)


RATIO_SCRIPT = textwrap.dedent(
    """
    import statistics, sys, time
    sys.path.insert(0, {root!r})
    from policy_engine.control.journal import read_events
    from policy_engine.control.replay import replay
    path, rounds = sys.argv[1], int(sys.argv[2])
    events = list(read_events(path))
    n = len(events)
    mem, disk = [], []
    for _ in range(rounds):
        t0 = time.thread_time()
        a = sum(1 for _ in replay(events))
        mem.append(time.thread_time() - t0)
        t0 = time.thread_time()
        b = sum(1 for _ in replay(path))
        disk.append(time.thread_time() - t0)
        assert a == b
    print(n, statistics.median(mem), statistics.median(disk),
          statistics.median(d / m for d, m in zip(disk, mem)))
    """
)

STREAM_SCRIPT = textwrap.dedent(
    """
    import resource, sys, time
    sys.path.insert(0, {root!r})
    from policy_engine.control.replay import replay
    t0 = time.perf_counter()
    decisions = sum(1 for _ in replay(sys.argv[1]))
    wall = time.perf_counter() - t0
    print(decisions, wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """
)


def replay_rows(row: Any, fails: list[str], args: Any, policy: Any) -> None:
    n_full = args.events or (100_000 if args.quick else 1_000_000)
    n_ratio = min(n_full, 20_000 if args.quick else 60_000)
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "ratio.jsonl"
        total = write_journal(small, n_ratio)
        out = subprocess.run(
            [sys.executable, "-c", RATIO_SCRIPT.format(root=str(ROOT)), str(small), "3"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        n, mem, disk, ratio = int(out[0]), float(out[1]), float(out[2]), float(out[3])
        ok = ratio <= 2.0
        if not ok:
            fails.append("replay vs in-memory")
        row(
            f"replay(path) vs replay(parsed events), {n:,} events",
            f"{n / disk:,.0f} ev/s",
            f"{ratio:.2f}x",
            f"target <= 2x {'ok' if ok else 'MISSED'} (in memory {n / mem:,.0f} ev/s)",
        )
        _ = total
        rss: list[float] = []
        for size in (n_full // 4, n_full):
            path = Path(tmp) / f"journal-{size}.jsonl"
            events = write_journal(path, size)
            out = subprocess.run(
                [sys.executable, "-c", STREAM_SCRIPT.format(root=str(ROOT)), str(path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            decisions, wall, peak = int(out[0]), float(out[1]), float(out[2])
            rss.append(peak)
            path.unlink()
            ok = peak < 150
            if size == n_full and not ok:
                fails.append("replay memory")
            row(
                f"replay of a {events:,}-event journal (fresh process)",
                f"{events / wall:,.0f} ev/s",
                "",
                f"{decisions:,} decisions in {wall:.1f} s; peak RSS {peak:.0f} MB"
                + (f" (target < 150 MB {'ok' if ok else 'MISSED'})" if size == n_full else ""),
            )
        row(
            "replay memory growth, 4x the events",
            f"{rss[1] - rss[0]:+.0f} MB",
            "",
            "flat" if rss[1] - rss[0] < 20 else "GROWS",
        )
