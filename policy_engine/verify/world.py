"""The symbolic world a policy is verified over: one intent and one portfolio state.

Every name a policy reads becomes one z3 variable, created on first read and
constrained to the domain the linter already assumes (analysis/linter.py
``_DOMAIN``): equity > 0, drawdown in [0, 1), amounts on the 1e-6 grid and
non-negative, counts non-negative integers, declared inputs by their type,
latches and windows free values of their type. Strings range over a finite
universe (every string the policies mention plus fresh names), so that
equality is exact. Two policies translated in one world share the variables:
that is how ``--against`` compares them on the same state and intent.

Only the intent's own buckets are read in one evaluation (its strategy, its
symbol, its cohort, its scope keys), so each is a set of free variables: no
state is assumed reachable, only well-formed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from ..decision_codes import APPROVED_CLIPPED, APPROVED_FULL
from ..diagnostics import PolicyEngineError
from ..document.checker import CheckedPolicy
from ..lang import syntax as s

GRID = 1_000_000  # risk amounts are integers of 1e-6 (control/state.py)
MAX_AMOUNT = 10**15
FRESH = ("X-1", "X-2", "X_3")  # names no policy declares (X_3 may name a mode)
SIDES = ("long", "short", "flat")
STRING_KINDS = ("string", "name", "side", "mode")
MODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # engine/contracts.py ModeName
COUNT_FIELDS = frozenset({"open_positions", "active_trades", "loss_streak"})
AMOUNT_FIELDS = frozenset({"active_risk", "reserved_risk", "long_risk", "short_risk"})
# Notional is on the same grid as risk (control/state.py), unrealized P&L signed on it.
NOTIONAL_FIELDS = frozenset(
    {"active_notional", "reserved_notional", "long_notional", "short_notional"}
)


class Unknown(PolicyEngineError):
    """A term the translation cannot express exactly, a solver that gave up, or a model the
    engine does not reproduce: the property is `unknown`, with this reason."""


def exact(value: float | int, ctx: z3.Context) -> Any:
    """A policy constant as an exact rational: the decimal the risk owner wrote (0.08 is
    8/100, not the binary float nearest to it)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise Unknown(f"the constant {value} is not finite")
    f = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    return z3.RealVal(f"{f.numerator}/{f.denominator}", ctx)


@dataclass(frozen=True)
class Time:
    """A symbolic instant: its era (how many staged rules' `enforce_from` it is at or
    after), its local day of the week and its local minutes since midnight."""

    era: Any
    weekday: Any
    minutes: Any


@dataclass(frozen=True)
class Val:
    """A translated value: its kind, term, whether it is null and whether evaluating it
    fails (each a z3 Bool); ``py`` is its Python value when it is a constant."""

    kind: str  # number | bool | string | time | list
    term: Any
    null: Any
    err: Any
    py: Any = None


@dataclass
class World:
    """The variables of one verification, their domains and the string universe."""

    strings: list[str]
    stages: tuple[Any, ...] = ()  # every staged rule's enforce_from, sorted
    vars: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (kind, z3 var)
    domain: list[Any] = field(default_factory=list)
    # per string variable, the names a counterexample should rather show (the declared ones)
    hints: dict[str, list[str]] = field(default_factory=dict)
    # A context of its own: the solver's heuristics depend on every term ever made in a
    # context, so a shared one would make a proof's cost depend on what ran before it.
    ctx: z3.Context = field(default_factory=z3.Context)

    @property
    def false(self) -> Any:
        return z3.BoolVal(False, self.ctx)

    @property
    def true(self) -> Any:
        return z3.BoolVal(True, self.ctx)

    def integer(self, value: int) -> Any:
        return z3.IntVal(value, self.ctx)

    def rational(self, value: float | int) -> Any:
        return exact(value, self.ctx)

    @classmethod
    def of(cls, policies: list[CheckedPolicy]) -> World:
        found: dict[str, None] = dict.fromkeys(SIDES)
        stages: set[Any] = set()
        for checked in policies:
            spec = checked.spec
            for names in (spec.strategies, spec.symbols, spec.cohorts, spec.modes, spec.currencies):
                found.update(dict.fromkeys(names))
            for cohort in spec.cohorts.values():
                found.update(dict.fromkeys(cohort.symbols))
            for scope in spec.scopes.values():
                found.update(dict.fromkeys(scope.values))
            roots = [*checked.mode_whens.values(), *checked.properties.values()]
            for rule in checked.rules:
                roots += [rule.expr] + ([rule.when] if rule.when is not None else [])
                found[rule.spec.code] = None
                found[rule.spec.id] = None
                if rule.spec.enforce_from is not None:
                    stages.add(rule.spec.enforce_from)
            for root in roots:
                for node in s.walk(root):
                    if isinstance(node, s.Str):
                        found[node.value] = None
            _params_strings(spec.params, found)
        found.update(dict.fromkeys(("override", "drawdown", APPROVED_FULL, APPROVED_CLIPPED)))
        found["modes"] = None
        found.update(dict.fromkeys(FRESH))
        return cls(strings=list(found), stages=tuple(sorted(stages)))

    def code(self, text: str) -> Any:
        if text not in self.strings:
            self.strings.append(text)
        return z3.IntVal(self.strings.index(text), self.ctx)

    def var(self, name: str, kind: str) -> Any:
        """The variable ``name`` of ``kind`` (amount, count, real, number, bool, string,
        name, side), made and constrained to its domain on first use."""
        if name in self.vars:
            return self.vars[name][1]
        if kind in ("amount", "signed"):
            v = z3.Int(name, self.ctx)
            lo = 0 if kind == "amount" else -MAX_AMOUNT * GRID
            self.domain += [v >= lo, v <= MAX_AMOUNT * GRID]
        elif kind == "count":
            v = z3.Int(name, self.ctx)
            self.domain += [v >= 0, v <= 1_000_000_000]
        elif kind == "bool":
            v = z3.Bool(name, self.ctx)
        elif kind in STRING_KINDS:
            v = z3.Int(name, self.ctx)
            self.domain.append(z3.Or(*(v == self.code(x) for x in self.allowed(kind))))
        else:  # real, positive, unit, number
            v = z3.Real(name, self.ctx)
            if kind == "positive":
                self.domain += [v > 0, v <= MAX_AMOUNT]
            elif kind == "nonneg":
                self.domain += [v >= 0, v <= MAX_AMOUNT]
            elif kind == "unit":
                self.domain += [v >= 0, v < 1]
            elif kind == "number":
                self.domain += [v >= -MAX_AMOUNT, v <= MAX_AMOUNT]
        self.vars[name] = (kind, v)
        return v

    def number(self, name: str, kind: str) -> Any:
        """A number variable as an exact rational (amounts are integers of 1e-6)."""
        v = self.var(name, kind)
        if kind in ("amount", "signed"):
            return z3.ToReal(v) / GRID
        if kind == "count":
            return z3.ToReal(v)
        return v

    def null(self, name: str) -> Any:
        return self.var(f"{name}?null", "bool")

    def time(self, name: str) -> Time:
        if f"{name}.era" in self.vars:
            return Time(*(self.vars[f"{name}.{p}"][1] for p in ("era", "weekday", "minutes")))
        era = self.var(f"{name}.era", "count")
        self.domain.append(era <= len(self.stages))
        wd = self.var(f"{name}.weekday", "count")
        self.domain.append(wd <= 6)
        minutes = self.var(f"{name}.minutes", "real")
        self.domain += [minutes >= 0, minutes < 1440]
        return Time(era, wd, minutes)

    def allowed(self, kind: str) -> list[str]:
        """The strings a variable of ``kind`` ranges over: what the intent model and the
        snapshot accept (a side, a name of 1 to 200 characters, a mode's identifier)."""
        if kind == "side":
            return list(SIDES)
        if kind == "mode":
            return [x for x in self.strings if MODE_NAME.fullmatch(x)]
        limit = 200 if kind == "name" else 1000
        return [x for x in self.strings if 0 < len(x) <= limit or (kind == "string" and not x)]

    def text(self, code: int) -> str:
        return self.strings[code]


def _params_strings(value: Any, found: dict[str, None]) -> None:
    if isinstance(value, str):
        found[value] = None
    elif isinstance(value, dict):
        for v in value.values():
            _params_strings(v, found)
    elif isinstance(value, list):
        for v in value:
            _params_strings(v, found)
