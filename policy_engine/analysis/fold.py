"""The abstract evaluator: an expression run over sets of values instead of values.

A number is an interval ``[lo, hi]``, anything else a finite set of possible
values, or "unknown" (:mod:`policy_engine.lang.abstract`). Params and literals
are points, so an expression made of them folds to a constant; live counters
are ``[0, inf)`` and the drawdown ``[0, 1]``, so ``portfolio.drawdown > 150%``
is known to be always false. Each function's abstract semantics comes from the
function registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..lang import syntax as s
from ..lang.abstract import (
    BOTH,
    FALSE,
    TOP,
    TRUE,
    Abstract,
    Interval,
    ValueSet,
    bools,
    hull,
    span,
)
from ..lang.functions import FUNCTIONS

Binding = Callable[[s.Name], Abstract]


def fold(node: s.Expr, bind: Binding) -> Abstract:
    """Evaluate ``node`` over abstract values; names are looked up with ``bind``."""
    match node:
        case s.Num(value=v):
            return Interval(v, v)
        case s.Str(value=v) | s.Bool(value=v):
            return ValueSet(frozenset({v}))
        case s.ListLit(items=items):
            parts = [fold(i, bind) for i in items]
            points: list[Any] = []
            for p in parts:
                if isinstance(p, Interval) and p.point:
                    points.append(p.lo)
                elif isinstance(p, ValueSet) and len(p.values) == 1:
                    points.append(next(iter(p.values)))
                else:
                    return TOP
            return ValueSet(frozenset({tuple(points)}))
        case s.Name():
            return bind(node)
        case s.Index():
            return TOP
        case s.Call(func=func, args=args):
            fn = FUNCTIONS.get(func)
            return fn.fold([fold(a, bind) for a in args]) if fn is not None else TOP
        case s.Unary(operand=o):
            inner = fold(o, bind)
            return Interval(-inner.hi, -inner.lo) if isinstance(inner, Interval) else TOP
        case s.Not(operand=o):
            return ValueSet(frozenset(not b for b in bools(fold(o, bind))))
        case s.Binary(op=op, left=left, right=right):
            return _fold_arith(op, fold(left, bind), fold(right, bind))
        case s.Compare(first=first, ops=ops, rest=rest):
            results: set[bool] = {True}
            prev = fold(first, bind)
            for op, right_node in zip(ops, rest, strict=True):
                right_value = fold(right_node, bind)
                outcome = _fold_compare(op, prev, right_value)
                results = {a and b for a in results for b in outcome}
                prev = right_value
            return ValueSet(frozenset(results))
        case s.BoolOp(op=op, values=values):
            sets = [bools(fold(v, bind)) for v in values]
            if op == "and":
                if any(x == {False} for x in sets):
                    return FALSE
                return TRUE if all(x == {True} for x in sets) else BOTH
            if any(x == {True} for x in sets):
                return TRUE
            return FALSE if all(x == {False} for x in sets) else BOTH
        case s.Cond(body=body, test=test, orelse=orelse):
            cond = bools(fold(test, bind))
            if cond == {True}:
                return fold(body, bind)
            if cond == {False}:
                return fold(orelse, bind)
            return hull([fold(body, bind), fold(orelse, bind)])
    return TOP  # pragma: no cover


def _mul(a: float, b: float) -> float:
    product = a * b
    return 0.0 if math.isnan(product) else product  # 0 * inf: a zero factor wins


def _fold_arith(op: str, a: Abstract, b: Abstract) -> Abstract:
    if not (isinstance(a, Interval) and isinstance(b, Interval)):
        return TOP
    if op == "+":
        return span(a.lo + b.lo, a.hi + b.hi)
    if op == "-":
        return span(a.lo - b.hi, a.hi - b.lo)
    if op == "*":
        return span(_mul(a.lo, b.lo), _mul(a.lo, b.hi), _mul(a.hi, b.lo), _mul(a.hi, b.hi))
    if b.lo <= 0 <= b.hi:
        return TOP  # may divide by zero (a runtime error) or blow up
    return span(a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi)


def _fold_compare(op: str, a: Abstract, b: Abstract) -> frozenset[bool]:
    if isinstance(a, Interval) and isinstance(b, Interval):
        if op == "<":
            return _decide(a.hi < b.lo, a.lo >= b.hi)
        if op == "<=":
            return _decide(a.hi <= b.lo, a.lo > b.hi)
        if op == ">":
            return _decide(a.lo > b.hi, a.hi <= b.lo)
        if op == ">=":
            return _decide(a.lo >= b.hi, a.hi < b.lo)
        same = a.point and b.point and a.lo == b.lo
        apart = a.hi < b.lo or b.hi < a.lo
        if op == "==":
            return _decide(same, apart)
        if op == "!=":
            return _decide(apart, same)
    if isinstance(a, ValueSet) and isinstance(b, ValueSet) and op in ("==", "!="):
        same = len(a.values) == 1 and a.values == b.values
        apart = not (a.values & b.values)
        return _decide(same, apart) if op == "==" else _decide(apart, same)
    if isinstance(a, ValueSet) and isinstance(b, ValueSet) and op in ("in", "not in"):
        outcomes = set()
        for x in a.values:
            for container in b.values:
                if isinstance(container, tuple | str):
                    try:
                        outcomes.add((x in container) == (op == "in"))
                    except TypeError:
                        return frozenset({True, False})
                else:
                    return frozenset({True, False})
        return frozenset(outcomes) or frozenset({True, False})
    return frozenset({True, False})


def _decide(always: bool, never: bool) -> frozenset[bool]:
    if always:
        return frozenset({True})
    if never:
        return frozenset({False})
    return frozenset({True, False})
