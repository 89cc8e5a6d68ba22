"""Lints about modes and tiers: tiers that do not tighten, caps looser in a severer mode.

PT407 PT408, one function each.
"""

from __future__ import annotations

import itertools
from typing import Any

from .. import diagnostics as d
from ..document.model import ModeSpec, YamlPath
from ..lang import syntax as s
from ..lang.abstract import (
    Interval,
)
from ..lang.lexical import fmt
from .fold import fold
from .linter import Linter, is_shadow, names_in, percent, sample_free


def _threshold(mode: ModeSpec, node: s.Expr, ln: Linter) -> tuple[float, int] | None:
    """`portfolio.drawdown >= X` -> (X, offset of X)."""
    if not (isinstance(node, s.Compare) and len(node.ops) == 1):
        return None
    left, right, op = node.first, node.rest[0], node.ops[0]
    drawdown = ("portfolio", "drawdown")
    if isinstance(right, s.Name) and right.path == drawdown:
        left, right = right, left
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
    if not (isinstance(left, s.Name) and left.path == drawdown and op in (">", ">=")):
        return None
    value = fold(right, ln.binding())
    if isinstance(value, Interval) and value.point:
        return value.lo, right.start
    return None


def lint_tiers(ln: Linter) -> None:
    """PT407: thresholds must rise and multipliers must not grow, normal -> risk_off."""
    modes = ln.modes()
    thresholds: list[tuple[ModeSpec, float, int]] = []
    for mode in modes:
        node = ln.checked.mode_whens.get(mode.name)
        found = _threshold(mode, node, ln) if node is not None else None
        if found is not None:
            thresholds.append((mode, *found))
    for (m1, t1, _), (m2, t2, off2) in itertools.pairwise(thresholds):
        if t2 <= t1:
            ln.report(
                d.PT407,
                f"mode `{m2.name}` starts at drawdown {percent(t2)}, not above `{m1.name}` at {percent(t1)}: thresholds must rise",
                ln.at(("modes", m2.name, "when"), off2),
            )
    for m1, m2 in itertools.pairwise(modes):
        if m2.risk_multiplier > m1.risk_multiplier:
            ln.report(
                d.PT407,
                f"mode `{m2.name}` has `risk_multiplier` {fmt(m2.risk_multiplier)}, above {fmt(m1.risk_multiplier)} in `{m1.name}`: multipliers must not grow",
                ln.at(("modes", m2.name, "risk_multiplier")),
            )
        if m1.flatten_only and not m2.flatten_only:
            ln.report(
                d.PT407,
                f"mode `{m2.name}` turns `flatten_only` off although `{m1.name}` has it on",
                ln.at(("modes", m2.name, "flatten_only")),
            )


_SAMPLES = (0.0, 1.0, 100.0, 10_000.0, 1_000_000.0)


def _looser(
    ln: Linter, node: s.Expr, m1: ModeSpec, m2: ModeSpec, memo: dict[tuple[str, float], Any]
) -> tuple[float, float] | None:
    """Values (in m1, in m2) of ``node`` for the same inputs where m2 allows more, if any.

    ``memo`` holds this node's folds per (mode, sample): the middle mode of three is
    compared twice.
    """

    def folded(mode: ModeSpec, sample: float) -> Any:
        key = (mode.name, sample)
        if key not in memo:
            memo[key] = fold(node, ln.binding(mode, sample_free(ln.checked.scope, sample)))
        return memo[key]

    for sample in _SAMPLES:
        a = folded(m1, sample)
        b = folded(m2, sample)
        if (
            isinstance(a, Interval)
            and isinstance(b, Interval)
            and a.point
            and b.point
            and b.lo > a.lo + 1e-9 * max(1.0, abs(a.lo))
        ):
            return a.lo, b.lo
    return None


_ENVELOPE_CAPS = ("max_new_risk_abs", "max_additional_positions", "symbol_max_risk_abs")


def lint_mode_caps(ln: Linter) -> None:
    """PT408: a cap (rule limit or envelope value) looser in a more severe mode."""
    modes = ln.modes()
    pairs = [
        (m1, m2)
        for m1, m2 in itertools.pairwise(modes)
        if m2.risk_multiplier <= m1.risk_multiplier  # PT407 already says it otherwise
    ]
    caps: list[tuple[str, s.Expr, YamlPath]] = [
        (f"the limit of rule `{r.spec.id}`", r.expr, r.spec.expr.path)
        for r in ln.checked.rules
        if r.spec.kind == "limit" and not is_shadow(r)
    ]
    caps += [
        (f"envelope `{k}`", node, ("envelope", k))
        for k, node in ln.checked.envelope.items()
        if k in _ENVELOPE_CAPS
    ]
    for what, node, path in caps:
        if not any(n.path[0] == "mode" for n in names_in(node)):
            continue
        memo: dict[tuple[str, float], Any] = {}
        for m1, m2 in pairs:
            found = _looser(ln, node, m1, m2, memo)
            if found is not None:
                ln.report(
                    d.PT408,
                    f"{what} is looser in `{m2.name}` than in `{m1.name}` ({fmt(found[1])} > {fmt(found[0])} for the same inputs)",
                    ln.at(path, node.start),
                )
                break
