"""Lints about caps and numbers: cohort vs symbol caps, overlapping cohorts, fractions,
percentages, clips that can never be positive.

PT409 PT410 PT411 PT412 PT413, one function each.
"""

from __future__ import annotations

from typing import Any

import yaml

from .. import diagnostics as d
from ..document.checker import CheckedRule
from ..document.model import YamlPath
from ..document.names import LIVE_FIELDS
from ..lang import syntax as s
from ..lang.abstract import (
    INF,
    TOP,
    Abstract,
    Interval,
    ValueSet,
    const,
)
from ..lang.lexical import fmt
from .fold import fold
from .linter import (
    EQUITY_NAMES,
    MULTIPLE_NAME,
    PERCENT_TEXT,
    Linter,
    is_shadow,
    names_in,
    percent,
    subjects,
)

Cap = tuple[float, str]


def _cap_rules(ln: Linter, namespace: str) -> tuple[list[CheckedRule], list[CheckedRule]]:
    """Always-on limit rules reading only ``namespace``, params and modes.

    Split into those whose value is the same for every entity (they read only its live
    counters) and those reading its name or configuration (evaluated per entity).
    """
    shared: list[CheckedRule] = []
    specific: list[CheckedRule] = []
    for rule in ln.checked.rules:
        if rule.spec.kind != "limit" or rule.when is not None or is_shadow(rule):
            continue
        if "intent" not in rule.spec.applies_to:
            continue  # a cap of cancels or modifies caps no reservation an intent makes
        names = names_in(rule.expr)
        if not any(n.path[0] == namespace for n in names):
            continue
        if any(n.path[0] not in (namespace, "params", "mode") for n in names):
            continue
        own = [n for n in names if n.path[0] == namespace and n.path[1] not in LIVE_FIELDS]
        (specific if own else shared).append(rule)
    return shared, specific


def _entity_cap(ln: Linter, rules: list[CheckedRule], name: str, cfg: dict[str, Any]) -> Cap | None:
    """The tightest cap ``rules`` give entity ``name`` in `normal`, with nothing used yet."""
    normal = ln.spec.modes.get("normal")

    def free(n: s.Name) -> Abstract:
        key = n.path[1]
        if key in LIVE_FIELDS:
            return Interval(0.0, 0.0)
        if key == "name":
            return ValueSet(frozenset({name}))
        return const(cfg[key]) if key in cfg else TOP

    bind = ln.binding(normal, free)
    best: Cap | None = None
    for rule in rules:
        value = fold(rule.expr, bind)
        if isinstance(value, Interval) and value.point and (best is None or value.lo < best[0]):
            best = (value.lo, rule.spec.id)
    return best


def _tighter(a: Cap | None, b: Cap | None) -> Cap | None:
    if a is None or b is None:
        return a if b is None else b
    return a if a[0] <= b[0] else b


def lint_cohort_caps(ln: Linter) -> None:
    """PT409: a cohort capped below what one of its members may hold alone."""
    c_shared, c_specific = _cap_rules(ln, "cohort")
    s_shared, s_specific = _cap_rules(ln, "symbol")
    if not (c_shared or c_specific) or not (s_shared or s_specific):
        return
    cohort_base = _entity_cap(ln, c_shared, "", {})
    symbol_base = _entity_cap(ln, s_shared, "", {})
    symbol_caps: dict[str, Cap | None] = {}
    for cohort in ln.spec.cohorts.values():
        ccap = _tighter(cohort_base, _entity_cap(ln, c_specific, cohort.name, cohort.attrs))
        if ccap is None:
            continue
        offenders: list[tuple[int, str, Cap]] = []
        for i, symbol in enumerate(cohort.symbols):
            if symbol not in symbol_caps:
                cfg = ln.spec.symbols.get(symbol, {})
                symbol_caps[symbol] = _tighter(
                    symbol_base, _entity_cap(ln, s_specific, symbol, cfg)
                )
            scap = symbol_caps[symbol]
            if scap is not None and ccap[0] < scap[0]:
                offenders.append((i, symbol, scap))
        if offenders:  # one finding per cohort, at its first offending member
            i, symbol, scap = offenders[0]
            more = len(offenders) - 1
            rest = f" (and {more} more member{'s' if more != 1 else ''})" if more else ""
            ln.report(
                d.PT409,
                f"cohort `{cohort.name}` is capped at {fmt(ccap[0])} by `{ccap[1]}`, below the {fmt(scap[0])} cap of its member `{symbol}` by `{scap[1]}`{rest}",
                ln.at(_member_path(ln, cohort.name, i)),
            )


def _member_path(ln: Linter, cohort: str, index: int) -> YamlPath:
    raw = ln.doc.data["cohorts"][cohort]
    return (
        ("cohorts", cohort, index)
        if isinstance(raw, list)
        else ("cohorts", cohort, "symbols", index)
    )


def lint_cohort_overlap(ln: Linter) -> None:
    """PT410: a symbol in two cohorts (only the first one counts it)."""
    owner: dict[str, str] = {}
    for cohort in ln.spec.cohorts.values():
        for i, symbol in enumerate(cohort.symbols):
            first = owner.get(symbol)
            if first is None:
                owner[symbol] = cohort.name
                continue
            again = "again in" if first == cohort.name else "already in"
            ln.report(
                d.PT410,
                f"symbol `{symbol}` is {again} cohort `{first}`: only the first cohort counts it",
                ln.at(_member_path(ln, cohort.name, i)),
            )


def _factors(node: s.Expr) -> list[s.Expr]:
    if isinstance(node, s.Binary) and node.op == "*":
        return _factors(node.left) + _factors(node.right)
    return [node]


def lint_equity_fraction(ln: Linter) -> None:
    """PT411: `heat_cap: 6` where an expression multiplies it by the equity (1 is fine)."""
    flagged: set[str] = set()
    for name in ln.spec.params:
        raw = ln.doc.values.get(("params", name))
        if isinstance(raw, yaml.ScalarNode) and str(raw.value).strip().endswith("%"):
            flagged.add(name)  # written as a percentage: PT412's business if it is too big
        elif MULTIPLE_NAME.search(name):
            flagged.add(name)  # `leverage: 2` means two times the equity, on purpose
    for e in ln.expressions():
        for node in s.walk(e.node):
            params: list[s.Name] = []
            if isinstance(node, s.Binary) and node.op == "*":
                factors = _factors(node)
                if any(isinstance(f, s.Name) and f.path[:2] in EQUITY_NAMES for f in factors):
                    params = [f for f in factors if isinstance(f, s.Name)]
            elif isinstance(node, s.Compare):
                operands = (node.first, *node.rest)
                ratio = any(
                    isinstance(o, s.Binary)
                    and o.op == "/"
                    and isinstance(o.right, s.Name)
                    and o.right.path[:2] in EQUITY_NAMES
                    for o in operands
                )
                if ratio:
                    params = [o for o in operands if isinstance(o, s.Name)]
            for p in params:
                if p.path[0] != "params" or len(p.path) != 2 or p.path[1] in flagged:
                    continue
                value = ln.spec.params.get(p.path[1])
                # Exactly 1 is the whole equity, a normal ratio (freqtrade's
                # `tradable_balance_ratio: 1`); only more than the equity is suspect.
                if isinstance(value, int | float) and not isinstance(value, bool) and value > 1:
                    flagged.add(p.path[1])
                    ln.report(
                        d.PT411,
                        f"param `{p.path[1]}` is {fmt(value)}, but `{ln.source(e.path, node)}` uses it as a fraction of equity ({percent(value)})",
                        ln.at(("params", p.path[1])),
                        f"did you mean `{fmt(value)}%`?",
                    )


def lint_percentages(ln: Linter) -> None:
    """PT412: `600%` in a constant or an expression."""
    for path, scalar in ln.doc.values.items():
        if not path or path[0] not in ("params", "strategies", "symbols", "cohorts", "modes"):
            continue
        if isinstance(scalar, yaml.ScalarNode) and PERCENT_TEXT.match(str(scalar.value)):
            value = abs(float(str(scalar.value).strip().rstrip("%").replace("_", "")))
            if value > 100:
                ln.report(
                    d.PT412,
                    f"`{str(scalar.value).strip()}` is more than 100% (it means {fmt(value / 100)} times)",
                    ln.at(path),
                )
    for e in ln.expressions():
        src = ln.doc.values.get(e.path)
        if not isinstance(src, yaml.ScalarNode):
            continue
        text = str(src.value)
        for node in s.walk(e.node):
            written = text[node.start : node.end]
            if isinstance(node, s.Num) and written.endswith("%") and abs(node.value) > 1:
                ln.report(
                    d.PT412,
                    f"`{written}` is more than 100% (it means {fmt(node.value)} times)",
                    ln.at(e.path, node.start),
                )


def lint_clip_never_positive(ln: Linter) -> None:
    """PT413: a clip rule whose limit is at most zero in every mode."""
    for rule in ln.checked.rules:
        spec = rule.spec
        if spec.kind != "limit" or spec.on_exceed != "clip":
            continue
        highs = []
        for mode in ln.modes():
            value = fold(rule.expr, ln.binding(mode))
            highs.append(value.hi if isinstance(value, Interval) else INF)
        if highs and max(highs) <= 0:
            ln.report(
                d.PT413,
                f"rule `{spec.id}` clips to `{ln.source(spec.expr.path, rule.expr)}`, which is never above {fmt(max(highs))}: it rejects every {subjects(rule)} that reaches it",
                ln.at(spec.expr.path, rule.expr.start),
            )
