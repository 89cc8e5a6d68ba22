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
