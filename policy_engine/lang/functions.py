"""The functions of the expression language, each declared once.

A :class:`Function` carries everything the layers above need to know about
one function, in one place (as cel-go's ``common/decls`` or OPA's builtins
do): its arity, its type rule (used by the checker), its implementation
(shared by the reference interpreter and the generated code), the run-time
argument check that makes the interpreter fail closed with a precise cause,
and its abstract semantics over intervals (used by the linter).

To add a function, add one ``Function(...)`` to :data:`FUNCTIONS`; nothing
else in the code base lists functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import syntax as s
from . import valuetypes as t
from .abstract import NONNEG, TOP, Abstract, Interval
from .errors import EvalError
from .valuetypes import Type

Problem = tuple[int, str]  # (argument index, message)
TypeRule = Callable[[Sequence[s.Expr], Sequence[Type]], tuple[Type, list[Problem]]]
Guard = Callable[[list[Any], s.Call], None]
Fold = Callable[[list[Abstract]], Abstract]


@dataclass(frozen=True, slots=True)
class Function:
    """One function: signature and implementation together."""

    name: str
    min_args: int
    max_args: int | None  # None: any number from min_args
    summary: str  # one line for the docs and did-you-mean hints
    type_rule: TypeRule  # argument types -> result type and problems (checker)
    impl: Callable[..., Any]  # the implementation (interpreter and generated code)
    guard: Guard  # run-time argument check; raises EvalError (interpreter)
    fold: Fold  # abstract semantics over intervals (linter)

    def arity_problem(self, count: int) -> str | None:
        """The message for ``count`` arguments, or None when the count is right."""
        lo, hi = self.min_args, self.max_args
        if count >= lo and (hi is None or count <= hi):
            return None
        want = str(lo) if lo == hi else f"{lo} to {hi}" if hi else f"at least {lo}"
        return f"`{self.name}` takes {want} argument{'s' if want != '1' else ''}, not {count}"

    def call(self, values: list[Any], node: s.Call) -> Any:
        """The careful call of the interpreter: check the arguments, then run."""
        self.guard(values, node)
        return self.impl(*values)


# --- shared pieces -------------------------------------------------------------------------


def number(value: Any, node: s.Expr) -> float:
    """``value`` as a number operand, or an EvalError naming ``node``."""
    if value is None:
        raise EvalError("null_value", f"`{s.unparse(node)}` is null")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvalError("type_error", f"`{s.unparse(node)}` is not a number")
    return value


def _numbers_rule(name: str) -> TypeRule:
    def rule(args: Sequence[s.Expr], types: Sequence[Type]) -> tuple[Type, list[Problem]]:
        problems = [
            (i, f"`{name}` needs numbers, but `{s.unparse(a)}` is a {ty}")
            for i, (a, ty) in enumerate(zip(args, types, strict=False))
            if ty.kind not in ("number", "any")
        ]
        return t.NUMBER, problems

    return rule


def _list_or_numbers_rule(name: str) -> TypeRule:
    """min/max: numbers, or one list of numbers."""
    numbers = _numbers_rule(name)

    def rule(args: Sequence[s.Expr], types: Sequence[Type]) -> tuple[Type, list[Problem]]:
        if len(types) == 1 and types[0].kind == "list":
            item = types[0].item
            # a mixed or empty list (item type `any`) is refused too: min/max need numbers
            if item is None or item.kind != "number":
                return t.NUMBER, [
                    (0, f"`{name}` needs a list of numbers, not `{s.unparse(args[0])}`")
                ]
            return t.NUMBER, []
        return numbers(args, types)

    return rule


def _numbers_guard(values: list[Any], node: s.Call) -> None:
    """Every argument (or every item of a single list argument) is a number."""
    items = values[0] if len(values) == 1 and isinstance(values[0], list | tuple) else values
    arg_nodes = node.args if items is values else (node.args[0],) * len(items)
    for v, a in zip(items, arg_nodes, strict=False):
        number(v, a)
    if not items:
        raise EvalError("type_error", f"`{s.unparse(node)}` of an empty list")


def _no_guard(values: list[Any], node: s.Call) -> None:
    return None


def _intervals(args: list[Abstract]) -> list[Interval] | None:
    if not args or not all(isinstance(a, Interval) for a in args):
        return None
    return [a for a in args if isinstance(a, Interval)]


# --- the implementations and their abstract semantics -------------------------------------


def _minmax(pick: Any) -> Callable[..., Any]:
    def f(*args: Any) -> Any:
        return pick(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else pick(args)

    return f


def _fold_min(args: list[Abstract]) -> Abstract:
    ivs = _intervals(args)
    return TOP if ivs is None else Interval(min(a.lo for a in ivs), min(a.hi for a in ivs))


def _fold_max(args: list[Abstract]) -> Abstract:
    ivs = _intervals(args)
    return TOP if ivs is None else Interval(max(a.lo for a in ivs), max(a.hi for a in ivs))


def _fold_abs(args: list[Abstract]) -> Abstract:
    ivs = _intervals(args)
    if ivs is None or len(ivs) != 1:
        return TOP
    x = ivs[0]
    if x.lo >= 0:
        return x
    if x.hi <= 0:
        return Interval(-x.hi, -x.lo)
    return Interval(0.0, max(-x.lo, x.hi))


def _round(x: float, ndigits: float | None = None) -> float:
    return float(round(x, int(ndigits))) if ndigits is not None else float(round(x))


def _fold_round(args: list[Abstract]) -> Abstract:
    ivs = _intervals(args)
    if ivs is None or len(ivs) != 1:
        return TOP
    return Interval(math.floor(ivs[0].lo), math.ceil(ivs[0].hi))


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _fold_clamp(args: list[Abstract]) -> Abstract:
    ivs = _intervals(args)
    if ivs is None or len(ivs) != 3:
        return TOP
    x, lo, hi = ivs
    return Interval(min(max(x.lo, lo.lo), hi.lo), min(max(x.hi, lo.hi), hi.hi))


def _len_rule(args: Sequence[s.Expr], types: Sequence[Type]) -> tuple[Type, list[Problem]]:
    if types and types[0].kind not in ("list", "map", "string", "any"):
        return t.NUMBER, [(0, f"`len` needs a list, map or string, not a {types[0]}")]
    return t.NUMBER, []


def _fold_len(args: list[Abstract]) -> Abstract:
    return NONNEG


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "min",
            1,
            None,
            "the smallest of numbers (or of one list of numbers)",
            _list_or_numbers_rule("min"),
            _minmax(min),
            _numbers_guard,
            _fold_min,
        ),
        Function(
            "max",
            1,
            None,
            "the largest of numbers (or of one list of numbers)",
            _list_or_numbers_rule("max"),
            _minmax(max),
            _numbers_guard,
            _fold_max,
        ),
        Function(
            "abs", 1, 1, "the absolute value", _numbers_rule("abs"), abs, _numbers_guard, _fold_abs
        ),
        Function(
            "round",
            1,
            2,
            "round half to even, optionally to n digits",
            _numbers_rule("round"),
            _round,
            _numbers_guard,
            _fold_round,
        ),
        Function(
            "clamp",
            3,
            3,
            "`clamp(x, lo, hi)`: x limited to [lo, hi]",
            _numbers_rule("clamp"),
            _clamp,
            _numbers_guard,
            _fold_clamp,
        ),
        Function(
            "len", 1, 1, "the length of a list, map or string", _len_rule, len, _no_guard, _fold_len
        ),
    )
}
