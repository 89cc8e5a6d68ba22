"""Exact terms: the Algebra functions' solver semantics are written in, and the small
combinators the translator builds with (simplifying constant operands as it goes)."""

from __future__ import annotations

from typing import Any

import z3

from .world import Unknown, World


def any_of(first: Any, *xs: Any) -> Any:
    """Or, simplified where an operand is a constant (callers pass at least one term)."""
    items = [x for x in (first, *xs) if not z3.is_false(x)]
    return first if not items else items[0] if len(items) == 1 else z3.Or(*items)


def all_of(first: Any, *xs: Any) -> Any:
    """And, likewise."""
    items = [x for x in (first, *xs) if not z3.is_true(x)]
    return first if not items else items[0] if len(items) == 1 else z3.And(*items)


class ExactAlgebra:
    """:class:`~policy_engine.lang.functions.Algebra` over z3: what a function's ``solver``
    is written in."""

    world: World

    def num(self, value: float) -> Any:
        return self.world.rational(value)

    def ite(self, cond: Any, then: Any, orelse: Any) -> Any:
        return z3.If(cond, then, orelse)

    def le(self, a: Any, b: Any) -> Any:
        return a <= b

    def lt(self, a: Any, b: Any) -> Any:
        return a < b

    def neg(self, a: Any) -> Any:
        return -a

    def or_(self, *conds: Any) -> Any:
        return z3.Or(*conds)

    def and_(self, *conds: Any) -> Any:
        return z3.And(*conds)

    def present(self, value: Any) -> Any:
        return z3.Not(value.null)

    def weekday(self, time: Any) -> Any:
        return z3.ToReal(time.term.weekday)

    def minutes(self, time: Any) -> Any:
        return time.term.minutes

    def literal(self, value: Any) -> Any:
        if value.py is None:
            raise Unknown("a function argument that must be a literal is not one")
        return value.py


def fold(op: str, a: Any, b: Any) -> Any:
    numbers = (int, float)
    if not isinstance(a, numbers) or not isinstance(b, numbers) or isinstance(a, bool):
        return None
    if isinstance(b, bool) or (op == "/" and b == 0):
        return None
    return {"+": a + b, "-": a - b, "*": a * b}[op] if op != "/" else a / b


def mul(a: Any, b: Any) -> Any:
    """``a * b``, pushed into the branches of a conditional of constants (a mode's or a
    strategy's multiplier) so that the product stays linear where it can."""
    if z3.is_rational_value(a) or z3.is_rational_value(b):
        return a * b
    for x, y in ((a, b), (b, a)):
        if z3.is_app_of(x, z3.Z3_OP_ITE):
            c, t, e = x.children()
            return z3.If(c, mul(t, y), mul(e, y))
    return a * b  # not linear: z3 may still decide it, else the property is unknown
