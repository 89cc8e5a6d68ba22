"""Domain lints over a checked policy: what a careful risk reviewer would catch.

The checker proves a policy *can* run; these lints ask whether it does what
its author meant. Each lint is one small function taking a :class:`Linter`
and returning diagnostics (codes PT401..PT413, registered in
:mod:`policy_engine.diagnostics`), each pointing at the exact file, line and
column of the YAML that causes it.

Most lints rest on one tool: an abstract evaluator (:func:`fold`) that runs an
expression over *sets* of values instead of values. A number is an interval
``[lo, hi]``, anything else a finite set of possible values, or "unknown".
Params and literals are points, so an expression made of them folds to a
constant; live counters are ``[0, inf)`` and the drawdown ``[0, 1]``, so
``portfolio.drawdown > 150%`` is known to be always false.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import diagnostics as d
from .diagnostics import Diagnostic, PolicyError, Span, did_you_mean
from .document.checker import CheckedPolicy, CheckedRule
from .document.model import MODE_ORDER, ExprSource, ModeSpec, YamlPath
from .document.names import LIVE_FIELDS
from .document.stages import check_document
from .document.yaml_source import Document, load_document, parse_document
from .engine.policy import Policy
from .lang import syntax as s
from .lang.abstract import (
    BOTH,
    FALSE,
    INF,
    NONNEG,
    TOP,
    TRUE,
    Abstract,
    Interval,
    ValueSet,
    bools,
    const,
    hull,
    is_false,
    is_true,
    span,
)
from .lang.functions import FUNCTIONS
from .lang.lexical import fmt

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


# --- the linter ------------------------------------------------------------------------

_DOMAIN: dict[tuple[str, str], Abstract] = {
    ("portfolio", "drawdown"): Interval(0.0, 1.0),
    ("intent", "side"): ValueSet(frozenset({"long", "short", "flat"})),
    ("intent", "reduce_only"): BOTH,
    ("intent", "risk_reducing"): BOTH,
    ("intent", "requested_risk_abs"): NONNEG,
    ("intent", "risk"): NONNEG,
    ("portfolio", "equity"): NONNEG,
    ("portfolio", "peak_equity"): NONNEG,
    ("portfolio", "active_risk"): NONNEG,
    ("portfolio", "reserved_risk"): NONNEG,
    ("portfolio", "heat"): NONNEG,
    ("portfolio", "open_positions"): NONNEG,
    ("portfolio", "active_trades"): NONNEG,
}
_EQUITY = {("portfolio", "equity"), ("portfolio", "peak_equity")}
_MULTIPLE = re.compile(r"lever|mult|factor|times", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*[+-]?[0-9][0-9_]*(\.[0-9_]+)?%\s*$")


@dataclass(frozen=True)
class Expression:
    """One parsed expression of the policy and where its text lives."""

    node: s.Expr
    path: YamlPath
    base: int = 0  # offset of the expression inside the YAML scalar (message placeholders)
    rule: CheckedRule | None = None


@dataclass
class Linter:
    """A checked policy, its document, and the helpers every lint shares."""

    checked: CheckedPolicy
    doc: Document
    out: list[Diagnostic] = field(default_factory=list)

    @property
    def spec(self) -> Any:
        return self.checked.spec

    def at(self, path: YamlPath, offset: int | None = None, *, key: bool = False) -> Span:
        if offset is None:
            return self.doc.span(path, key=key)
        return self.doc.expr_span(path, offset)

    def report(self, code: str, message: str, span: Span) -> None:
        self.out.append(d.diagnostic(code, message, span))

    def expressions(self, *, messages: bool = False) -> Iterator[Expression]:
        """Every expression of the policy: rules (with `when`), modes, envelope.

        With ``messages``, also message placeholders (whose offsets are relative to the
        placeholder, not to the message: use them for names, not for positions).
        """
        for rule in self.checked.rules:
            spec = rule.spec
            yield Expression(rule.expr, spec.expr.path, 0, rule)
            if rule.when is not None and spec.when is not None:
                yield Expression(rule.when, spec.when.path, 0, rule)
            if messages and spec.message is not None:
                for part in rule.message:
                    if not isinstance(part, str):
                        yield Expression(part, spec.message.path, 0, rule)
        for name, node in self.checked.mode_whens.items():
            yield Expression(node, ("modes", name, "when"))
        for key, node in self.checked.envelope.items():
            yield Expression(node, ("envelope", key))

    def modes(self) -> list[ModeSpec]:
        return [self.spec.modes[m] for m in MODE_ORDER if m in self.spec.modes]

    def binding(
        self,
        mode: ModeSpec | None = None,
        free: Callable[[s.Name], Abstract] | None = None,
    ) -> Binding:
        """Names -> abstract values: params are points, live counters `[0, inf)`.

        ``mode`` fixes `mode.*` to one mode (else the hull over every mode);
        ``free`` decides every name that is neither a param nor a mode field.
        """
        params: dict[str, Any] = self.spec.params
        modes = [mode] if mode is not None else self.modes()

        def bind(name: s.Name) -> Abstract:
            root, key = name.path[0], name.path[1] if len(name.path) > 1 else ""
            if root == "params":
                value: Any = params.get(key)
                for part in name.path[2:]:
                    value = value.get(part) if isinstance(value, dict) else None
                return const(value) if value is not None else TOP
            if root == "mode":
                if mode is None and key == "name":
                    # an override can select any of the three, declared or not
                    return ValueSet(frozenset(MODE_ORDER))
                return hull(_mode_value(m, key) for m in modes)
            if free is not None:
                return free(name)
            return default_free(name)

        return bind

    def source(self, path: YamlPath, node: s.Expr) -> str:
        """The expression text of ``node`` as the author wrote it (canonical if unavailable)."""
        yaml_node = self.doc.values.get(path)
        if isinstance(yaml_node, yaml.ScalarNode):
            text = str(yaml_node.value)[node.start : node.end]
            if text.strip():
                return " ".join(text.split())
        return s.unparse(node)


def _mode_value(mode: ModeSpec, key: str) -> Abstract:
    if key == "name":
        return ValueSet(frozenset({mode.name}))
    if key == "risk_multiplier":
        return const(mode.risk_multiplier)
    if key == "flatten_only":
        return const(mode.flatten_only)
    if key == "source":
        return ValueSet(frozenset({"drawdown", "override"}))
    return const(mode.attrs.get(key)) if key in mode.attrs else TOP


def default_free(name: s.Name) -> Abstract:
    """What is known of a name outside params and modes: its natural range, no more."""
    root = name.path[0]
    key = name.path[1] if len(name.path) > 1 else ""
    if (root, key) in _DOMAIN:
        return _DOMAIN[(root, key)]
    if root in ("strategy", "symbol", "cohort") and key in LIVE_FIELDS:
        return NONNEG
    return TOP


def sample_free(value: float) -> Callable[[s.Name], Abstract]:
    """Every free numeric name takes ``value`` (booleans and strings stay unknown)."""

    def free(name: s.Name) -> Abstract:
        known = default_free(name)
        if isinstance(known, Interval):
            return Interval(
                min(max(value, known.lo), known.hi), min(max(value, known.lo), known.hi)
            )
        if isinstance(known, ValueSet):
            return known
        if name.path[0] in ("strategy", "symbol", "cohort") and name.path[1:2] != ("name",):
            return Interval(value, value)  # a numeric config key: same in both modes
        return TOP

    return free


def _names(node: s.Expr) -> list[s.Name]:
    return [n for n in s.walk(node) if isinstance(n, s.Name)]


def _pct(value: float) -> str:
    return f"{fmt(round(value * 100, 10))}%"


def _shadow(rule: CheckedRule) -> bool:
    return rule.spec.enforcement == "warn"


# --- the lints -------------------------------------------------------------------------


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
        later = len(rules) - i - 1
        if later == 0 or _shadow(rule):
            continue
        if rule.when is not None and not is_true(fold(rule.when, bind)):
            continue
        value = fold(rule.expr, bind)
        what = ""
        if spec.kind == "require" and is_false(value):
            what = "rejects every intent that reaches it"
        elif spec.kind == "allow" and is_true(value):
            what = "approves every intent that reaches it"
        elif (
            spec.kind == "limit"
            and spec.on_exceed == "reject"
            and isinstance(value, Interval)
            and value.hi < 0
        ):
            what = "rejects every intent that reaches it"
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


def lint_unused_params(ln: Linter) -> None:
    """PT404: a param no expression reads."""
    used = {
        n.path[1]
        for e in ln.expressions(messages=True)
        for n in _names(e.node)
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
                            hint = did_you_mean(lit.value, declared)
                            ln.report(
                                d.PT405,
                                f"strategy `{lit.value}` is not declared in `strategies`{hint}",
                                ln.at(e.path, lit.start),
                            )


def lint_strategy_limits(ln: Linter) -> None:
    """PT406: a strategy with no limit, or without a key a rule reads."""
    reads: dict[str, str] = {}
    for rule in ln.checked.rules:
        for node in (rule.expr, rule.when):
            if node is None:
                continue
            for n in _names(node):
                if n.path[0] == "strategy" and len(n.path) > 1:
                    key = n.path[1]
                    if key not in LIVE_FIELDS and key not in ("name", "enabled"):
                        reads.setdefault(key, rule.spec.id)
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
                f"mode `{m2.name}` starts at drawdown {_pct(t2)}, not above `{m1.name}` at {_pct(t1)}: thresholds must rise",
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
            memo[key] = fold(node, ln.binding(mode, sample_free(sample)))
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
        if r.spec.kind == "limit" and not _shadow(r)
    ]
    caps += [
        (f"envelope `{k}`", node, ("envelope", k))
        for k, node in ln.checked.envelope.items()
        if k in _ENVELOPE_CAPS
    ]
    for what, node, path in caps:
        if not any(n.path[0] == "mode" for n in _names(node)):
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


Cap = tuple[float, str]


def _cap_rules(ln: Linter, namespace: str) -> tuple[list[CheckedRule], list[CheckedRule]]:
    """Always-on limit rules reading only ``namespace``, params and modes.

    Split into those whose value is the same for every entity (they read only its live
    counters) and those reading its name or configuration (evaluated per entity).
    """
    shared: list[CheckedRule] = []
    specific: list[CheckedRule] = []
    for rule in ln.checked.rules:
        if rule.spec.kind != "limit" or rule.when is not None or _shadow(rule):
            continue
        names = _names(rule.expr)
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
    """PT411: `heat_cap: 6` where an expression multiplies it by the equity."""
    flagged: set[str] = set()
    for name in ln.spec.params:
        raw = ln.doc.values.get(("params", name))
        if isinstance(raw, yaml.ScalarNode) and str(raw.value).strip().endswith("%"):
            flagged.add(name)  # written as a percentage: PT412's business if it is too big
        elif _MULTIPLE.search(name):
            flagged.add(name)  # `leverage: 2` means two times the equity, on purpose
    for e in ln.expressions():
        for node in s.walk(e.node):
            params: list[s.Name] = []
            if isinstance(node, s.Binary) and node.op == "*":
                factors = _factors(node)
                if any(isinstance(f, s.Name) and f.path[:2] in _EQUITY for f in factors):
                    params = [f for f in factors if isinstance(f, s.Name)]
            elif isinstance(node, s.Compare):
                operands = (node.first, *node.rest)
                ratio = any(
                    isinstance(o, s.Binary)
                    and o.op == "/"
                    and isinstance(o.right, s.Name)
                    and o.right.path[:2] in _EQUITY
                    for o in operands
                )
                if ratio:
                    params = [o for o in operands if isinstance(o, s.Name)]
            for p in params:
                if p.path[0] != "params" or len(p.path) != 2 or p.path[1] in flagged:
                    continue
                value = ln.spec.params.get(p.path[1])
                if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
                    flagged.add(p.path[1])
                    ln.report(
                        d.PT411,
                        f"param `{p.path[1]}` is {fmt(value)}, but `{ln.source(e.path, node)}` uses it as a fraction of equity ({_pct(value)}); did you mean `{fmt(value)}%`?",
                        ln.at(("params", p.path[1])),
                    )


def lint_percentages(ln: Linter) -> None:
    """PT412: `600%` in a constant or an expression."""
    for path, scalar in ln.doc.values.items():
        if not path or path[0] not in ("params", "strategies", "symbols", "cohorts", "modes"):
            continue
        if isinstance(scalar, yaml.ScalarNode) and _PERCENT.match(str(scalar.value)):
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
                f"rule `{spec.id}` clips to `{ln.source(spec.expr.path, rule.expr)}`, which is never above {fmt(max(highs))}: it rejects every intent that reaches it",
                ln.at(spec.expr.path, rule.expr.start),
            )


LINTS: tuple[Callable[[Linter], None], ...] = (
    lint_never_fires,
    lint_unreachable,
    lint_identical,
    lint_unused_params,
    lint_undeclared_strategy,
    lint_strategy_limits,
    lint_tiers,
    lint_mode_caps,
    lint_cohort_caps,
    lint_cohort_overlap,
    lint_equity_fraction,
    lint_percentages,
    lint_clip_never_positive,
)


def lint(checked: CheckedPolicy, doc: Document) -> list[Diagnostic]:
    """Every domain lint over a policy the checker accepted. Never raises."""
    out: list[Diagnostic] = []
    for fn in LINTS:
        ln = Linter(checked, doc)
        try:
            fn(ln)
        except Exception as exc:  # a lint bug must not hide the other findings
            name = fn.__name__.removeprefix("lint_")
            message = f"lint `{name}` failed: {type(exc).__name__}: {exc}"
            out.append(d.diagnostic(d.PT499, message, Span(doc.path)))
            continue
        out.extend(ln.out)
    return d.sort_diagnostics(out)


# --- whole files ---------------------------------------------------------------------------


@dataclass
class Result:
    """What checking one file found."""

    path: str
    diagnostics: list[Diagnostic]
    checked: CheckedPolicy | None = None
    doc: Document | None = None
    rule_count: int | None = None  # set when the checked policy stayed in a worker process

    @property
    def rules(self) -> int:
        if self.rule_count is not None:
            return self.rule_count
        return len(self.checked.rules) if self.checked is not None else 0


def check_source(doc: Document) -> Result:
    """The runtime's own validation (:func:`check_document`), then the lints."""
    try:
        checked, problems = check_document(doc)
    except RecursionError:
        span = Span(doc.path)
        return Result(doc.path, [d.diagnostic(d.PT202, "policy nests too deeply", span)], doc=doc)
    diagnostics = list(problems)
    if checked is not None:
        try:  # `load_policy` compiles too: whatever it would refuse, say so here
            Policy(checked)
        except Exception as exc:
            message = (
                f"the policy passes every check but does not compile: {type(exc).__name__}: {exc}"
            )
            diagnostics.append(d.diagnostic(d.PT499, message, Span(doc.path)))
        diagnostics += lint(checked, doc)
    return Result(doc.path, d.sort_diagnostics(diagnostics), checked, doc)


def check_file(path: str, display: str | None = None) -> Result:
    """Load and check one policy file; every problem becomes a diagnostic."""
    shown = display if display is not None else path
    try:
        doc = load_document(path, shown)
    except PolicyError as exc:
        return Result(shown, list(exc.diagnostics))
    return check_source(doc)


def check_bytes(raw: bytes, display: str) -> Result:
    try:
        doc = parse_document(raw, display)
    except PolicyError as exc:
        return Result(display, list(exc.diagnostics))
    return check_source(doc)


# --- comparing two versions ------------------------------------------------------------------


def _data_without_version(doc: Document) -> Any:
    data = doc.data if isinstance(doc.data, dict) else {}
    return {k: v for k, v in data.items() if k != "version"}


def version_check(old: Result, new: Result) -> list[Diagnostic]:
    """PT420: the meaning changed but `version` did not go up."""
    if old.doc is None or new.doc is None or old.checked is None or new.checked is None:
        return []
    if _data_without_version(old.doc) == _data_without_version(new.doc):
        return []
    v_old, v_new = old.checked.spec.version, new.checked.spec.version
    if v_new > v_old:
        return []
    how = "did not change" if v_new == v_old else "went down"
    return [
        d.diagnostic(
            d.PT420,
            f"the policy changed but `version` {how} ({v_old} -> {v_new}); bump it to {v_old + 1}",
            new.doc.span(("version",)),
        )
    ]


def semantic_diff(old: CheckedPolicy, new: CheckedPolicy) -> list[str]:
    """A short, human diff: rules added, removed, reordered or changed, and limits changed."""
    out: list[str] = []
    o_spec, n_spec = old.spec, new.spec
    if o_spec.version != n_spec.version:
        out.append(f"version {o_spec.version} -> {n_spec.version}")
    o_rules = {r.spec.id: r for r in old.rules}
    n_rules = {r.spec.id: r for r in new.rules}
    for rid in n_rules:
        if rid not in o_rules:
            out.append(f"+ rule `{rid}` added at position {n_rules[rid].spec.index + 1}")
    for rid in o_rules:
        if rid not in n_rules:
            out.append(f"- rule `{rid}` removed")
    common_old = [r for r in o_rules if r in n_rules]
    common_new = [r for r in n_rules if r in o_rules]
    if common_old != common_new:
        out.append(f"~ rules reordered: {' > '.join(common_new)} (was {' > '.join(common_old)})")
    for rid in common_new:
        a, b = o_rules[rid], n_rules[rid]
        for label, x, y in _rule_fields(a, b):
            if x != y:
                out.append(f"~ rule `{rid}` {label}: `{x}` -> `{y}`")
    for section, before, after in (
        ("params", o_spec.params, n_spec.params),
        ("strategies", o_spec.strategies, n_spec.strategies),
        ("symbols", o_spec.symbols, n_spec.symbols),
        ("cohorts", _cohorts(o_spec), _cohorts(n_spec)),
        ("modes", _modes(o_spec), _modes(n_spec)),
    ):
        for key in sorted(set(before) | set(after)):
            x, y = before.get(key), after.get(key)
            if x == y:
                continue
            if x is None:
                out.append(f"+ {section}.{key} = {fmt_value(y)}")
            elif y is None:
                out.append(f"- {section}.{key} (was {fmt_value(x)})")
            elif isinstance(x, dict) and isinstance(y, dict):
                for sub in sorted(set(x) | set(y)):
                    if x.get(sub) != y.get(sub):
                        out.append(
                            f"~ {section}.{key}.{sub}: {fmt_value(x.get(sub))} -> {fmt_value(y.get(sub))}"
                        )
            else:
                out.append(f"~ {section}.{key}: {fmt_value(x)} -> {fmt_value(y)}")
    for key in ("name", "description", "reservation_ttl_sec", "min_risk_abs"):
        x, y = getattr(o_spec, key), getattr(n_spec, key)
        if x != y:
            out.append(f"~ {key}: {fmt_value(x)} -> {fmt_value(y)}")
    o_env = {k: s.unparse(v) for k, v in old.envelope.items()}
    n_env = {k: s.unparse(v) for k, v in new.envelope.items()}
    for key in sorted(set(o_env) | set(n_env)):
        if o_env.get(key) != n_env.get(key):
            out.append(f"~ envelope.{key}: `{o_env.get(key, '')}` -> `{n_env.get(key, '')}`")
    return out


def fmt_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt_value(v)}" for k, v in value.items()) + "}"
    return fmt(value)


def _rule_fields(a: CheckedRule, b: CheckedRule) -> list[tuple[str, Any, Any]]:
    def when(r: CheckedRule) -> str:
        return s.unparse(r.when) if r.when is not None else "always"

    def msg(r: CheckedRule) -> str:
        return r.spec.message.text if r.spec.message is not None else ""

    return [
        ("expression", _expr(a), _expr(b)),
        ("when", when(a), when(b)),
        ("on_exceed", a.spec.on_exceed, b.spec.on_exceed),
        ("enforcement", a.spec.enforcement, b.spec.enforcement),
        ("code", a.spec.code, b.spec.code),
        ("message", msg(a), msg(b)),
    ]


def _expr(r: CheckedRule) -> str:
    return f"{r.spec.kind}: {s.unparse(r.expr)}"


def _cohorts(spec: Any) -> dict[str, Any]:
    return {k: {"symbols": list(c.symbols), **c.attrs} for k, c in spec.cohorts.items()}


def _modes(spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, m in spec.modes.items():
        out[name] = {
            "risk_multiplier": m.risk_multiplier,
            "flatten_only": m.flatten_only,
            "when": m.when.text if m.when is not None else None,
            **m.attrs,
        }
    return out


__all__ = [
    "LINTS",
    "ExprSource",
    "Linter",
    "Result",
    "check_bytes",
    "check_file",
    "check_source",
    "fold",
    "lint",
    "semantic_diff",
    "version_check",
]
