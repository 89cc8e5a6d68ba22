"""The :class:`Linter`: a checked policy, its document, and what every lint shares.

Lints are small functions of a :class:`Linter` that report positioned
diagnostics; this module gives them the policy's expressions with their YAML
paths, the abstract binding of names (params are points, live counters
``[0, inf)``, modes one at a time or all together) and a few helpers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, assert_never

import yaml

from .. import diagnostics as d
from ..diagnostics import Diagnostic, Span
from ..document.checker import CheckedPolicy, CheckedRule
from ..document.model import ModeSpec, YamlPath
from ..document.names import Ref, Scope, Source
from ..document.yaml_source import Document
from ..engine.runtime import MODE_FROM_OVERRIDE, MODE_FROM_TIERS
from ..lang import syntax as s
from ..lang.abstract import (
    BOTH,
    NONNEG,
    TOP,
    Abstract,
    Interval,
    ValueSet,
    const,
    hull,
)
from ..lang.lexical import fmt
from .fold import Binding

ANY_NUMBER = Interval(-math.inf, math.inf)
# The natural ranges of an intent's fields and the portfolio's values (see `domain`).
_INTENT_DOMAIN: dict[str, Abstract] = {
    "side": ValueSet(frozenset({"long", "short", "flat"})),
    "reduce_only": BOTH,
    "risk_reducing": BOTH,
    "requested_risk_abs": NONNEG,
    "notional": NONNEG,
    "group_count": Interval(1.0, math.inf),
    "group_risk": NONNEG,
}
_PORTFOLIO_DOMAIN: dict[str, Abstract] = {
    "drawdown": Interval(0.0, 1.0),
    "equity": NONNEG,
    "peak_equity": NONNEG,
    "active_risk": NONNEG,
    "reserved_risk": NONNEG,
    "heat": NONNEG,
    "open_positions": NONNEG,
    "active_trades": NONNEG,
    "long_risk": NONNEG,
    "short_risk": NONNEG,
    "net_risk": ANY_NUMBER,
    "day_start_equity": NONNEG,
    "day_pnl": ANY_NUMBER,
    "day_realized_pnl": ANY_NUMBER,
    "loss_streak": NONNEG,
    "active_notional": NONNEG,
    "reserved_notional": NONNEG,
    "gross_notional": NONNEG,
    "long_notional": NONNEG,
    "short_notional": NONNEG,
    "net_notional": ANY_NUMBER,
    "unrealized_pnl": ANY_NUMBER,
    "unrealized_drawdown": NONNEG,
}
_POSITION_DOMAIN: dict[str, Abstract] = {
    "side": ValueSet(frozenset({"long", "short"})),
    "size": NONNEG,
    "notional": NONNEG,
    "unrealized_pnl": ANY_NUMBER,
}
# Live values that may be negative: the rest of a bucket's live values are `[0, inf)`.
SIGNED_LIVE = frozenset({"net_risk", "day_realized_pnl", "net_notional", "unrealized_pnl"})
EQUITY_NAMES = {("portfolio", "equity"), ("portfolio", "peak_equity")}
MULTIPLE_NAME = re.compile(r"lever|mult|factor|times", re.IGNORECASE)
PERCENT_TEXT = re.compile(r"^\s*[+-]?[0-9][0-9_]*(\.[0-9_]+)?%\s*$")


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

    def report(self, code: str, message: str, span: Span, help: str | None = None) -> None:
        self.out.append(d.diagnostic(code, message, span, help))

    def expressions(self, *, messages: bool = False) -> Iterator[Expression]:
        """Every expression of the policy: rules (with `when`), modes, latches, envelope.

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
        for name, node in self.checked.latch_whens.items():
            yield Expression(node, ("latches", name, "when"))
        for key, node in self.checked.envelope.items():
            yield Expression(node, ("envelope", key))

    def modes(self) -> list[ModeSpec]:
        """The declared modes, mildest first."""
        return list(self.spec.modes.values())

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
                    # an override can select any declared mode
                    return ValueSet(frozenset(self.spec.modes))
                return hull(_mode_value(m, key) for m in modes)
            if free is not None:
                return free(name)
            return default_free(self.checked.scope, name)

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
        return ValueSet(frozenset({MODE_FROM_TIERS, MODE_FROM_OVERRIDE}))
    return const(mode.attrs.get(key)) if key in mode.attrs else TOP


def default_free(scope: Scope, name: s.Name) -> Abstract:
    """What is known of a name outside params and modes: its natural range, no more."""
    ref = scope.resolve(name.path)
    return domain(ref) if isinstance(ref, Ref) else TOP


def domain(ref: Ref) -> Abstract:
    """The natural range of what ``ref`` reads, whatever the policy says (TOP: unknown)."""
    match ref.source:  # every Source, or mypy says which one is missing
        case Source.INTENT:
            return _INTENT_DOMAIN.get(ref.key, TOP)
        case Source.INTENT_RISK:
            return NONNEG
        case Source.PORTFOLIO:
            return _PORTFOLIO_DOMAIN.get(ref.key, TOP)
        case Source.BALANCE:  # free less this portfolio's locks may go below 0; null unreported
            return TOP
        case Source.LATCH | Source.LOCK:
            return BOTH
        case Source.POSITION:
            return _POSITION_DOMAIN.get(ref.key, TOP)
        case Source.STRATEGY_LIVE | Source.SYMBOL_LIVE | Source.COHORT_LIVE:
            return ANY_NUMBER if ref.key in SIGNED_LIVE else NONNEG
        case (
            Source.INTENT_COHORT
            | Source.INTENT_TIME
            | Source.STRATEGY_NAME
            | Source.STRATEGY_CFG
            | Source.SYMBOL_NAME
            | Source.SYMBOL_CFG
            | Source.COHORT_NAME
            | Source.COHORT_SYMBOLS
            | Source.COHORT_CFG
            | Source.SCOPE_NAME
            | Source.SCOPE_CFG
            | Source.SCOPE_LIVE  # unknown to the lints so far, like a window's count
            | Source.WINDOW
            | Source.MODE  # params and modes are bound by the policy's own values
            | Source.PARAM
        ):
            return TOP
        case unknown:
            assert_never(unknown)


def sample_free(scope: Scope, value: float) -> Callable[[s.Name], Abstract]:
    """Every free numeric name takes ``value`` (booleans and strings stay unknown)."""

    def free(name: s.Name) -> Abstract:
        known = default_free(scope, name)
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


def names_in(node: s.Expr) -> list[s.Name]:
    return [n for n in s.walk(node) if isinstance(n, s.Name)]


def percent(value: float) -> str:
    return f"{fmt(round(value * 100, 10))}%"


def subjects(rule: CheckedRule) -> str:
    """What ``rule`` decides, for a message: `intent` (the default), `cancel request`, ...
    (`applies_to`), joined with `or`."""
    return " or ".join(k if k == "intent" else f"{k} request" for k in rule.spec.applies_to)


def is_shadow(rule: CheckedRule) -> bool:
    return rule.spec.enforcement == "warn"
