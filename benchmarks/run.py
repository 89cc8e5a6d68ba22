"""The performance proof (issue 5): one command, one table.

    .venv/bin/python benchmarks/run.py            # full run (about a minute)
    .venv/bin/python benchmarks/run.py --quick    # fewer rounds, smaller journal
    .venv/bin/python benchmarks/run.py --no-peers # skip the optional peers

Peers (cel-python, common-expression-language, rule-engine) are timed when
installed: ``pip install -e '.[bench]'``. Each peer expresses the same 12
rules of ``benchmarks/policy12.yaml`` and must give the same verdicts as the
engine on a few inputs before it is timed; otherwise it is reported, not timed.

Every ratio is measured in the same process run, interleaving the baseline
(a hand-written Python ``if`` chain doing the same 12 checks on the same
intent and snapshot objects) with the case being measured, over several
rounds; the table shows medians. Microseconds are for orientation only.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from policy_engine import (  # noqa: E402
    BucketState,
    Policy,
    PortfolioIntent,
    PortfolioSnapshot,
    load_policy,
    load_policy_text,
)

POLICY12 = HERE / "policy12.yaml"
TS = datetime(2026, 1, 1, tzinfo=UTC)

# --- inputs ------------------------------------------------------------------------------


def make_intent(**kw: Any) -> PortfolioIntent:
    values: dict[str, Any] = {
        "intent_id": "bench-1",
        "strategy": "SCALPER",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": 250.0,
        "timestamp": TS,
    }
    values.update(kw)
    return PortfolioIntent(**values)


def make_snapshot(**kw: Any) -> PortfolioSnapshot:
    values: dict[str, Any] = {
        "equity": 100_000.0,
        "peak_equity": 102_000.0,
        "active_risk": 1_200.0,
        "reserved_risk": 300.0,
        "open_positions": 2,
        "active_trades": 3,
        "strategies": {
            "SCALPER": BucketState(active_risk=200.0, reserved_risk=100.0, active_trades=1)
        },
        "symbols": {
            "BTC-USD": BucketState(active_risk=400.0, reserved_risk=100.0, active_trades=1)
        },
        "cohorts": {"L1": BucketState(active_risk=900.0, reserved_risk=100.0, active_trades=2)},
    }
    values.update(kw)
    return PortfolioSnapshot(**values)


def scenarios() -> dict[str, tuple[PortfolioIntent, PortfolioSnapshot]]:
    """Named inputs; the verdict checks of the baseline and the peers run over all of them."""
    snap = make_snapshot()
    return {
        "approve": (make_intent(), snap),
        "clip": (make_intent(requested_risk_abs=900.0, strategy="MOMENTUM"), snap),
        "gate-reject": (
            make_intent(),
            make_snapshot(strategies={"SCALPER": BucketState(active_trades=2)}),
        ),
        "cap-reject": (make_intent(), make_snapshot(active_risk=5_500.0, reserved_risk=500.0)),
        "disabled": (make_intent(strategy="BREAKOUT"), snap),
        "defensive": (
            make_intent(requested_risk_abs=400.0),
            make_snapshot(equity=95_000.0, peak_equity=101_000.0),
        ),
        "risk-off": (make_intent(), make_snapshot(equity=80_000.0, peak_equity=100_000.0)),
        "too-small": (make_intent(requested_risk_abs=5.0), snap),
        "flat": (make_intent(side="flat"), snap),
    }


def day_trading_case() -> tuple[Policy, Any, Any]:
    """policies/day_trading.yaml, an intent every one of its 13 rules passes (a venue, a
    stated reward, Tuesday 10:00 in New York), and the live state of a controller that has
    seen a morning: rolling windows, scope buckets, a loss streak and latches to read."""
    from policy_engine import PortfolioController

    policy = load_policy(ROOT / "policies" / "day_trading.yaml")
    ctl = PortfolioController(policy, equity=100_000.0, clock=None)
    for n, (strategy, venue) in enumerate((("SCALPER", "BINANCE"), ("MOMENTUM", "COINBASE"))):
        stamp = f"2026-01-06T14:{n:02d}:00+00:00"
        ctl.apply(
            {
                "type": "intent",
                "intent_id": f"warm-{n}",
                "strategy": strategy,
                "symbol": "ETH-USD",
                "side": "long",
                "requested_risk_abs": 300.0,
                "venue": venue,
                "timestamp": stamp,
            }
        )
        ctl.on_fill_update(
            {"intent_id": f"warm-{n}", "fill_id": "f", "filled_risk_abs": 300.0, "timestamp": stamp}
        )
    ctl.close_position("warm-0", "2026-01-06T14:30:00+00:00", realized_pnl=-25.0)
    intent = policy.intent_model.model_validate(
        {
            "intent_id": "bench-day",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 250.0,
            "venue": "BINANCE",
            "expected_reward_abs": 600.0,
            "timestamp": "2026-01-06T15:00:00+00:00",
        }
    )
    verdict = policy.evaluate(intent, ctl.state)
    assert verdict.approved and verdict.rule is None, verdict.reasons
    return policy, intent, ctl.state


# --- the hand-written baseline -----------------------------------------------------------
# The same 12 checks as benchmarks/policy12.yaml, written the way a developer would in a
# trading loop: module constants, attribute reads, early returns. Same inputs, same answer:
# (approved, approved amount, deciding rule id).

HEAT_CAP, SYMBOL_CAP, COHORT_CAP = 0.06, 1500, 2500
MAX_POSITIONS, MAX_DRAWDOWN, MIN_RISK, MAX_SINGLE, MIN_RISK_ABS = 5, 0.15, 10, 0.02, 10.0
STRATEGY_CFG = {
    "SCALPER": (True, 2, 1000),
    "MOMENTUM": (True, 1, 2000),
    "BREAKOUT": (False, 3, 1500),
}
COHORT_OF = {
    "BTC-USD": "L1",
    "ETH-USD": "L1",
    "SOL-USD": "L1",
    "AVAX-USD": "ALTS",
    "LINK-USD": "ALTS",
    "DOGE-USD": "ALTS",
}
MODES = ((1.0, False), (0.5, False), (0.0, True))
SEVERITY = {"normal": 0, "defensive": 1, "risk_off": 2}
ZERO = BucketState()


def _grid_floor(value: float) -> float:
    # the policy's clip quantiser (a 1e-6 grid); only reached when a cap clips
    from policy_engine.engine.runtime import quantize_down

    return quantize_down(value)


def baseline(intent: Any, snap: Any) -> tuple[bool, float, str | None]:
    amount = intent.requested_risk_abs
    dd = snap.drawdown
    m = 2 if dd >= 0.10 else 1 if dd >= 0.05 else 0
    o = snap.mode_override
    if o is not None and SEVERITY[o] > m:
        m = SEVERITY[o]
    mult, flatten_only = MODES[m]
    if flatten_only:
        return False, 0.0, "flatten-only"
    enabled, max_trades, budget = STRATEGY_CFG[intent.strategy]
    if not enabled:
        return False, 0.0, "strategy-enabled"
    live = snap.strategies.get(intent.strategy, ZERO)
    if not live.active_trades < max_trades:
        return False, 0.0, "strategy-max-trades"
    if not snap.active_trades < MAX_POSITIONS:
        return False, 0.0, "position-count"
    if not dd < MAX_DRAWDOWN:
        return False, 0.0, "drawdown-stop"
    if not amount >= MIN_RISK:
        return False, 0.0, "min-size"
    if intent.side not in ("long", "short"):
        return False, 0.0, "side-known"
    if amount > budget - live.heat:
        return False, 0.0, "strategy-budget"
    if amount > MAX_SINGLE * snap.equity:
        return False, 0.0, "single-trade"
    rule = None
    lim = SYMBOL_CAP * mult - snap.symbols.get(intent.symbol, ZERO).heat
    if amount > lim:
        q = _grid_floor(lim)
        if not (q > 0 and q >= MIN_RISK_ABS):
            return False, 0.0, "symbol-cap"
        amount, rule = q, "symbol-cap"
    cohort = COHORT_OF.get(intent.symbol) or intent.correlation_bucket or intent.symbol
    lim = COHORT_CAP * mult - snap.cohorts.get(cohort, ZERO).heat
    if amount > lim:
        q = _grid_floor(lim)
        if not (q > 0 and q >= MIN_RISK_ABS):
            return False, 0.0, "cohort-cap"
        amount, rule = q, "cohort-cap"
    lim = HEAT_CAP * snap.equity * mult - snap.heat
    if amount > lim:
        q = _grid_floor(lim)
        if not (q > 0 and q >= MIN_RISK_ABS):
            return False, 0.0, "portfolio-heat"
        amount, rule = q, "portfolio-heat"
    return True, amount, rule


# The same 12 checks over plain dicts (issue 18's baseline for the live controller): what a
# trading loop that keeps its state in dicts, with no models at all, would run.
_NO_BUCKET: dict[str, Any] = {"heat": 0.0, "active_trades": 0}


def dict_baseline(intent: dict[str, Any], snap: dict[str, Any]) -> tuple[bool, float, str | None]:
    amount = intent["requested_risk_abs"]
    dd = snap["drawdown"]
    m = 2 if dd >= 0.10 else 1 if dd >= 0.05 else 0
    o = snap["mode_override"]
    if o is not None and SEVERITY[o] > m:
        m = SEVERITY[o]
    mult, flatten_only = MODES[m]
    if flatten_only:
        return False, 0.0, "flatten-only"
    enabled, max_trades, budget = STRATEGY_CFG[intent["strategy"]]
    if not enabled:
        return False, 0.0, "strategy-enabled"
    live = snap["strategies"].get(intent["strategy"], _NO_BUCKET)
    if not live["active_trades"] < max_trades:
        return False, 0.0, "strategy-max-trades"
    if not snap["active_trades"] < MAX_POSITIONS:
        return False, 0.0, "position-count"
    if not dd < MAX_DRAWDOWN:
        return False, 0.0, "drawdown-stop"
    if not amount >= MIN_RISK:
        return False, 0.0, "min-size"
    if intent["side"] not in ("long", "short"):
        return False, 0.0, "side-known"
    if amount > budget - live["heat"]:
        return False, 0.0, "strategy-budget"
    if amount > MAX_SINGLE * snap["equity"]:
        return False, 0.0, "single-trade"
    rule = None
    symbol = intent["symbol"]
    lim = SYMBOL_CAP * mult - snap["symbols"].get(symbol, _NO_BUCKET)["heat"]
    if amount > lim:
        q = _grid_floor(lim)
        if not (q > 0 and q >= MIN_RISK_ABS):
            return False, 0.0, "symbol-cap"
        amount, rule = q, "symbol-cap"
    cohort = COHORT_OF.get(symbol) or intent.get("correlation_bucket") or symbol
    lim = COHORT_CAP * mult - snap["cohorts"].get(cohort, _NO_BUCKET)["heat"]
    if amount > lim:
        q = _grid_floor(lim)
        if not (q > 0 and q >= MIN_RISK_ABS):
            return False, 0.0, "cohort-cap"
        amount, rule = q, "cohort-cap"
    lim = HEAT_CAP * snap["equity"] * mult - snap["heat"]
    if amount > lim:
        q = _grid_floor(lim)
        if not (q > 0 and q >= MIN_RISK_ABS):
            return False, 0.0, "portfolio-heat"
        amount, rule = q, "portfolio-heat"
    return True, amount, rule


def as_dicts(intent: Any, snap: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plain-dict inputs of :func:`dict_baseline` for a scenario's models."""

    def table(buckets: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {k: {"heat": b.heat, "active_trades": b.active_trades} for k, b in buckets.items()}

    plain_intent = intent.model_dump()
    plain_snap = {
        "drawdown": snap.drawdown,
        "mode_override": snap.mode_override,
        "active_trades": snap.active_trades,
        "equity": snap.equity,
        "heat": snap.heat,
        "strategies": table(snap.strategies),
        "symbols": table(snap.symbols),
        "cohorts": table(snap.cohorts),
    }
    return plain_intent, plain_snap


def engine_answer(policy: Policy, intent: Any, snap: Any) -> tuple[bool, float, str | None]:
    v = policy.evaluate(intent, snap)
    return v.approved, v.approved_risk_abs, v.rule_id


# --- peers -------------------------------------------------------------------------------
# The 12 rules in each peer's language: (rule id, kind, CEL text, rule-engine text).
# Gates return a boolean; caps return the limit, compared with the amount in Python.

PEER_RULES: list[tuple[str, str, str, str]] = [
    ("flatten-only", "gate", "!mode.flatten_only", "not mode.flatten_only"),
    ("strategy-enabled", "gate", "strategy.enabled", "strategy.enabled"),
    (
        "strategy-max-trades",
        "gate",
        "strategy.active_trades < strategy.max_trades",
        "strategy.active_trades < strategy.max_trades",
    ),
    (
        "position-count",
        "gate",
        "portfolio.active_trades < params.max_positions",
        "portfolio.active_trades < params.max_positions",
    ),
    (
        "drawdown-stop",
        "gate",
        "portfolio.drawdown < params.max_drawdown",
        "portfolio.drawdown < params.max_drawdown",
    ),
    ("min-size", "gate", "intent.risk >= params.min_risk", "intent.risk >= params.min_risk"),
    ("side-known", "gate", "intent.side in ['long', 'short']", "intent.side in ['long', 'short']"),
    (
        "strategy-budget",
        "reject",
        "strategy.budget - strategy.heat",
        "strategy.budget - strategy.heat",
    ),
    (
        "single-trade",
        "reject",
        "params.max_single * portfolio.equity",
        "params.max_single * portfolio.equity",
    ),
    (
        "symbol-cap",
        "clip",
        "params.symbol_cap * mode.risk_multiplier - symbol.heat",
        "params.symbol_cap * mode.risk_multiplier - symbol.heat",
    ),
    (
        "cohort-cap",
        "clip",
        "params.cohort_cap * mode.risk_multiplier - cohort.heat",
        "params.cohort_cap * mode.risk_multiplier - cohort.heat",
    ),
    (
        "portfolio-heat",
        "clip",
        "params.heat_cap * portfolio.equity * mode.risk_multiplier - portfolio.heat",
        "params.heat_cap * portfolio.equity * mode.risk_multiplier - portfolio.heat",
    ),
]
PEER_PARAMS = {
    "heat_cap": 0.06,
    "symbol_cap": 1500.0,
    "cohort_cap": 2500.0,
    "max_positions": 5.0,
    "max_drawdown": 0.15,
    "min_risk": 10.0,
    "max_single": 0.02,
}


def peer_context(intent: Any, snap: Any) -> dict[str, Any]:
    """Fresh plain dicts for one call (all numbers as floats: CEL does not mix int and double)."""
    dd = snap.drawdown
    m = 2 if dd >= 0.10 else 1 if dd >= 0.05 else 0
    o = snap.mode_override
    if o is not None and SEVERITY[o] > m:
        m = SEVERITY[o]
    mult, flatten_only = MODES[m]
    enabled, max_trades, budget = STRATEGY_CFG[intent.strategy]
    live = snap.strategies.get(intent.strategy, ZERO)
    cohort = COHORT_OF.get(intent.symbol) or intent.correlation_bucket or intent.symbol
    return {
        "intent": {"risk": intent.requested_risk_abs, "side": intent.side, "symbol": intent.symbol},
        "strategy": {
            "enabled": enabled,
            "max_trades": float(max_trades),
            "budget": float(budget),
            "active_trades": float(live.active_trades),
            "heat": live.heat,
        },
        "symbol": {"heat": snap.symbols.get(intent.symbol, ZERO).heat},
        "cohort": {"heat": snap.cohorts.get(cohort, ZERO).heat},
        "portfolio": {
            "equity": snap.equity,
            "drawdown": dd,
            "heat": snap.heat,
            "active_trades": float(snap.active_trades),
        },
        "mode": {"risk_multiplier": mult, "flatten_only": flatten_only},
        "params": PEER_PARAMS,
    }


def peer_chain(
    rules: list[tuple[str, str, Callable[[Any], Any]]], ctx: Any, amount: float
) -> tuple[bool, float, str | None]:
    """The chain semantics around a peer's per-rule programs (gates, reject caps, clip caps)."""
    rule = None
    for rid, kind, run in rules:
        value = run(ctx)
        if kind == "gate":
            if not value:
                return False, 0.0, rid
        elif amount > value:
            if kind == "reject":
                return False, 0.0, rid
            q = _grid_floor(float(value))
            if not (q > 0 and q >= MIN_RISK_ABS):
                return False, 0.0, rid
            amount, rule = q, rid
    return True, amount, rule


def build_peers() -> tuple[dict[str, Callable[[Any, Any], Any]], list[str]]:
    """name -> fn(intent, snap) giving (approved, amount, rule id); and notes on skipped peers."""
    peers: dict[str, Callable[[Any, Any], Any]] = {}
    notes: list[str] = []
    try:
        import cel  # common-expression-language (Rust)

        programs = [(rid, kind, cel.compile(c).execute) for rid, kind, c, _ in PEER_RULES]

        def cel_rust(intent: Any, snap: Any) -> Any:
            ctx = cel.Context(variables=peer_context(intent, snap))  # converted once per call
            return peer_chain(programs, ctx, intent.requested_risk_abs)

        def cel_rust_prebuilt(ctx: Any, amount: float) -> Any:
            return peer_chain(programs, ctx, amount)

        peers["common-expression-language (Rust CEL), fresh dicts"] = cel_rust
        peers["common-expression-language, prebuilt Context"] = _prebuilt(cel_rust_prebuilt, cel)
    except ImportError:
        notes.append("common-expression-language: not installed")
    except Exception as exc:
        notes.append(f"common-expression-language: failed to set up ({exc!r})")
    try:
        import celpy  # cel-python

        env = celpy.Environment()
        cprograms = [
            (rid, kind, env.program(env.compile(c)).evaluate) for rid, kind, c, _ in PEER_RULES
        ]

        def cel_python(intent: Any, snap: Any) -> Any:
            ctx = {k: celpy.json_to_cel(v) for k, v in peer_context(intent, snap).items()}
            return peer_chain(cprograms, ctx, intent.requested_risk_abs)

        peers["cel-python"] = cel_python
    except ImportError:
        notes.append("cel-python: not installed")
    except Exception as exc:
        notes.append(f"cel-python: failed to set up ({exc!r})")
    try:
        import rule_engine

        rprograms = [(rid, kind, rule_engine.Rule(r).evaluate) for rid, kind, _, r in PEER_RULES]

        def rule_eng(intent: Any, snap: Any) -> Any:
            return peer_chain(rprograms, peer_context(intent, snap), intent.requested_risk_abs)

        peers["rule-engine"] = rule_eng
    except ImportError:
        notes.append("rule-engine: not installed")
    except Exception as exc:
        notes.append(f"rule-engine: failed to set up ({exc!r})")
    return peers, notes


class _prebuilt:
    """Rust CEL with a `cel.Context` built ahead of time (context building not timed)."""

    def __init__(self, fn: Callable[[Any, float], Any], cel: Any) -> None:
        self.fn = fn
        self.cel = cel
        self.cache: dict[int, tuple[Any, Any]] = {}

    def __call__(self, intent: Any, snap: Any) -> Any:
        key = id(intent) ^ (id(snap) << 1)
        hit = self.cache.get(key)
        if hit is None:
            ctx = self.cel.Context(variables=peer_context(intent, snap))
            hit = self.cache[key] = (ctx, (intent, snap))
        return self.fn(hit[0], intent.requested_risk_abs)


def same_answer(a: tuple[bool, float, str | None], b: tuple[bool, float, str | None]) -> bool:
    return a[0] == b[0] and abs(a[1] - b[1]) < 1e-9 and (a[2] == b[2] or not a[0])


# --- timing ------------------------------------------------------------------------------


# Timing reads the CPU time of this thread, not the wall clock: on a shared, busy machine
# the time another process holds the core must not count against whichever case was
# running. (Scheduling still perturbs caches; hence interleaving and medians.)
CLOCK = time.thread_time


def timed(fn: Callable[[], Any], number: int) -> float:
    return timeit.Timer(fn, timer=CLOCK).timeit(number=number)


def calibrate(fn: Callable[[], Any], target: float) -> int:
    n = 1
    while True:
        t = timed(fn, n)
        if t >= target / 5 or n >= 1 << 22:
            return max(1, int(n * target / max(t, 1e-9)))
        n *= 4


def interleaved(
    cases: dict[str, Callable[[], Any]], rounds: int, target: float
) -> dict[str, list[float]]:
    """Seconds per call for every case, per round; cases interleaved within each round."""
    numbers = {name: calibrate(fn, target) for name, fn in cases.items()}
    out: dict[str, list[float]] = {name: [] for name in cases}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in cases.items():
                n = numbers[name]
                out[name].append(timed(fn, n) / n)
    finally:
        if gc_was:
            gc.enable()
    return out


def ratio(times: list[float], base: list[float]) -> float:
    return statistics.median(t / b for t, b in zip(times, base, strict=True))


# --- generated policies ------------------------------------------------------------------

RULE_TEMPLATES = [  # every rule distinct ({i}), as in a real file: no parse is ever repeated
    ("require", "strategy.active_trades < strategy.max_trades + {i} / 1_000"),
    ("require", "portfolio.active_trades < params.max_positions + {i}"),
    ("require", "portfolio.drawdown < params.max_drawdown + {i} / 10_000"),
    ("require", "intent.risk >= params.min_risk - {i} / 100_000 or intent.reduce_only"),
    ("require", 'intent.side in ["long", "short"] and mode.name != "risk_off" and {i} >= 0'),
    ("limit", "strategy.budget * mode.risk_multiplier - strategy.heat + {i}"),
    ("limit", "params.max_single * portfolio.equity + {i}"),
    ("limit", "min(params.symbol_cap * mode.risk_multiplier - symbol.heat, {i} * 100)"),
    ("limit", "params.heat_cap * portfolio.equity * mode.risk_multiplier - portfolio.heat + {i}"),
    (
        "limit",
        'clamp(params.cohort_cap - cohort.heat, 0, 10_000 + {i}) if cohort.name in ["L1", "ALTS"] else {i}',
    ),
]


def generated_policy(n_rules: int, name: str = "generated") -> str:
    head = POLICY12.read_text().split("rules:\n")[0].replace("name: bench-12", f"name: {name}")
    lines = [head, "rules:\n"]
    for i in range(n_rules):
        kind, expr = RULE_TEMPLATES[i % len(RULE_TEMPLATES)]
        lines.append(f"  - id: rule-{i}\n    category: GEN\n    {kind}: '{expr.format(i=i)}'\n")
        if kind == "limit":
            lines.append(f"    on_exceed: {'clip' if i % 2 else 'reject'}\n")
        if i % 7 == 3:
            lines.append(f"    when: 'intent.symbol != \"DOGE-USD\" or portfolio.heat < {i}'\n")
        if i % 11 == 5:
            lines.append("    enforcement: warn\n")
        lines.append(f"    message: 'rule {i}: {{intent.symbol}} at {{portfolio.heat + {i}}}'\n")
    return "".join(lines)


def time_once(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = CLOCK()
        fn()
        samples.append(CLOCK() - t0)
    return statistics.median(samples)


CHECK_SCRIPT = textwrap.dedent(
    """
    import sys, time
    t0 = time.perf_counter()
    from policy_engine.document.stages import check_document
    from policy_engine.document.yaml_source import load_document
    bad = 0
    for path in sys.argv[1:]:
        checked, problems = check_document(load_document(path))
        bad += checked is None
    print(bad, time.perf_counter() - t0)
    """
)


def peak_rss_script(body: str) -> str:
    return (
        textwrap.dedent(
            """
        import resource, sys, time
        sys.path.insert(0, {root!r})
        """
        ).format(root=str(ROOT))
        + textwrap.dedent(body)
        + textwrap.dedent(
            """
        print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        """
        )
    )


# --- the run -----------------------------------------------------------------------------


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"Python {platform.python_version()} ({platform.python_implementation()}), {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer rounds and a smaller journal")
    ap.add_argument("--no-peers", action="store_true", help="skip the optional peer engines")
    ap.add_argument("--events", type=int, default=None, help="journal size for the replay case")
    ap.add_argument("--eval-only", action="store_true", help="only the evaluation cases")
    ap.add_argument(
        "--journal-only",
        action="store_true",
        help="only the journal cases: replay, durability cost, recovery",
    )
    ap.add_argument(
        "--cost-only",
        action="store_true",
        help="only issue 18's cost rows: request_allocation + cancel vs the dict baseline, "
        "the journal's cost, group commit, metrics, day_trading.yaml vs 12 rules",
    )
    ap.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds (default 9, 5 quick)"
    )
    args = ap.parse_args()
    rounds = args.rounds or (5 if args.quick else 9)
    target = 0.01 if args.quick else 0.03

    rows: list[tuple[str, str, str, str]] = []  # case, median, ratio, target/notes
    fails: list[str] = []

    def row(case: str, value: str, rat: str = "", note: str = "") -> None:
        rows.append((case, value, rat, note))
        print(f"  {case:<58} {value:>12} {rat:>9}  {note}", file=sys.stderr, flush=True)

    if args.journal_only:
        sys.path.insert(0, str(HERE))
        import controller_bench

        controller_bench.journal_rows(row, fails, args)
        return table(rows, fails, args, rounds)

    policy = load_policy(POLICY12)
    sc = scenarios()

    # 1. the baseline gives the engine's answers, on every scenario
    for name, (intent, snap) in sc.items():
        if name == "flat":
            continue  # the baseline has no allow rule for risk-reducing intents
        got, want = baseline(intent, snap), engine_answer(policy, intent, snap)
        if not same_answer(got, want):
            raise SystemExit(f"baseline disagrees with the engine on {name}: {got} != {want}")
        got = dict_baseline(*as_dicts(intent, snap))
        if not same_answer(got, want):
            raise SystemExit(f"dict baseline disagrees with the engine on {name}: {got} != {want}")
    if args.cost_only:
        sys.path.insert(0, str(HERE))
        import cost_bench

        cost_bench.run(row, fails, args, rounds, *sc["approve"])
        return table(rows, fails, args, rounds)

    ai, asnap = sc["approve"]
    gi, gsnap = sc["gate-reject"]
    ci, csnap = sc["cap-reject"]
    assert policy.evaluate(ai, asnap).approved and policy.evaluate(ai, asnap).rule is None
    assert policy.evaluate(gi, gsnap).rule_id == "strategy-max-trades"
    assert policy.evaluate(ci, csnap).rule_id == "portfolio-heat"

    evaluate = policy.evaluate

    def rejection(intent: Any, snap: Any) -> Callable[[], Any]:
        def run() -> Any:
            v = evaluate(intent, snap)
            return v.context, v.reasons

        return run

    def rejection_context(intent: Any, snap: Any) -> Callable[[], Any]:
        def run() -> Any:
            return evaluate(intent, snap).context

        return run

    approved_verdict = evaluate(ai, asnap)
    rejected_verdict = evaluate(ci, csnap)

    def decision_approved() -> Any:
        return approved_verdict.decision()

    def decision_rejected() -> Any:
        v = evaluate(ci, csnap)
        return v.decision()

    cases: dict[str, Callable[[], Any]] = {
        "baseline": lambda: baseline(ai, asnap),
        "evaluate": lambda: evaluate(ai, asnap),
        "chain": lambda: policy.chain(ai, asnap),
        "decide": lambda: policy.decide(ai, asnap),
        "gate-context": rejection_context(gi, gsnap),
        "cap-context": rejection_context(ci, csnap),
        "gate-reject": rejection(gi, gsnap),
        "cap-reject": rejection(ci, csnap),
        "decision-approved": decision_approved,
        "decision-rejected": decision_rejected,
    }
    _ = rejected_verdict
    day_policy, day_intent, day_state = day_trading_case()
    cases["day-evaluate"] = lambda: day_policy.evaluate(day_intent, day_state)
    cases["day-chain"] = lambda: day_policy.chain(day_intent, day_state)

    peers: dict[str, Callable[[Any, Any], Any]] = {}
    notes: list[str] = []
    if not args.no_peers:
        peers, notes = build_peers()
        for pname, fn in list(peers.items()):
            for sname, (intent, snap) in sc.items():
                if sname == "flat":
                    continue
                got, want = fn(intent, snap), engine_answer(policy, intent, snap)
                if not same_answer(got, want):
                    notes.append(f"{pname}: disagrees on {sname} ({got} != {want}); not timed")
                    del peers[pname]
                    break
        for pname, fn in peers.items():
            cases[f"peer:{pname}"] = (lambda f: lambda: f(ai, asnap))(fn)

    print(f"{machine()}\nmeasuring {len(cases)} cases x {rounds} rounds ...", file=sys.stderr)
    t = interleaved(cases, rounds, target)
    us = {k: statistics.median(v) * 1e6 for k, v in t.items()}

    def line(case: str, key: str, limit: float | None = None, rel: str = "baseline") -> None:
        r = ratio(t[key], t[rel])
        ok = ""
        if limit is not None:
            ok = f"target <= {limit:g}x {'ok' if r <= limit else 'MISSED'}"
            if r > limit:
                fails.append(case.strip())
        row(
            case,
            f"{us[key]:.2f} us",
            f"{r:.2f}x",
            ok + ("" if rel == "baseline" else f" (vs {rel})"),
        )

    row("hand-written if chain, 12 checks (baseline)", f"{us['baseline']:.2f} us", "1.00x")
    line("Policy.evaluate, 12 rules, all pass", "evaluate", 2.0)
    line("  generated chain alone (policy.chain)", "chain")
    line("  Policy.decide (the outcome, no Verdict: chain + fallback guard)", "decide")
    line("rejection at rule 3 (gate) + numeric .context", "gate-context")
    line("rejection at rule 12 (cap) + numeric .context", "cap-context")
    line("  rejection (gate) + context vs approval", "gate-context", 3.0, rel="evaluate")
    line("  rejection (cap) + context vs approval", "cap-context", 3.0, rel="evaluate")
    line("rejection at rule 3 (gate) + .context + .reasons", "gate-reject")
    line("rejection at rule 12 (cap) + .context + .reasons", "cap-reject")
    # The target is "numeric context included" (the rows above); rendering the
    # human reasons text on top is reported for information, not held to the 3x target.
    line("  rejection (gate) + context + reasons vs approval", "gate-reject", rel="evaluate")
    line("  rejection (cap) + context + reasons vs approval", "cap-reject", rel="evaluate")
    line(
        "Policy.evaluate, day_trading.yaml (13 rules: windows, latch, scope, time), all pass",
        "day-evaluate",
    )
    line("  the same vs the 12-rule evaluation", "day-evaluate", rel="evaluate")
    line("  its generated chain alone", "day-chain")
    line("verdict.decision() (approved; pydantic AllocationDecision)", "decision-approved")
    line("evaluate + decision() (rejected, full explanation)", "decision-rejected")
    for pname in peers:
        line(f"peer: {pname}", f"peer:{pname}")
    for note in notes:
        row(f"peer skipped: {note}", "", "", "")

    if args.eval_only:
        return table(rows, fails, args, rounds)

    # 2. load of a 200-rule policy (parse + schema + check + compile)
    text200 = generated_policy(200, "generated-200")
    load_policy_text(text200)  # warm the grammar and schema caches, as a long-running process has
    ms = time_once(lambda: load_policy_text(text200), 3 if args.quick else 7) * 1e3
    ok = ms < 200
    if not ok:
        fails.append("load 200 rules")
    row(
        "load (parse+check+compile) of a 200-rule policy",
        f"{ms:.1f} ms",
        "",
        f"target < 200 ms {'ok' if ok else 'MISSED'}",
    )

    # 3. policy-check of 100 files, in a fresh process (imports included)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(100):
            p = Path(tmp) / f"policy-{i:03}.yaml"
            p.write_text(generated_policy(8 + (i * 7) % 40, f"gen-{i}"))
            paths.append(str(p))
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHECK_SCRIPT, *paths],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.split()
        wall = time.perf_counter() - t0
        bad, inproc = int(out[0]), float(out[1])
        if bad:
            raise SystemExit(f"{bad} generated policies failed to check")
        ok = wall < 3.0
        if not ok:
            fails.append("check 100 files")
        row(
            "policy-check of 100 files (8-47 rules; fresh process)",
            f"{wall:.2f} s",
            "",
            f"target < 3 s {'ok' if ok else 'MISSED'} (in-process {inproc:.2f} s)",
        )

        cli = Path(sys.executable).with_name("policy-check")
        if cli.exists():
            t0 = time.perf_counter()
            done = subprocess.run([str(cli), *paths], capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - t0
            last = (done.stdout.strip().splitlines() or [""])[-1]
            ok = wall < 3.0 and done.returncode == 0
            if not ok:
                fails.append("policy-check CLI, 100 files")
            row(
                "the policy-check CLI on the same 100 files (with lints)",
                f"{wall:.2f} s",
                "",
                f"target < 3 s {'ok' if ok else 'MISSED'}; exit {done.returncode}: {last[:70]}",
            )

    # 4. the controller, when it exists
    controller_rows(row, fails, args, rounds, target, ai, asnap)
    return table(rows, fails, args, rounds)


def table(rows: list[tuple[str, str, str, str]], fails: list[str], args: Any, rounds: int) -> int:
    print()
    print(f"Machine: {machine()}")
    print(
        f"Command: python benchmarks/run.py{' --quick' if args.quick else ''}"
        f"{' --journal-only' if args.journal_only else ''}"
        f"{' --cost-only' if args.cost_only else ''}; {rounds} interleaved rounds, medians"
    )
    print()
    print("| case | median | ratio | target |")
    print("|---|---:|---:|---|")
    for case, value, rat, note in rows:
        print(f"| {case.strip()} | {value} | {rat} | {note} |")
    print()
    print("targets missed: " + (", ".join(fails) if fails else "none"))
    return 0


def controller_rows(
    row: Callable[..., None],
    fails: list[str],
    args: Any,
    rounds: int,
    target: float,
    ai: Any,
    asnap: Any,
) -> None:
    sys.path.insert(0, str(HERE))
    import controller_bench

    controller_bench.run(row, fails, args, rounds, target, ai, asnap, baseline)
    import cost_bench

    cost_bench.run(row, fails, args, rounds, ai, asnap)


if __name__ == "__main__":
    raise SystemExit(main())
