"""Solver models -> trades you can run, and the real engine's decision on them.

A model becomes a portfolio state and an intent (the fewest non-default fields,
round numbers where the solver allows them: :func:`simplify` fixes one variable
at a time to a default or a round value and keeps it when the property is
still violated). :func:`replay` runs it through :meth:`Policy.evaluate`, the
engine itself: a model the engine does not decide as the solver predicted is a
bug in the translation, and the caller reports ``unknown``, never a violation.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from time import perf_counter as time_now
from typing import Any

import z3

from ..engine.contracts import PortfolioSnapshot
from ..engine.outcome import APPROVED, ERROR
from ..engine.policy import Policy
from ..engine.runtime import LOCK_PREFIX, epoch_us, scope_key
from .chain import Symbolic
from .world import FRESH, GRID, STRING_KINDS, Unknown, World

DEFAULT_DAY = date(2026, 1, 6)  # a Tuesday
_ROUND_REAL = {
    "positive": [100_000],
    "nonneg": [0, 100_000],
    "unit": [0],
    "real": [0],
    "number": [0],
}


def _value(model: z3.ModelRef, term: Any) -> Any:
    v = model.eval(term, model_completion=True)
    if z3.is_true(v) or z3.is_false(v):
        return z3.is_true(v)
    if z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_algebraic_value(v):
        return Fraction(v.approx(12).as_fraction())
    raise ValueError(f"no value for {term}")


def simplify(solver: z3.Solver, world: World, budget: float = 2.0) -> z3.ModelRef:
    """Fix variables to defaults or round values while the query stays satisfiable (each
    attempt briefly: a hard one keeps the solver's value; the whole within ``budget`` s)."""
    model = solver.model()
    solver.set("timeout", 250)
    deadline = time_now() + budget
    for name in sorted(world.vars):
        if time_now() > deadline:
            break
        kind, var = world.vars[name]
        current = _value(model, var)
        candidates: list[Any] = []
        if kind == "bool":
            candidates = [name.endswith("?null")]
        elif kind in ("amount", "signed"):
            units = Fraction(current, GRID)
            # a trade asks for a round amount; a live value is best left at its default
            asked = [1000 * GRID, 100 * GRID] if name == "intent.requested_risk_abs" else []
            candidates = [*asked, 0, *(round(units / r) * r * GRID for r in (1000, 100, 10, 1))]
        elif kind == "count":
            candidates = [0]
        elif kind in STRING_KINDS:
            names = ["long"] if kind == "side" else world.hints.get(name, [])
            candidates = [world.code(n).as_long() for n in names]
        elif kind in _ROUND_REAL:
            candidates = [*_ROUND_REAL[kind], *(round(current / r) * r for r in (1000, 1))]
            if name == "portfolio.equity" and "portfolio.drawdown" in world.vars:
                # a round peak (100000) makes the engine's float drawdown the model's exactly
                drawdown = _value(model, world.vars["portfolio.drawdown"][1])
                candidates = [100_000 * (1 - drawdown), *candidates]
            candidates += [Fraction(round(current * 100), 100)]
        fixed = False
        for cand in dict.fromkeys(candidates):
            if cand == current:
                break
            solver.push()
            solver.add(var == _term(cand, kind, world.ctx))
            if solver.check() == z3.sat:
                model, fixed = solver.model(), True
                break
            solver.pop()
        if not fixed:  # keep its value: the next variables are simplified around it
            solver.add(var == _term(current, kind, world.ctx))
    return model


def _term(value: Any, kind: str, ctx: z3.Context) -> Any:
    if kind == "bool":
        return z3.BoolVal(bool(value), ctx)
    f = Fraction(value)
    if kind in ("amount", "signed", "count", *STRING_KINDS):
        return z3.IntVal(int(f), ctx)
    return z3.RealVal(f"{f.numerator}/{f.denominator}", ctx)


def _number(value: Fraction | int, kind: str) -> float | int:
    f = Fraction(value) / (GRID if kind in ("amount", "signed") else 1)
    return int(f) if f.denominator == 1 else float(f)


def values(model: z3.ModelRef, world: World) -> dict[str, Any]:
    """Every variable's value in ``model`` (strings as text, amounts in units)."""
    got: dict[str, Any] = {}
    for name, (kind, var) in world.vars.items():
        value = _value(model, var)
        if kind in STRING_KINDS:
            got[name] = world.text(value)
        elif kind == "bool":
            got[name] = value
        else:
            got[name] = _number(value, kind)
    return got


def trade(
    got: dict[str, Any], world: World, policy: Policy
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state and intent of the variables' values ``got``, as a decision test writes them."""

    def nulled(key: str) -> bool:
        return bool(got.get(f"{key}?null", False))

    known_symbols = [*policy.data.symbols, *policy.data.cohort_of]  # a name the policy knows
    intent: dict[str, Any] = {
        "intent_id": "verify-1",
        "strategy": got.get("intent.strategy", next(iter(policy.data.strategies), FRESH[0])),
        "symbol": got.get("intent.symbol", next(iter(known_symbols), FRESH[0])),
        "side": got.get("intent.side", "long"),
        "requested_risk_abs": got.get("intent.requested_risk_abs", 100),
    }
    names = ("template_id", "playbook_id", "regime_state", "correlation_bucket")
    for key in (*names, "quote_currency", "position_id"):
        if f"intent.{key}" in got and not nulled(f"intent.{key}"):
            intent[key] = got[f"intent.{key}"]
    if "intent.requested_notional_abs" in got and not nulled("intent.requested_notional_abs"):
        intent["requested_notional_abs"] = got["intent.requested_notional_abs"]
    if got.get("intent.reduce_only"):
        intent["reduce_only"] = True
    zone = policy.data.context["timezone"]
    intent["timestamp"] = _when(got, "intent.timestamp", world, zone)
    for key, spec in policy.checked.spec.inputs.items():
        name = f"input.{key}"
        if nulled(name):
            continue
        if spec.type == "time":
            if f"{name}.era" in got or spec.required:
                intent[key] = _when(got, name, world, zone)
        elif name in got:
            intent[key] = got[name]
        elif spec.required:
            intent[key] = {"number": 0, "string": FRESH[0], "bool": False}[spec.type]
    state: dict[str, Any] = {"equity": got.get("portfolio.equity", 100_000)}
    drawdown = Fraction(got.get("portfolio.drawdown", 0))
    if drawdown:
        state["peak_equity"] = _peak(float(state["equity"]), drawdown)
    if "portfolio.day_start_equity" in got:
        state["day_start_equity"] = got["portfolio.day_start_equity"]
    cohort = policy.cohort_of(intent["symbol"], intent.get("correlation_bucket"))
    buckets = {
        "strategy": ("strategies", intent["strategy"]),
        "symbol": ("symbols", intent["symbol"]),
        "cohort": ("cohorts", cohort),
    }
    for name, value in sorted(got.items()):
        head, _, field = name.partition(".")
        if field.startswith("lock.") and value:  # a lock that holds: it ends after the intent
            field = f"windows.{LOCK_PREFIX}{field.partition('.')[2]}"
            value = epoch_us(datetime.fromisoformat(str(intent["timestamp"]))) + 1
        if head == "latch" and value:
            state.setdefault("latches", {})[field] = True
        elif head == "portfolio" and field not in ("equity", "drawdown", "day_start_equity"):
            _put(state, field, value)
        elif head in buckets and value:
            table, key = buckets[head]
            _put(state.setdefault(table, {}).setdefault(key, {}), field, value)
        elif head in policy.data.scope_fields and value:
            selected = scope_key(policy.data.scope_fields[head], intent.get)
            if selected is not None:
                scope = state.setdefault("scopes", {}).setdefault(head, {})
                _put(scope.setdefault(selected, {}), field, value)
    if "state.mode_override" in got and not nulled("state.mode_override"):
        state["mode_override"] = got["state.mode_override"]
    _book(got, policy, state, intent)
    return state, intent


def _book(got: dict[str, Any], policy: Policy, state: dict[str, Any], intent: Any) -> None:
    """The balances, the position the intent names and the group it is decided in (see
    :mod:`.book`); a group is the intent's ``group`` (``policy test``'s case key)."""
    for ccy in policy.checked.spec.currencies:
        if f"balance.{ccy}?null" not in got or got[f"balance.{ccy}?null"]:
            continue
        free, locked = got.get(f"balance.{ccy}.free", 0), got.get(f"balance.{ccy}.locked", 0)
        if free < 0:  # only this portfolio's locks take it below 0: no snapshot states that
            raise Unknown(f"the counterexample needs `balance.{ccy}.free` below 0 ({free})")
        state.setdefault("balances", {})[ccy] = {"free": free, "locked": locked}
    pid = intent.get("position_id")
    if pid is not None and not got.get("position?missing", False):
        at = datetime.fromisoformat(str(intent["timestamp"]))
        entry = at - timedelta(microseconds=round(Fraction(got.get("position.age", 0)) * GRID))
        state["positions"] = {
            pid: {
                "side": got.get("position.side", "long"),
                "size": got.get("position.size", 1),
                "notional": got.get("position.notional", 0),
                "unrealized_pnl": got.get("position.unrealized_pnl", 0),
                "entry_time": entry.isoformat(),
            }
        }
    if "intent.group_count" in got:
        risk = got.get("intent.group_risk", intent["requested_risk_abs"])
        notional = got.get("intent.group_notional", intent.get("requested_notional_abs"))
        if got.get("intent.group_notional?null", "intent.group_notional" not in got):
            notional = None
        intent["group"] = {"count": got["intent.group_count"], "risk": risk, "notional": notional}


def _peak(equity: float, drawdown: Fraction) -> float | int:
    """The peak equity whose drawdown, as the engine computes it in floats, is the float
    nearest to the model's (a tier's `when` at 5% sees 0.05, not 0.04999999999999993)."""
    exact_peak = Fraction(equity) / (1 - drawdown)
    if exact_peak.denominator == 1:
        return int(exact_peak)
    target, peak = float(drawdown), float(exact_peak)
    for _ in range(64):
        seen = (peak - equity) / peak
        if seen == target:
            break
        peak = math.nextafter(peak, math.inf if seen < target else -math.inf)
    return peak


def _put(bucket: dict[str, Any], field: str, value: Any) -> None:
    if not value:
        return
    if field.startswith("windows."):
        bucket.setdefault("windows", {})[field.partition(".")[2]] = value
    else:
        bucket[field] = value


def _when(got: dict[str, Any], name: str, world: World, zone: Any) -> str:
    """An instant in ``zone`` in the model's era, on its weekday, at its local time."""
    era = int(got.get(f"{name}.era", 0))
    weekday = int(got.get(f"{name}.weekday", DEFAULT_DAY.weekday()))
    minutes = Fraction(got.get(f"{name}.minutes", 12 * 60))
    stages = world.stages
    lo = stages[era - 1] if era > 0 else None
    hi = stages[era] if era < len(stages) else None
    start = lo.date() if lo is not None else (hi.date() - timedelta(days=21) if hi else DEFAULT_DAY)
    seconds = minutes * 60
    clock = time(int(seconds // 3600), int(seconds % 3600 // 60), int(seconds % 60))
    micro = int((seconds - int(seconds)) * 1_000_000)
    for offset in range(21):
        day = start + timedelta(days=offset)
        at = datetime.combine(day, clock.replace(microsecond=micro), tzinfo=zone)
        back = at.astimezone(zone)  # a local time in a DST gap does not exist
        if day.weekday() != weekday or (back.hour, back.minute) != (clock.hour, clock.minute):
            continue
        if (lo is None or at >= lo) and (hi is None or at < hi):
            return at.isoformat()
    raise ValueError("no instant has the model's era, weekday and time of day")


def predicted(model: z3.ModelRef, sym: Symbolic) -> tuple[int, int, Fraction]:
    """The solver's decision: status, deciding rule, approved amount."""
    return (_value(model, sym.status), _value(model, sym.rule), Fraction(_value(model, sym.amount)))


def replay(
    policy: Policy, state: dict[str, Any], intent: dict[str, Any]
) -> tuple[tuple[int, int, float], dict[str, Any]]:
    """The engine's outcome (status, rule, amount) and decision on ``state`` and ``intent``."""
    snapshot = PortfolioSnapshot.model_validate(state)
    group = intent.get("group")
    parsed = policy.intent_model.model_validate({k: v for k, v in intent.items() if k != "group"})
    if group is not None:  # decided as a member of a group (`group.*`)
        parsed = parsed.in_group(group["count"], group["risk"], group["notional"])
    verdict = policy.evaluate(parsed, snapshot)
    outcome = verdict.outcome
    rule = outcome[1]
    decision = {
        "decision_code": verdict.decision_code,
        "approved": outcome[0] == APPROVED,
        "approved_risk_abs": outcome[2] if outcome[0] == APPROVED else 0,
        "rule_id": verdict.rule_id,
        "mode": policy.declared_modes[outcome[5]],
    }
    if outcome[0] == ERROR and outcome[7] is not None:
        decision["error"] = outcome[7].detail if hasattr(outcome[7], "detail") else str(outcome[7])
    return (outcome[0], rule, outcome[2]), decision


def agrees(engine: tuple[int, int, float], solver: tuple[int, int, Fraction]) -> bool:
    if engine[0] != solver[0] or engine[1] != solver[1]:
        return False
    tolerance = Fraction(1, 10**9) * max(Fraction(1), abs(solver[2]))
    return abs(Fraction(engine[2]) - solver[2]) <= tolerance
