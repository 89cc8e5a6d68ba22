"""Lints about what a policy declares besides its rules: windows, latches, inputs, scopes.

PT430 (a window longer than the trading day), PT431 (a declaration nothing reads),
PT432 (a latch whose `when` always holds: set by the first event, it never stays
clear), PT433 (a latch whose `when` never holds), PT434 (an input whose default is
null read without `has()`), PT435 (a window compared with a bound that cannot
matter), one function each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_never

from .. import diagnostics as d
from ..document.model import NONNEGATIVE_QUANTITIES
from ..document.names import QUOTE, Ref, Source
from ..lang import syntax as s
from ..lang.abstract import NONNEG, Abstract, is_false, is_true
from ..lang.lexical import fmt
from .fold import fold
from .linter import Expression, Linter, default_free

DAY = 86_400


def _refs(ln: Linter) -> Iterator[tuple[Expression, s.Name, Ref]]:
    """Every name every expression reads (message placeholders and latches included)."""
    scope = ln.checked.scope
    for e in ln.expressions(messages=True):
        for node in s.walk(e.node):
            if isinstance(node, s.Name):
                ref = scope.resolve(node.path)
                if isinstance(ref, Ref):
                    yield e, node, ref


def declaration_read(ref: Ref) -> tuple[str, str] | None:
    """The declaration (section, name) that reading ``ref`` uses, if any: an input, a
    window, a latch or a scope."""
    match ref.source:  # every Source, or mypy says which one is missing
        case Source.INTENT:
            return ("inputs", ref.key)  # a built-in field is no declaration: never matched
        case Source.WINDOW:
            return ("windows", ref.key)
        case Source.LATCH:
            return ("latches", ref.key)
        case Source.LOCK:
            return ("locks", ref.key)
        case Source.BALANCE:
            return ("currencies", ref.scope)  # `quote` is no declaration: never matched
        case Source.SCOPE_NAME | Source.SCOPE_CFG | Source.SCOPE_LIVE:
            return ("scopes", ref.scope)
        case (
            Source.INTENT_RISK
            | Source.INTENT_COHORT
            | Source.INTENT_TIME
            | Source.PORTFOLIO
            | Source.STRATEGY_NAME
            | Source.STRATEGY_CFG
            | Source.STRATEGY_LIVE
            | Source.SYMBOL_NAME
            | Source.SYMBOL_CFG
            | Source.SYMBOL_LIVE
            | Source.COHORT_NAME
            | Source.COHORT_SYMBOLS
            | Source.COHORT_CFG
            | Source.COHORT_LIVE
            | Source.MODE
            | Source.PARAM
            | Source.POSITION
        ):
            return None
        case unknown:
            assert_never(unknown)


def lint_long_windows(ln: Linter) -> None:
    """PT430: a window longer than the trading day."""
    for window in ln.spec.windows.values():
        if window.over > DAY:
            days = fmt(window.over / DAY)
            ln.report(
                d.PT430,
                f"window `{window.name}` is {days} days long, longer than the trading day: it "
                f"counts across rollovers (day counters start again, it does not) and keeps "
                f"every event of {days} days",
                ln.at(("windows", window.name, "over")),
                "for a limit per day, count `over: 1d`, or read `day_realized_pnl`/`loss_streak`",
            )


def lint_unread_declarations(ln: Linter) -> None:
    """PT431: a window, latch, input, scope or currency that no expression reads."""
    read: set[tuple[str, str]] = set()
    for _e, _node, ref in _refs(ln):
        declaration = declaration_read(ref)
        if declaration is not None:
            read.add(declaration)
    for window in ln.spec.windows.values():
        if window.per in ln.spec.scopes:
            read.add(("scopes", window.per))  # counting per a scope is a use of it
    for scope in ln.spec.scopes.values():
        read.update(("inputs", f) for f in scope.key_fields)  # so is keying a scope by an input
    for lock in ln.spec.locks.values():
        read.add(("windows", lock.window))  # a window that triggers a lock is used by it
    spec = ln.spec
    for section, names in (
        ("windows", spec.windows),
        ("latches", spec.latches),
        ("locks", spec.locks),
        ("inputs", spec.inputs),
        ("scopes", spec.scopes),
    ):
        for name in names:
            if (section, name) not in read:
                ln.report(
                    d.PT431,
                    f"`{section}.{name}` is declared and never read",
                    ln.at((section, name), key=True),
                )
    if ("currencies", QUOTE) not in read:  # `balance.quote.*` reads any declared one
        for i, currency in enumerate(spec.currencies):
            if ("currencies", currency) not in read:
                ln.report(
                    d.PT431,
                    f"currency `{currency}` is declared and no `balance.{currency}` is read",
                    ln.at(("currencies", i)),
                )


def lint_latch_conditions(ln: Linter) -> None:
    """PT432 / PT433: a latch whose `when` always holds (it never stays clear) or never does."""
    for name, node in ln.checked.latch_whens.items():
        value = fold(node, ln.binding())
        latch = ln.spec.latches[name]
        text = ln.source(latch.when.path, node)
        if is_true(value):
            ln.report(
                d.PT432,
                f"latch `{name}` can never clear: its `when` `{text}` always holds, so the "
                f"first event sets it again after every rollover or reset",
                ln.at(latch.when.path, node.start),
            )
        elif is_false(value):
            ln.report(
                d.PT433,
                f"latch `{name}` can never be set: its `when` `{text}` never holds",
                ln.at(latch.when.path, node.start),
            )


def lint_inputs_without_has(ln: Linter) -> None:
    """PT434: an input whose default is null read (outside `has()`) where nothing tested it;
    so is `position.*` where nothing tested `has(intent.position_id)` (an intent that names no
    position fails there)."""
    optional = {
        f"intent.{n}" for n, i in ln.spec.inputs.items() if i.default is None and not i.required
    }
    for e in ln.expressions():
        rule = e.rule
        if rule is not None and rule.spec.when_missing == "approve":
            continue  # a null there lets the intent pass this rule, by the rule's own word
        guards = _has_names(rule.when) if rule is not None and rule.when is not None else set()
        if rule is not None and e.node is rule.when:
            guards = set()
        _unguarded(ln, e, e.node, guards, optional)


_POSITION = "intent.position_id"


def _has_names(node: s.Expr) -> set[str]:
    """The names tested with `has(...)` anywhere in ``node``."""
    return {
        a.dotted
        for n in s.walk(node)
        if isinstance(n, s.Call) and n.func == "has"
        for a in n.args
        if isinstance(a, s.Name)
    }


def _unguarded(
    ln: Linter, e: Expression, node: s.Expr, guards: set[str], optional: set[str]
) -> None:
    if isinstance(node, s.Call) and node.func == "has":
        return
    if isinstance(node, s.Name) and node.path[0] == "position" and _POSITION not in guards:
        ln.report(
            d.PT434,
            f"`{node.dotted}` reads the position the intent names, and an intent may name none "
            f"(`intent.position_id` null): `{ln.source(e.path, e.node)}` then fails, and the "
            f"decision fails closed (rejected)",
            ln.at(e.path, node.start),
            f"read it under `when: has({_POSITION})`, or write `has({_POSITION}) and ...`",
        )
        return
    if isinstance(node, s.Name) and node.dotted in optional and node.dotted not in guards:
        ln.report(
            d.PT434,
            f"`{node.dotted}` may be null (its default is null): `{ln.source(e.path, e.node)}` "
            f"then fails, and the decision fails closed (rejected)",
            ln.at(e.path, node.start),
            f"read it under `when: has({node.dotted})`, or write `has({node.dotted}) and ...`",
        )
        return
    if isinstance(node, s.Cond):
        _unguarded(ln, e, node.test, guards, optional)
        inner = guards | _has_names(node.test)
        _unguarded(ln, e, node.body, inner, optional)
        _unguarded(ln, e, node.orelse, inner, optional)
        return
    if isinstance(node, s.BoolOp):
        seen = set(guards)
        for operand in node.values:
            _unguarded(ln, e, operand, seen, optional)
            seen |= _has_names(operand)
        return
    for child in s.children(node):
        _unguarded(ln, e, child, guards, optional)


def lint_window_bounds(ln: Linter) -> None:
    """PT435: a window's count compared with a bound that makes the comparison always hold
    or never hold (a count is a whole number from 0 up, and so is never below 0 an
    aggregate of risk or notional, or a drawdown; one of realized P&L or fees may be
    anything, so it is left out)."""
    scope = ln.checked.scope
    windows = ln.spec.windows

    def counting(ref: object) -> bool:
        if not isinstance(ref, Ref) or ref.source is not Source.WINDOW:
            return False
        w = windows.get(ref.key)
        return (
            w is None
            or w.aggregate is None
            or w.aggregate == "drawdown"
            or w.quantity in NONNEGATIVE_QUANTITIES
        )

    def free(name: s.Name) -> Abstract:
        if counting(scope.resolve(name.path)):
            return NONNEG
        return default_free(scope, name)

    bind = ln.binding(free=free)
    for e in ln.expressions():
        for node in s.walk(e.node):
            if not isinstance(node, s.Compare):
                continue
            counts = [
                n
                for n in (node.first, *node.rest)
                if isinstance(n, s.Name) and counting(scope.resolve(n.path))
            ]
            if not counts:
                continue
            value = fold(node, bind)
            if is_true(value) or is_false(value):
                always = "always holds" if is_true(value) else "never holds"
                w = windows.get(counts[0].path[-1])
                what = "counts events from 0 up"
                if w is not None and w.aggregate is not None:
                    what = "is never below 0"
                ln.report(
                    d.PT435,
                    f"`{ln.source(e.path, node)}` {always}: `{counts[0].dotted}` {what}, so "
                    f"this bound cannot matter",
                    ln.at(e.path, node.start),
                )


__all__ = [
    "declaration_read",
    "lint_inputs_without_has",
    "lint_latch_conditions",
    "lint_long_windows",
    "lint_unread_declarations",
    "lint_window_bounds",
]
