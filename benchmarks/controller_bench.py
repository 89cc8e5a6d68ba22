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

import gc
import itertools
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
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
    from policy_engine import load_policy_text
    from policy_engine.control.controller import PortfolioController

    sys.path.insert(0, str(HERE))

    logging.getLogger("policy_engine").setLevel(logging.WARNING)  # no INFO lines built
    policy = load_policy_text(wide_policy_text(), "wide-12.yaml")
    pool_size = 5_000 if args.quick else 20_000
    pool = intent_pool("ra", pool_size)
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
    metrics_rows(row, fails, rounds, policy, pool)
    day_trading_row(row, args, rounds, ai, asnap, baseline)
    lifecycle_rows(row, args, rounds, policy, pool, ai, asnap, baseline)
    journal_rows(row, fails, args)


def journal_rows(row: Any, fails: list[str], args: Any) -> None:
    """Replay throughput, durability cost and recovery (`run.py --journal-only` runs just
    these)."""
    from policy_engine import load_policy_text

    sys.path.insert(0, str(HERE))
    import journal_bench

    logging.getLogger("policy_engine").setLevel(logging.WARNING)
    policy = load_policy_text(wide_policy_text(), "wide-12.yaml")
    pool = intent_pool("fs", 5_000 if args.quick else 20_000)
    replay_rows(row, fails, args, policy)
    journal_bench.run(row, fails, args, policy, pool)


def intent_pool(prefix: str, size: int) -> list[Any]:
    """``size`` prebuilt intents that the wide policy approves in full."""
    from policy_engine import PortfolioIntent

    ts = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        PortfolioIntent(
            intent_id=f"{prefix}-{i}",
            strategy="SCALPER",
            symbol="BTC-USD",
            side="long",
            requested_risk_abs=10.0,
            timestamp=ts,
        )
        for i in range(size)
    ]


BLOCK = 500


def new_metrics(on: bool) -> dict[str, Any]:
    """The controller's metrics argument: a ControlMetrics with its own registry, or none."""
    if not on:
        return {}
    from policy_engine.control.metrics import ControlMetrics

    return {"metrics": ControlMetrics()}


def paired(
    policy: Any, pool: list[Any], with_metrics: bool, flip: bool, journal: str | None = None
) -> tuple[float, float]:
    """Per-intent CPU time of two controllers fed the same pool in alternating blocks: one
    without metrics, the other with (or, for the noise floor, also without). The collector
    is paused while timing, as timeit does: a collection of one controller's book would
    otherwise land on whichever happened to be running. With ``journal`` (a folder), both
    write a journal there with durability ``off`` (no fsync: the disk's noise stays out)."""
    from policy_engine import PortfolioController

    sys.path.insert(0, str(HERE))
    from run import CLOCK

    def options(name: str) -> dict[str, Any]:
        if journal is None:
            return {}
        path = Path(journal) / f"{name}.jsonl"
        path.unlink(missing_ok=True)
        return {"journal": str(path), "durability": "off"}

    plain_ctl = PortfolioController(policy, equity=1e9, **options("plain"))
    other_ctl = PortfolioController(
        policy, equity=1e9, **new_metrics(with_metrics), **options("other")
    )
    plain, other = plain_ctl.request_allocation, other_ctl.request_allocation
    spent = [0.0, 0.0]
    gc.collect()
    gc.disable()
    try:
        for k in range(0, len(pool), BLOCK):
            block = pool[k : k + BLOCK]
            first = (k // BLOCK + flip) % 2 == 0
            for side in (0, 1) if first else (1, 0):
                request = plain if side == 0 else other
                t0 = CLOCK()
                for x in block:
                    request(x)
                spent[side] += CLOCK() - t0
    finally:
        gc.enable()
        plain_ctl.close()
        other_ctl.close()
    return spent[0] / len(pool), spent[1] / len(pool)


def metrics_rows(row: Any, fails: list[str], rounds: int, policy: Any, pool: list[Any]) -> None:
    """request_allocation with metrics against without, in the same rounds, and the same
    measurement with metrics off on both sides (the noise floor of the comparison)."""
    off: list[float] = []
    on: list[float] = []
    floor: list[float] = []
    for i in range(rounds):
        a, b = paired(policy, pool, True, bool(i % 2))
        off.append(a)
        on.append(b)
        a, b = paired(policy, pool, False, bool(i % 2))
        floor.append(b / a)
    overhead = statistics.median(n / f for n, f in zip(on, off, strict=True)) - 1
    ok = overhead < 0.05
    if not ok:
        fails.append("request_allocation with metrics")
    row(
        "request_allocation with metrics (ControlMetrics) vs without",
        f"{statistics.median(on) * 1e6:.2f} us",
        f"{1 + overhead:.3f}x",
        f"+{overhead * 100:.1f}% (without: {statistics.median(off) * 1e6:.2f} us); "
        f"target < 5% {'ok' if ok else 'MISSED'}",
    )
    noise = statistics.median(floor) - 1
    row("  the same, metrics off on both sides (noise floor)", "", f"{1 + noise:.3f}x", "")
    # What a live controller pays: it writes a journal (here without fsync, which would
    # only dilute the ratio further). For information; the target is the row above.
    with tempfile.TemporaryDirectory() as tmp:
        ratios, off = [], []
        for i in range(max(3, rounds // 2)):
            a, b = paired(policy, pool[:5_000], True, bool(i % 2), journal=tmp)
            ratios.append(b / a)
            off.append(a)
    extra = statistics.median(ratios) - 1
    row(
        "  the same with a journal on both sides (durability off)",
        "",
        f"{1 + extra:.3f}x",
        f"+{extra * 100:.1f}% (without metrics: {statistics.median(off) * 1e6:.2f} us)",
    )


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


def day_pool(policy: Any, prefix: str, n: int) -> list[Any]:
    """``n`` prebuilt intents of the day-trading policy's model (its ``venue`` input set),
    on a Tuesday at 10:00 in New York: inside its session."""
    ts = datetime(2026, 1, 6, 15, tzinfo=UTC)
    return [
        policy.intent_model.model_validate(
            {
                "intent_id": f"{prefix}-{i}",
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


def day_trading_row(row: Any, args: Any, rounds: int, ai: Any, asnap: Any, baseline: Any) -> None:
    """request_allocation on the day-trading policy: windows counted, a scope bucket and the
    side split kept, the latch evaluated after every intent."""
    from policy_engine import load_policy_text

    sys.path.insert(0, str(HERE))

    policy = load_policy_text(wide_day_trading_text(), "wide-day-trading.yaml")
    n = 5_000 if args.quick else 20_000
    pool = day_pool(policy, "dt", n)
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


def synthetic_events(n_events: int) -> Iterator[dict[str, Any]]:
    """``n_events`` events: per trade an intent, a fill and a close; every 50 trades an
    equity update."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    written = 0
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
            events.append({"type": "equity", "equity": 100_000.0 - (i % 1000), "timestamp": stamp})
        for event in events[: n_events - written]:
            yield event
            written += 1
        i += 1


def write_journal(path: Path, n_events: int) -> int:
    """A journal in the format a controller writes (hash-chained lines, no checkpoint) of
    ``n_events`` synthetic events after the controller's own opening events."""
    from policy_engine import load_policy
    from policy_engine.control.chain import GENESIS, seal
    from policy_engine.control.controller import PortfolioController

    head: list[dict[str, Any]] = []
    PortfolioController(load_policy(HERE / "policy12.yaml"), equity=100_000.0, journal=head)
    prev = GENESIS
    with path.open("wb") as f:
        for event in itertools.chain(head, synthetic_events(n_events)):
            line, prev = seal(json.dumps(event, separators=(",", ":")).encode(), prev)
            f.write(line)
    return n_events + len(head)


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
    t0, c0 = time.perf_counter(), time.process_time()
    decisions = sum(1 for _ in replay(sys.argv[1]))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(decisions, wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, cpu)
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
            decisions, wall, peak, cpu = int(out[0]), float(out[1]), float(out[2]), float(out[3])
            rss.append(peak)
            path.unlink()
            ok = peak < 150
            fast = events / cpu >= 100_000
            if size == n_full and not ok:
                fails.append("replay memory")
            if size == n_full and not fast:
                fails.append("replay throughput")
            row(
                f"replay of a {events:,}-event journal (fresh process, CPU time)",
                f"{events / cpu:,.0f} ev/s",
                "",
                f"{decisions:,} decisions in {cpu:.1f} s CPU ({events / wall:,.0f} ev/s wall); "
                f"peak RSS {peak:.0f} MB"
                + (
                    f" (target < 150 MB {'ok' if ok else 'MISSED'}; >= 100,000 ev/s "
                    f"{'ok' if fast else 'MISSED'})"
                    if size == n_full
                    else ""
                ),
            )
        row(
            "replay memory growth, 4x the events",
            f"{rss[1] - rss[0]:+.0f} MB",
            "",
            "flat" if rss[1] - rss[0] < 20 else "GROWS",
        )
