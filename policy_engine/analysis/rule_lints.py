"""Lints about rules and names: never fires, unreachable, duplicates, unused, undeclared.

PT401 PT402 PT403 PT404 PT405 PT406 PT437 PT438, one function each.
"""

from __future__ import annotations

from typing import Any

from .. import diagnostics as d
from ..diagnostics import suggest
from ..document.checker import CheckedRule
from ..document.names import Ref, Source
from ..lang import syntax as s
from ..lang.abstract import (
    Interval,
    is_false,
    is_true,
)
from .fold import fold
from .linter import Linter, is_shadow, names_in, subjects


def lint_never_fires(ln: Linter) -> None:
    """PT401: a rule whose `when` (or `allow`) is always false."""
    bind = ln.binding()
    for rule in ln.checked.rules:
        spec = rule.spec
        if rule.when is not None and spec.when is not None and is_false(fold(rule.when, bind)):
            ln.report(
                d.PT401,
                f"rule `{spec.id}` can never fire: its `when` `{ln.source(spec.when.path, rule.when)}` is always false",
                ln.at(spec.when.path, rule.when.start),
            )
            continue
        if spec.kind == "allow" and is_false(fold(rule.expr, bind)):
            ln.report(
                d.PT401,
                f"rule `{spec.id}` can never fire: `allow` `{ln.source(spec.expr.path, rule.expr)}` is always false",
                ln.at(spec.expr.path, rule.expr.start),
            )


def lint_unreachable(ln: Linter) -> None:
    """PT402: an unconditional reject (or allow) before other rules."""
    bind = ln.binding()
    rules = ln.checked.rules
    for i, rule in enumerate(rules):
        spec = rule.spec
        # only the later rules of the same chain (`applies_to`: intents, cancels, modifies)
        kinds = set(spec.applies_to)
        later = sum(1 for r in rules[i + 1 :] if kinds.intersection(r.spec.applies_to))
        if later == 0 or is_shadow(rule):
            continue
        if rule.when is not None and not is_true(fold(rule.when, bind)):
            continue
        value = fold(rule.expr, bind)
        what = ""
        if spec.kind == "require" and is_false(value):
            what = f"rejects every {subjects(rule)} that reaches it"
        elif spec.kind == "allow" and is_true(value):
            what = f"approves every {subjects(rule)} that reaches it"
        elif (
            spec.kind == "limit"
            and spec.on_exceed == "reject"
            and isinstance(value, Interval)
            and value.hi < 0
        ):
            what = f"rejects every {subjects(rule)} that reaches it"
        if what:
            plural = "rule after it is" if later == 1 else f"{later} rules after it are"
            ln.report(
                d.PT402,
                f"rule `{spec.id}` {what}: the {plural} unreachable",
                ln.at(spec.expr.path, rule.expr.start),
            )
            return


def _signature(rule: CheckedRule) -> tuple[Any, ...]:
    spec = rule.spec
    return (
        spec.kind,
        s.unparse(rule.expr),
        s.unparse(rule.when) if rule.when is not None else None,
        spec.on_exceed if spec.kind == "limit" else None,
        spec.enforcement,
        spec.applies_to,  # the same test of another request kind is another rule
    )


def lint_identical(ln: Linter) -> None:
    """PT403: a rule that does exactly what an earlier rule does."""
    seen: dict[tuple[Any, ...], CheckedRule] = {}
    for rule in ln.checked.rules:
        key = _signature(rule)
        first = seen.get(key)
        if first is None:
            seen[key] = rule
            continue
        ln.report(
            d.PT403,
            f"rule `{rule.spec.id}` is identical to rule `{first.spec.id}` (rule {first.spec.index + 1})",
            ln.at((*rule.spec.path, "id")),
        )


def lint_clip_on_cancel(ln: Linter) -> None:
    """PT437: a clipping `limit` that decides only cancels: a cancel is all or nothing, so
    what it would clip is rejected (`rejected_request_clipped`); say `on_exceed: reject`."""
    for rule in ln.checked.rules:
        spec = rule.spec
        if spec.kind == "limit" and spec.on_exceed == "clip" and spec.applies_to == ("cancel",):
            ln.report(
                d.PT437,
                f"rule `{spec.id}` clips, but it decides only cancels: a cancel is all or "
                "nothing, so a clip rejects it (write `on_exceed: reject`)",
                ln.at((*spec.path, "on_exceed")),
            )


# What the subject of a cancel or modify request never carries: it is built from the order as
# the book keeps it (a live order is never risk-reducing: those reserve nothing, and
# `reduce_only` cannot be restated), and a request is decided alone, never in a group.
_NOT_CARRIED: dict[tuple[str, ...], str] = {
    ("intent", "reduce_only"): "always false for a request (a live order reduces nothing)",
    ("intent", "risk_reducing"): "always false for a request (a live order reduces nothing)",
}
_GROUP = "a request is decided alone: it reads a group of one (`group.count` is 1)"


def lint_request_reads(ln: Linter) -> None:
    """PT438: a rule that decides only cancels or modifies (no intents) reads a name whose
    value a request never carries: `intent.reduce_only`, `intent.risk_reducing`, `group.*`."""
    for e in ln.expressions():
        rule = e.rule
        if rule is None or "intent" in rule.spec.applies_to:
            continue
        for name in names_in(e.node):
            why = _GROUP if name.path[0] == "group" else _NOT_CARRIED.get(name.path[:2])
            if why is None:
                continue
            kinds = " and ".join(f"{k}s" for k in rule.spec.applies_to)
            ln.report(
                d.PT438,
                f"rule `{rule.spec.id}` decides only {kinds}, but reads "
                f"`{'.'.join(name.path)}`: {why}",
                ln.at(e.path, name.start + e.base),
            )


def lint_unused_params(ln: Linter) -> None:
    """PT404: a param no expression reads."""
    used = {
        n.path[1]
        for e in ln.expressions(messages=True)
        for n in names_in(e.node)
        if n.path[0] == "params"
    }
    for name in ln.spec.params:
        if name not in used:
            ln.report(d.PT404, f"param `{name}` is never used", ln.at(("params", name), key=True))


_STRATEGY_NAMES = {("intent", "strategy"), ("strategy", "name")}


def lint_undeclared_strategy(ln: Linter) -> None:
    """PT405: `intent.strategy == "SCALPR"` when the policy declares `SCALPER`."""
    declared = set(ln.spec.strategies)
    if not declared:
        return
    for e in ln.expressions():
        for node in s.walk(e.node):
            if not isinstance(node, s.Compare):
                continue
            operands = (node.first, *node.rest)
            for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
                pairs = ((left, right), (right, left)) if op in ("==", "!=") else ((left, right),)
                for name, other in pairs:
                    if not (isinstance(name, s.Name) and name.path in _STRATEGY_NAMES):
                        continue
                    literals = (
                        [other]
                        if isinstance(other, s.Str)
                        else [i for i in other.items if isinstance(i, s.Str)]
                        if isinstance(other, s.ListLit)
                        else []
                    )
                    for lit in literals:
                        if lit.value not in declared:
                            ln.report(
                                d.PT405,
                                f"strategy `{lit.value}` is not declared in `strategies`",
                                ln.at(e.path, lit.start),
                                suggest(lit.value, declared),
                            )


def lint_strategy_limits(ln: Linter) -> None:
    """PT406: a strategy with no limit, or without a key a rule reads."""
    reads: dict[str, str] = {}
    for rule in ln.checked.rules:
        for node in (rule.expr, rule.when):
            if node is None:
                continue
            for n in names_in(node):
                ref = ln.checked.scope.resolve(n.path)
                if (
                    isinstance(ref, Ref)
                    and ref.source is Source.STRATEGY_CFG
                    and ref.key != "enabled"
                ):
                    reads.setdefault(ref.key, rule.spec.id)
    for name, cfg in ln.spec.strategies.items():
        if cfg.get("enabled") is False:
            continue
        where = ln.at(("strategies", name), key=True)
        missing = [k for k in reads if k not in cfg]
        for key in missing:
            ln.report(
                d.PT406,
                f"strategy `{name}` has no `{key}`, which rule `{reads[key]}` reads: its intents fail closed",
                where,
            )
        numeric = [
            k for k, v in cfg.items() if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if not numeric and not missing:
            ln.report(d.PT406, f"strategy `{name}` declares no limit (such as `max_trades`)", where)
