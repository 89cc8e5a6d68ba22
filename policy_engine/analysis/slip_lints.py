"""Lints about slips of the pen: rules that read right and do something else.

PT414 (a percentage written `6 %` or `6%%`), PT415 (a count compared with `<=`
against its maximum admits one more), PT416 (a drawdown threshold written as a
whole number), PT417 (dividing by a live value that is zero on an empty book),
PT418 (a rule that rejects an ordinary intent on an empty book in normal mode),
one function each. PT414 reads only the document, so it runs even on a policy
that fails to check: the slip is reported where it is written, not only where a
type error shows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from itertools import pairwise

import yaml

from .. import diagnostics as d
from ..diagnostics import Diagnostic
from ..document.model import ModeSpec
from ..document.names import LIVE_FIELDS, Scope
from ..document.yaml_source import Document
from ..lang import syntax as s
from ..lang.abstract import FALSE, TOP, Abstract, Interval, ValueSet, const, is_false, is_true
from ..lang.lexical import fmt
from .fold import fold
from .linter import Expression, Linter, default_free, is_shadow, percent

MISWRITTEN_PERCENT = re.compile(r"^\s*([+-]?[0-9][0-9_]*(?:\.[0-9_]+)?)(\s+%+|%{2,})\s*$")
_CONSTANT_SECTIONS = ("params", "strategies", "symbols", "cohorts", "modes")
_COUNTS = ("active_trades", "open_positions")
_LIVE_ROOTS = ("portfolio", "strategy", "symbol", "cohort")
_DRAWDOWN = ("portfolio", "drawdown")


def lint_document_percentages(doc: Document) -> list[Diagnostic]:
    """PT414: `heat_cap: 6 %` or `6%%` is text, not a number; say so where it is written."""
    out = []
    for path, node in doc.values.items():
        if not path or path[0] not in _CONSTANT_SECTIONS or path[-1] == "when":
            continue
        if isinstance(node, yaml.ScalarNode) and node.style is None:
            m = MISWRITTEN_PERCENT.match(str(node.value))
            if m:
                message = f"`{str(node.value).strip()}` is text, not a percentage: an expression reading it fails to check"
                where = doc.position(node.start_mark.index)
                out.append(d.diagnostic(d.PT414, message, where, f"write `{m.group(1)}%`"))
    return out


def _is_live(node: s.Expr, keys: Collection[str] = tuple(LIVE_FIELDS)) -> bool:
    return (
        isinstance(node, s.Name)
        and len(node.path) == 2
        and node.path[0] in _LIVE_ROOTS
        and node.path[1] in keys
    )


def _compares(node: s.Expr) -> list[s.Compare]:
    """The comparisons of ``node`` that decide in its own direction (not under a `not`)."""
    out: list[s.Compare] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, s.Not):
            continue
        if isinstance(n, s.Compare):
            out.append(n)
        stack.extend(s.children(n))
    return out


def lint_count_at_most(ln: Linter) -> None:
    """PT415: `strategy.active_trades <= strategy.max_trades` lets one more trade in."""
    for rule in ln.checked.rules:
        spec = rule.spec
        if spec.kind == "limit" or spec.applies_to == ("cancel",):
            continue  # (a cancel's order is live: the counts include it)
        for cmp in _compares(rule.expr):
            operands = (cmp.first, *cmp.rest)
            for op, left, right in zip(cmp.ops, operands, operands[1:], strict=False):
                count, bound = (left, right) if op == "<=" else (right, left)
                if op not in ("<=", ">=") or not _is_live(count, _COUNTS) or _is_live(bound):
                    continue
                written = ln.source(spec.expr.path, cmp)
                fixed = f"{ln.source(spec.expr.path, count)} < {ln.source(spec.expr.path, bound)}"
                ln.report(
                    d.PT415,
                    f"`{written}` admits one more than `{ln.source(spec.expr.path, bound)}`: the count does not include the intent being decided",
                    ln.at(spec.expr.path, cmp.start),
                    f"write `{fixed}`",
                )


def lint_drawdown_whole_number(ln: Linter) -> None:
    """PT416: `portfolio.drawdown >= 5` compares a fraction with 500%."""
    for e in ln.expressions():
        for cmp in (n for n in s.walk(e.node) if isinstance(n, s.Compare)):
            operands = (cmp.first, *cmp.rest)
            for left, right in pairwise(operands):
                for name, other in ((left, right), (right, left)):
                    if isinstance(name, s.Name) and name.path == _DRAWDOWN:
                        _whole_threshold(ln, e, other)


def _whole_threshold(ln: Linter, e: Expression, other: s.Expr) -> None:
    written = ln.source(e.path, other)
    if isinstance(other, s.Num):
        value, shown, where = other.value, written, ln.at(e.path, other.start)
    elif isinstance(other, s.Name) and other.path[0] == "params" and len(other.path) == 2:
        raw = ln.doc.values.get(("params", other.path[1]))
        value = ln.spec.params.get(other.path[1])
        if not isinstance(raw, yaml.ScalarNode) or not isinstance(value, int | float):
            return
        shown, where = f"{written} = {str(raw.value).strip()}", ln.at(e.path, other.start)
        written = str(raw.value).strip()
    else:
        return
    if isinstance(value, bool) or written.endswith("%") or value < 1:
        return
    ln.report(
        d.PT416,
        f"`portfolio.drawdown` is a fraction of the peak, but it is compared with `{shown}`, a drawdown of {percent(value)}",
        where,
        f"did you mean `{fmt(value)}%`?",
    )


def lint_divide_by_live(ln: Linter) -> None:
    """PT417: `/ portfolio.open_positions` fails on an empty book, and fails closed."""
    for e in ln.expressions():
        guards: set[str] = set()
        if e.rule is not None and e.rule.when is not None and e.node is e.rule.expr:
            guards = _names(e.rule.when)
        _divisions(ln, e, e.node, guards)


def _names(node: s.Expr) -> set[str]:
    return {n.dotted for n in s.walk(node) if isinstance(n, s.Name)}


def _divisions(ln: Linter, e: Expression, node: s.Expr, guards: set[str]) -> None:
    """Walk ``node``; a name tested by an enclosing `if` or an earlier `and`/`or` operand is
    guarded (`x / n if n > 0 else 0`, `n > 0 and x / n < 3`)."""
    if isinstance(node, s.Binary) and node.op == "/" and _is_live(node.right):
        name = node.right
        assert isinstance(name, s.Name)
        if name.dotted not in guards:
            ln.report(
                d.PT417,
                f"`{name.dotted}` is 0 on an empty book: `{ln.source(e.path, node)}` then fails, and the decision fails closed (rejected)",
                ln.at(e.path, name.start),
                f"guard it (`... if {name.dotted} > 0 else ...`) or divide by `max(1, {name.dotted})`",
            )
    if isinstance(node, s.Cond):
        inner = guards | _names(node.test)
        _divisions(ln, e, node.test, guards)
        _divisions(ln, e, node.body, inner)
        _divisions(ln, e, node.orelse, inner)
        return
    if isinstance(node, s.BoolOp):
        seen = set(guards)
        for operand in node.values:
            _divisions(ln, e, operand, seen)
            seen |= _names(operand)
        return
    for child in s.children(node):
        _divisions(ln, e, child, guards)


def _ordinary(
    scope: Scope, strategy: str | None, cfg: dict[str, object], empty: bool
) -> Callable[[s.Name], Abstract]:
    """An ordinary intent (long or short, not reducing, some risk) of ``strategy`` against a
    portfolio with equity and no drawdown; with ``empty``, nothing open or reserved."""

    def free(name: s.Name) -> Abstract:
        root, key = name.path[0], name.path[1] if len(name.path) > 1 else ""
        if key in LIVE_FIELDS and root in _LIVE_ROOTS:
            return Interval(0.0, 0.0) if empty else Interval(0.0, float("inf"))
        if (root, key) == _DRAWDOWN:
            return Interval(0.0, 0.0)
        if root == "portfolio" and key in ("equity", "peak_equity"):
            return Interval(1.0, float("inf"))
        if root == "intent" and key in ("risk", "requested_risk_abs"):
            return Interval(1e-6, float("inf"))
        if root == "intent" and key in ("reduce_only", "risk_reducing"):
            return FALSE
        if (root, key) == ("intent", "side"):
            return ValueSet(frozenset({"long", "short"}))
        if strategy is not None and ((root, key) in (("intent", "strategy"), ("strategy", "name"))):
            return ValueSet(frozenset({strategy}))
        if strategy is not None and root == "strategy":
            return const(cfg[key]) if key in cfg else TOP
        return default_free(scope, name)

    return free


def _rejects(kind: str, value: Abstract) -> bool:
    """A gate that is false, or a cap never above 0, rejects every intent with some risk."""
    if kind == "require":
        return is_false(value)
    return kind == "limit" and isinstance(value, Interval) and value.hi <= 0


def lint_rejects_on_empty_book(ln: Linter) -> None:
    """PT418: a rule that rejects an ordinary intent on an empty book, in normal mode, though
    it could pass on some other book (a deliberate switch rejects on every book: PT402's)."""
    normal: ModeSpec | None = ln.spec.modes.get("normal")
    declared = [(n, c) for n, c in ln.spec.strategies.items() if c.get("enabled") is not False]
    strategies: list[tuple[str | None, dict[str, object]]] = list(declared) or [(None, {})]
    blamed: dict[int, list[str | None]] = {}
    for strategy, cfg in strategies:
        empty = ln.binding(normal, _ordinary(ln.checked.scope, strategy, cfg, True))
        busy = ln.binding(normal, _ordinary(ln.checked.scope, strategy, cfg, False))
        for i, rule in enumerate(ln.checked.rules):
            if is_shadow(rule) or "intent" not in rule.spec.applies_to:
                continue  # (a rule of cancels or modifies never sees an intent)
            if rule.when is not None:
                applies = fold(rule.when, empty)
                if not is_true(applies):
                    continue  # skipped, or it depends on the intent: nothing certain to say
            value = fold(rule.expr, empty)
            if rule.spec.kind == "allow":
                if is_true(value):
                    break  # approved here; later rules never see it
                continue
            if _rejects(rule.spec.kind, value):
                if not _rejects(rule.spec.kind, fold(rule.expr, busy)):
                    blamed.setdefault(i, []).append(strategy)
                break
    for i, who in sorted(blamed.items()):
        rule = ln.checked.rules[i]
        spec = rule.spec
        whose = (
            ""
            if len(who) == len(strategies) or who == [None]
            else " " + ", ".join(f"`{w}`" for w in who)
        )
        written = ln.source(spec.expr.path, rule.expr)
        ln.report(
            d.PT418,
            f"rule `{spec.id}` rejects every ordinary{whose} intent on an empty book in normal mode: `{written}` fails when nothing is open or reserved",
            ln.at(spec.expr.path, rule.expr.start),
            "check the comparison's direction: on an empty book every live count and risk is 0",
        )


__all__ = [
    "MISWRITTEN_PERCENT",
    "lint_count_at_most",
    "lint_divide_by_live",
    "lint_document_percentages",
    "lint_drawdown_whole_number",
    "lint_rejects_on_empty_book",
]
