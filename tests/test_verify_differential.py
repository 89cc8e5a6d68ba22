"""The solver's model of the chain agrees with the engine: thousands of states and intents,
drawn deterministically from values at and around every boundary the policies use, decided
by the real engine and by the translated chain (the symbolic outcome with the same values
substituted): the same status, deciding rule and approved amount, exactly."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import z3

from policy_engine.engine.policy import Policy, load_policy
from policy_engine.verify import replay as rp
from policy_engine.verify.chain import ChainModel
from policy_engine.verify.world import GRID, World

ROOT = Path(__file__).resolve().parent.parent
POLICIES = [
    ROOT / "policies/portfolio.yaml",
    ROOT / "policies/day_trading.yaml",
    ROOT / "policies/strategy_limits.yaml",
    ROOT / "tests/fixtures/verify/language.yaml",
]
SAMPLES = 600  # per policy

AMOUNTS = [0, 1, 10, 100, 250, 375, 500, 750, 1000, 1500, 2000, 2500, 2800, 3000, 4000, 6000]
MINUTES = [0, 600, 1014, 1015, 1016.5, 1024, 1025, 1439]
DRAWDOWNS = [Fraction(n, 100) for n in (0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 50)]


def declared(policy: Policy) -> dict[str, list[str]]:
    """The names an intent mostly carries: those the policy declares."""
    data = policy.data
    symbols = [*data.symbols, *data.cohort_of]
    out = {"intent.strategy": list(data.strategies), "intent.symbol": symbols}
    for scope, field in data.scope_fields.items():
        out[f"input.{field}"] = out[f"intent.{field}"] = list(data.scopes[scope])
    out["state.mode_override"] = [m.name for m in data.modes]
    out["intent.side"] = ["long", "short", "long", "short", "flat"]
    return {k: v for k, v in out.items() if v}


def draw(rng: random.Random, world: World, names: dict[str, list[str]]) -> dict[str, Any]:
    """Values for every variable of ``world``, in the units `replay.trade` reads."""
    got: dict[str, Any] = {}
    peak = rng.choice([100_000, 200_000])
    drawdown = rng.choice(DRAWDOWNS) if rng.random() < 0.5 else Fraction(0)
    for name, (kind, _var) in sorted(world.vars.items()):
        if name == "portfolio.drawdown":
            got[name] = drawdown
        elif name == "portfolio.equity":
            got[name] = int(peak * (1 - drawdown))  # a round peak: floats see the same drawdown
        elif name.endswith(".era"):
            got[name] = rng.randint(0, len(world.stages))
        elif name.endswith(".weekday"):
            got[name] = rng.randint(0, 6)
        elif name.endswith(".minutes"):
            got[name] = rng.choice(MINUTES)
        elif name.endswith("?null"):
            got[name] = rng.random() < 0.7
        elif kind == "bool":
            got[name] = rng.random() < 0.1
        elif kind in ("amount", "signed"):
            value = rng.choice(AMOUNTS) if rng.random() < 0.8 else rng.randint(0, 8000)
            if name != "intent.requested_risk_abs" and rng.random() < 0.5:
                value = 0  # most buckets of a trade are empty or small
            got[name] = -value if kind == "signed" and rng.random() < 0.5 else value
        elif kind == "count":
            got[name] = rng.choice([0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6])
        elif kind in ("string", "name", "side", "mode"):
            usual = names.get(name) if rng.random() < 0.85 else None
            got[name] = rng.choice(usual or world.allowed(kind))
        else:  # nonneg, real, number: day_start_equity, a declared number input
            got[name] = rng.choice([0, 100, 900, 1000, 2000, 50_000, 100_000, 110_000])
    return got


def substitute(world: World, got: dict[str, Any]) -> list[tuple[Any, Any]]:
    pairs = []
    for name, (kind, var) in world.vars.items():
        value = got[name]
        if kind == "bool":
            pairs.append((var, z3.BoolVal(value, world.ctx)))
        elif kind in ("amount", "signed"):
            pairs.append((var, z3.IntVal(int(value) * GRID, world.ctx)))
        elif kind == "count":
            pairs.append((var, z3.IntVal(value, world.ctx)))
        elif kind in ("string", "name", "side", "mode"):
            pairs.append((var, world.code(value)))
        else:
            f = Fraction(value)
            pairs.append((var, z3.RealVal(f"{f.numerator}/{f.denominator}", world.ctx)))
    return pairs


def constant(term: Any) -> Any:
    value = z3.simplify(term)
    if z3.is_int_value(value):
        return value.as_long()
    return Fraction(value.numerator_as_long(), value.denominator_as_long())


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_the_solver_decides_like_the_engine(path: Path) -> None:
    policy: Policy = load_policy(path)
    world = World.of([policy.checked])
    sym = ChainModel(world, policy.checked, policy.data).decide()
    rng = random.Random(f"differential:{path.name}")
    decided: set[tuple[int, int]] = set()
    names = declared(policy)
    for _ in range(SAMPLES):
        got = draw(rng, world, names)
        state, intent = rp.trade(got, world, policy)
        engine, decision = rp.replay(policy, state, intent)
        pairs = substitute(world, got)
        terms = (sym.status, sym.rule, sym.amount)
        status, rule, amount = (constant(z3.substitute(t, *pairs)) for t in terms)
        # the same status and rule; the amount to 1e-9 (the engine's floats, exact rationals)
        assert rp.agrees(engine, (status, rule, Fraction(amount))), (state, intent, decision)
        decided.add((status, rule))
    # the draws reach the outcomes: approvals, and rejections or errors by most rules
    rules = {rule for _status, rule in decided}
    assert len(rules) >= len(policy.rules) // 2 + 1, decided


def test_the_solver_decides_groups_balances_and_positions_like_the_engine() -> None:
    """The same, for the names of verify/book.py: draws outside their domain (a group
    smaller than its intent, a position of no size) are skipped, and so is a negative free
    balance (no snapshot states one: only this portfolio's locks make it)."""
    policy = load_policy(ROOT / "tests/fixtures/verify/book.yaml")
    world = World.of([policy.checked])
    sym = ChainModel(world, policy.checked, policy.data).decide()
    rng = random.Random("differential:book")
    decided: set[tuple[int, int]] = set()
    names = {
        **declared(policy),
        "intent.quote_currency": ["USD", "EUR", "X-1"],
        "position.side": ["long", "short"],
    }
    domain = z3.And(*world.domain)
    kept = 0
    for _ in range(SAMPLES * 2):
        got = _in_group(draw(rng, world, names))
        pairs = substitute(world, got)
        if not z3.is_true(z3.simplify(z3.substitute(domain, *pairs))):
            continue
        if any(got[n] < 0 for n in got if n.startswith("balance.") and n.endswith(".free")):
            continue
        state, intent = rp.trade(got, world, policy)
        engine, decision = rp.replay(policy, state, intent)
        terms = (sym.status, sym.rule, sym.amount)
        status, rule, amount = (constant(z3.substitute(t, *pairs)) for t in terms)
        assert rp.agrees(engine, (status, rule, Fraction(amount))), (state, intent, decision)
        decided.add((status, rule))
        kept += 1
    assert kept >= SAMPLES, kept
    assert len({rule for _status, rule in decided}) >= len(policy.rules) // 2 + 1, decided


def _in_group(got: dict[str, Any]) -> dict[str, Any]:
    """A drawn group made to hold its intent: at least one member; its risk and notional at
    least the intent's (some more when it has other members), exactly them when alone (and
    a drawn position of some size: an open one)."""
    got["position.size"] = max(1, got["position.size"])
    count = got["intent.group_count"] = max(1, got["intent.group_count"])
    more = 0 if count == 1 else got["intent.group_risk"]
    got["intent.group_risk"] = got["intent.requested_risk_abs"] + more
    own_null = got["intent.requested_notional_abs?null"]
    if count == 1 or own_null:
        got["intent.group_notional?null"] = own_null
    notional = Fraction(got["intent.requested_notional_abs"])
    extra = 0 if count == 1 else Fraction(got["intent.group_notional"])
    got["intent.group_notional"] = notional + extra
    return got
