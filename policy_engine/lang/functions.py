"""The functions of the expression language, each declared once.

A :class:`Function` carries everything the layers above need to know about
one function, in one place (as cel-go's ``common/decls`` or OPA's builtins
do): its arity, its type rule (used by the checker), its implementation
(shared by the reference interpreter and the generated code), the run-time
argument check that makes the interpreter fail closed with a precise cause,
and its abstract semantics over intervals (used by the linter).

A function that needs something of the policy besides its arguments (the
time-zone-aware ones need the policy's ``timezone``) declares it in ``needs``:
the implementation takes those values after its arguments, and the code
generator and the interpreter both pass them from the one place the policy
keeps them (``RuntimeData.context``), so there is no second table.

Its solver semantics (``solver``, read by ``policy verify``) is written over an
:class:`Algebra` of exact terms, so that this layer never imports the solver; a function
without one makes every property that reads it ``unknown``, never ``proved``.

To add a function, add one ``Function(...)`` to :data:`FUNCTIONS`; nothing
else in the code base lists functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any, Protocol

from . import eventtime
from . import syntax as s
from . import valuetypes as t
from .abstract import BOTH, NONNEG, TOP, Abstract, Interval
from .errors import EvalError
from .errors import EvalErrorKind as E
from .valuetypes import Type

Problem = tuple[int, str]  # (argument index, message)
TypeRule = Callable[[Sequence[s.Expr], Sequence[Type]], tuple[Type, list[Problem]]]
Guard = Callable[[list[Any], s.Call], None]
Fold = Callable[[list[Abstract]], Abstract]


class Algebra(Protocol):
    """The exact terms a function's solver semantics is written in (``policy verify``
    implements it over z3). Numbers are exact rationals; a time is the intent's local time."""

    def num(self, value: float) -> Any: ...
    def ite(self, cond: Any, then: Any, orelse: Any) -> Any: ...
    def le(self, a: Any, b: Any) -> Any: ...
    def lt(self, a: Any, b: Any) -> Any: ...
    def neg(self, a: Any) -> Any: ...
    def or_(self, *conds: Any) -> Any: ...
    def and_(self, *conds: Any) -> Any: ...
    def present(self, value: Any) -> Any: ...  # not null
    def weekday(self, time: Any) -> Any: ...  # local day of the week, 0 Monday
    def minutes(self, time: Any) -> Any: ...  # local minutes since midnight
    def literal(self, value: Any) -> Any: ...  # the Python value of a literal argument


# The arguments come as terms: numbers (a single list argument as a tuple of numbers) for a
# function with ``numeric_args``, the translator's values otherwise.
Solver = Callable[[Algebra, list[Any]], Any]


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
    needs: tuple[str, ...] = ()  # context the implementation takes after its arguments
    numeric_args: bool = True  # arguments are numbers (generated code checks untyped ones)
    solver: Solver | None = None  # exact semantics for `policy verify`; None: not expressible

    def arity_problem(self, count: int) -> str | None:
        """The message for ``count`` arguments, or None when the count is right."""
        lo, hi = self.min_args, self.max_args
        if count >= lo and (hi is None or count <= hi):
            return None
        want = str(lo) if lo == hi else f"{lo} to {hi}" if hi else f"at least {lo}"
        return f"`{self.name}` takes {want} argument{'s' if want != '1' else ''}, not {count}"

    def call(self, values: list[Any], node: s.Call, context: Mapping[str, Any]) -> Any:
        """The careful call of the interpreter: check the arguments, then run with the
        context the function ``needs``."""
        self.guard(values, node)
        return self.impl(*values, *(context[k] for k in self.needs))


# --- shared pieces -------------------------------------------------------------------------


def number(value: Any, node: s.Expr) -> float:
    """``value`` as a number operand, or an EvalError naming ``node``."""
    if value is None:
        raise EvalError(E.NULL_VALUE, f"`{s.unparse(node)}` is null")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvalError(E.TYPE_ERROR, f"`{s.unparse(node)}` is not a number")
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
        raise EvalError(E.TYPE_ERROR, f"`{s.unparse(node)}` of an empty list")


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


def _time_rule(name: str, rest: int = 0) -> TypeRule:
    """A time first (``intent.time``, an input of type time), then ``rest`` literal
    ``"HH:MM"`` strings, checked when the policy loads."""

    def rule(args: Sequence[s.Expr], types: Sequence[Type]) -> tuple[Type, list[Problem]]:
        problems: list[Problem] = []
        if types and types[0].kind not in ("time", "any"):
            shown = s.unparse(args[0])
            problems.append((0, f"`{name}` needs a time (such as `intent.time`), not `{shown}`"))
        for i in range(1, min(len(args), rest + 1)):
            if types[i].kind not in ("string", "any"):
                problems.append((i, f'`{name}` needs a time of day "HH:MM" at argument {i + 1}'))
            else:
                literal = args[i]
                if isinstance(literal, s.Str):
                    try:
                        eventtime.minutes_of(literal.value)
                    except eventtime.TimeError as exc:
                        problems.append((i, f"`{name}`: {exc}"))
        result = t.BOOL if rest else t.NUMBER
        return result, problems

    return rule


def _time_guard(values: list[Any], node: s.Call) -> None:
    """The first argument is an aware timestamp, the others times of day."""
    first = values[0] if values else None
    if first is None:
        raise EvalError(E.NULL_VALUE, f"`{s.unparse(node.args[0])}` is null")
    if not isinstance(first, datetime) or first.utcoffset() is None:
        raise EvalError(E.TYPE_ERROR, f"`{s.unparse(node.args[0])}` is not a time")
    for value, arg in zip(values[1:], node.args[1:], strict=False):
        try:
            eventtime.minutes_of(value)
        except eventtime.TimeError as exc:
            raise EvalError(E.TYPE_ERROR, f"`{s.unparse(arg)}`: {exc}") from None


def _fold_weekday(args: list[Abstract]) -> Abstract:
    return Interval(0.0, 6.0)


def _fold_time_of_day(args: list[Abstract]) -> Abstract:
    return Interval(0.0, eventtime.MINUTES_PER_DAY)


def _fold_bool(args: list[Abstract]) -> Abstract:
    return BOTH


def _has_rule(args: Sequence[s.Expr], types: Sequence[Type]) -> tuple[Type, list[Problem]]:
    return t.BOOL, []


def _has(value: Any) -> bool:
    return value is not None


# --- solver semantics (exact, over an Algebra) ---------------------------------------------


def _items(args: list[Any]) -> list[Any]:
    return list(args[0]) if len(args) == 1 and isinstance(args[0], tuple) else args


def _solve_min(a: Algebra, args: list[Any]) -> Any:
    return reduce(lambda x, y: a.ite(a.le(x, y), x, y), _items(args))


def _solve_max(a: Algebra, args: list[Any]) -> Any:
    return reduce(lambda x, y: a.ite(a.le(y, x), x, y), _items(args))


def _solve_abs(a: Algebra, args: list[Any]) -> Any:
    (x,) = args
    return a.ite(a.le(a.num(0), x), x, a.neg(x))


def _solve_clamp(a: Algebra, args: list[Any]) -> Any:
    x, lo, hi = args
    return a.ite(a.lt(x, lo), lo, a.ite(a.lt(hi, x), hi, x))


def _solve_has(a: Algebra, args: list[Any]) -> Any:
    return a.present(args[0])


def _solve_weekday(a: Algebra, args: list[Any]) -> Any:
    return a.weekday(args[0])


def _solve_time_of_day(a: Algebra, args: list[Any]) -> Any:
    return a.minutes(args[0])


def _solve_in_window(a: Algebra, args: list[Any]) -> Any:
    lo = a.num(eventtime.minutes_of(a.literal(args[1])))
    hi = a.num(eventtime.minutes_of(a.literal(args[2])))
    now = a.minutes(args[0])
    if eventtime.minutes_of(a.literal(args[1])) < eventtime.minutes_of(a.literal(args[2])):
        return a.and_(a.le(lo, now), a.lt(now, hi))
    return a.or_(a.le(lo, now), a.lt(now, hi))


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
            solver=_solve_min,
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
            solver=_solve_max,
        ),
        Function(
            "abs",
            1,
            1,
            "the absolute value",
            _numbers_rule("abs"),
            abs,
            _numbers_guard,
            _fold_abs,
            solver=_solve_abs,
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
            solver=_solve_clamp,
        ),
        Function(
            "len",
            1,
            1,
            "the length of a list, map or string",
            _len_rule,
            len,
            _no_guard,
            _fold_len,
            numeric_args=False,
        ),
        Function(
            "has",
            1,
            1,
            "`has(x)`: x is present and not null (an optional intent field or input)",
            _has_rule,
            _has,
            _no_guard,
            _fold_bool,
            numeric_args=False,
            solver=_solve_has,
        ),
        Function(
            "weekday",
            1,
            1,
            "`weekday(t)`: the local day of the week of time t, 0 Monday to 6 Sunday",
            _time_rule("weekday"),
            eventtime.weekday,
            _time_guard,
            _fold_weekday,
            needs=("timezone",),
            numeric_args=False,
            solver=_solve_weekday,
        ),
        Function(
            "time_of_day",
            1,
            1,
            "`time_of_day(t)`: local minutes since midnight of time t (seconds as a fraction)",
            _time_rule("time_of_day"),
            eventtime.time_of_day,
            _time_guard,
            _fold_time_of_day,
            needs=("timezone",),
            numeric_args=False,
            solver=_solve_time_of_day,
        ),
        Function(
            "in_window",
            3,
            3,
            '`in_window(t, "HH:MM", "HH:MM")`: local time of t in [start, end), wrapping midnight',
            _time_rule("in_window", 2),
            eventtime.in_window,
            _time_guard,
            _fold_bool,
            needs=("timezone",),
            numeric_args=False,
            solver=_solve_in_window,
        ),
    )
}
