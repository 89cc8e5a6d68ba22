"""The abstract values the linter computes with: sets of possible values.

A number is an :class:`Interval` ``[lo, hi]``; anything else a finite
:class:`ValueSet` of possible values (bools, strings, tuples for lists); or
:data:`TOP`, nothing known. The function registry (:mod:`.functions`) gives
each function its abstract semantics over these; the expression walk that
uses them lives with the lints (:mod:`policy_engine.analysis.fold`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Interval:
    """Every number the expression may take lies in ``[lo, hi]``."""

    lo: float
    hi: float

    @property
    def point(self) -> bool:
        return self.lo == self.hi


@dataclass(frozen=True, slots=True)
class ValueSet:
    """The expression takes one of these (hashable) values: bools, strings, tuples."""

    values: frozenset[Any]


@dataclass(frozen=True, slots=True)
class Top:
    """Nothing is known."""


TOP = Top()
Abstract = Interval | ValueSet | Top
BOTH = ValueSet(frozenset({True, False}))
TRUE = ValueSet(frozenset({True}))
FALSE = ValueSet(frozenset({False}))
INF = math.inf
NONNEG = Interval(0.0, INF)


def const(value: Any) -> Abstract:
    """The abstract value of a policy constant."""
    if isinstance(value, bool):
        return ValueSet(frozenset({value}))
    if isinstance(value, int | float):
        return Interval(float(value), float(value))
    if isinstance(value, str):
        return ValueSet(frozenset({value}))
    if isinstance(value, list):
        try:
            return ValueSet(frozenset({_freeze(value)}))
        except TypeError:
            return TOP
    return TOP


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        raise TypeError("maps are not folded")
    return value


def hull(values: Iterable[Abstract]) -> Abstract:
    """The least abstract value covering all of ``values``."""
    items = list(values)
    if not items or any(isinstance(v, Top) for v in items):
        return TOP
    if all(isinstance(v, Interval) for v in items):
        ivs = [v for v in items if isinstance(v, Interval)]
        return Interval(min(v.lo for v in ivs), max(v.hi for v in ivs))
    if all(isinstance(v, ValueSet) for v in items):
        return ValueSet(frozenset().union(*(v.values for v in items if isinstance(v, ValueSet))))
    return TOP


def span(*candidates: float) -> Interval:
    """The interval covering ``candidates`` (NaN ignored; all NaN: everything)."""
    finite = [c for c in candidates if not math.isnan(c)]
    return Interval(min(finite), max(finite)) if finite else Interval(-INF, INF)


def bools(value: Abstract) -> frozenset[bool]:
    """The truth values ``value`` may take."""
    if isinstance(value, ValueSet) and value.values <= {True, False}:
        return frozenset(bool(v) for v in value.values)
    return frozenset({True, False})


def is_true(value: Abstract) -> bool:
    return bools(value) == {True} and isinstance(value, ValueSet)


def is_false(value: Abstract) -> bool:
    return bools(value) == {False} and isinstance(value, ValueSet)
