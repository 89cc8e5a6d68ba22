"""The heat caps a policy declares, found in its limit rules and evaluated for a live state.

Metrics and the day report show each bucket's heat next to its cap. A policy has
no `cap` keyword: a cap is a limit rule written the house way, ``limit: X -
<scope>.heat`` (``params.cohort_cap * mode.risk_multiplier - cohort.heat``), whose
headroom is the cap ``X`` less what the bucket holds. So :func:`heat_caps` takes
every enforced limit rule of that shape, for the scopes ``portfolio``,
``strategy``, ``symbol`` and ``cohort``, and :class:`Caps` evaluates ``X`` for one
bucket with the reference interpreter: the level the rule lets that bucket's heat
reach in the current mode. ``X`` may read params, the mode, the portfolio and its
own bucket; a rule whose ``X`` (or ``when``) reads the intent or another bucket
kind is not a cap of one bucket and is left out, as are shadow (``warn``) rules.
Pure: nothing here reads a clock or a file.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, assert_never

from ..document.names import Ref, Source
from ..lang import syntax as s
from ..lang.errors import EvalError
from .interpreter import Env, evaluate
from .policy import Policy
from .runtime import MODE_FROM_OVERRIDE

SCOPES = ("portfolio", "strategy", "symbol", "cohort")

# Portfolio fields that do not move with trades: a cap reading only these (and params,
# the mode and bucket configuration) changes only when the equity or the mode does.
_STEADY_PORTFOLIO = frozenset({"equity", "peak_equity", "drawdown"})


class HeatCap(NamedTuple):
    """One enforced ``limit: X - <scope>.heat`` rule."""

    rule_id: str
    scope: str
    cap: s.Expr  # X
    when: s.Expr | None
    live: bool  # X or `when` reads live counters (no memo across trades)


class _BucketIntent:
    """What the interpreter reads of an intent when a cap names a bucket: its names."""

    __slots__ = ("correlation_bucket", "intent_id", "strategy", "symbol")

    def __init__(self, scope: str, name: str) -> None:
        self.intent_id = ""
        self.strategy = name if scope == "strategy" else ""
        self.symbol = name if scope == "symbol" else ""
        # A cohort is named through the correlation bucket: no symbol maps it elsewhere.
        self.correlation_bucket = name if scope == "cohort" else None


def _reads(policy: Policy, expr: s.Expr, scope: str) -> tuple[bool, bool]:
    """(may ``expr`` be a cap of one ``scope`` bucket, does it read live counters)."""
    live = False
    for node in s.walk(expr):
        if not isinstance(node, s.Name):
            continue
        ref = policy.checked.scope.resolve(node.path)
        if not isinstance(ref, Ref):
            return False, live
        reads = bucket_read(ref)
        if reads is None:
            return False, live
        namespace, reads_live = reads
        if namespace is not None and namespace != scope:
            return False, live
        live = live or reads_live
    return True, live


def bucket_read(ref: Ref) -> tuple[str | None, bool] | None:
    """What ``ref`` reads for a heat cap: (the bucket namespace it is tied to, or None for
    none; whether it is live), or None when no cap of one bucket can read it (the intent's
    fields, a scope's, a window, a latch)."""
    match ref.source:  # every Source, or mypy says which one is missing
        case Source.PORTFOLIO:
            return None, ref.key not in _STEADY_PORTFOLIO
        case Source.MODE | Source.PARAM:
            return None, False
        case Source.STRATEGY_NAME | Source.STRATEGY_CFG:
            return "strategy", False
        case Source.STRATEGY_LIVE:
            return "strategy", True
        case Source.SYMBOL_NAME | Source.SYMBOL_CFG:
            return "symbol", False
        case Source.SYMBOL_LIVE:
            return "symbol", True
        case Source.COHORT_NAME | Source.COHORT_SYMBOLS | Source.COHORT_CFG:
            return "cohort", False
        case Source.COHORT_LIVE:
            return "cohort", True
        case (
            Source.INTENT
            | Source.INTENT_RISK
            | Source.INTENT_COHORT
            | Source.INTENT_TIME
            | Source.SCOPE_NAME
            | Source.SCOPE_CFG
            | Source.SCOPE_LIVE
            | Source.WINDOW
            | Source.LATCH
            | Source.LOCK
            | Source.POSITION
            | Source.BALANCE
        ):
            return None
        case unknown:
            assert_never(unknown)


def heat_caps(policy: Policy) -> tuple[HeatCap, ...]:
    """Every enforced limit rule of ``policy`` written as ``X - <scope>.heat``, in order."""
    found: list[HeatCap] = []
    for rule in policy.checked.rules:
        spec = rule.spec
        expr = rule.expr
        if spec.kind != "limit" or spec.enforcement != "enforce":
            continue
        if not (isinstance(expr, s.Binary) and expr.op == "-"):
            continue
        right = expr.right
        if not (isinstance(right, s.Name) and len(right.path) == 2 and right.path[1] == "heat"):
            continue
        scope = right.path[0]
        if scope not in SCOPES:
            continue
        ok, live = _reads(policy, expr.left, scope)
        when_ok, when_live = (
            (True, False) if rule.when is None else _reads(policy, rule.when, scope)
        )
        if ok and when_ok:
            found.append(HeatCap(spec.id, scope, expr.left, rule.when, live or when_live))
    return tuple(found)


class Caps:
    """The heat caps of one policy, evaluated for a state (memoised while nothing they read
    changes: the equity, the mode, and for caps reading live counters, every mutation)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.caps = heat_caps(policy)
        self.scopes = tuple(sc for sc in SCOPES if any(c.scope == sc for c in self.caps))
        self._memo: dict[tuple[Any, ...], tuple[tuple[str, float], ...]] = {}
        # a scope whose caps read no live counter: its values are memoised
        self._steady = {sc: not any(c.live for c in self.caps if c.scope == sc) for sc in SCOPES}

    def values(
        self, state: Any, scope: str, name: str = "", mode: Any = None
    ) -> tuple[tuple[str, float], ...]:
        """``(rule id, cap)`` for each cap of ``scope`` in force for bucket ``name`` (the
        portfolio has no name). A cap that fails to evaluate, is not a finite number, or
        whose ``when`` does not hold is left out. ``mode``: the policy's ``mode_of(state)``,
        if the caller has it (a report reads many buckets of one state)."""
        policy = self.policy
        if mode is None:
            mode = policy.mode_of(state)
        key = (scope, name, mode.level, mode.source, state.equity, state.peak_equity)
        memo = self._memo
        steady = self._steady.get(scope, True)
        if steady and key in memo:
            return memo[key]
        env = Env(
            policy.checked.scope,
            policy.data,
            _BucketIntent(scope, name),
            state,
            policy.data.modes[mode.level],
            0.0,
        )
        env.overridden = mode.source == MODE_FROM_OVERRIDE
        out: list[tuple[str, float]] = []
        for cap in self.caps:
            if cap.scope != scope:
                continue
            try:
                if cap.when is not None and not evaluate(cap.when, env):
                    continue
                value = evaluate(cap.cap, env)
            except (EvalError, ArithmeticError, KeyError, TypeError, ValueError):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                out.append((cap.rule_id, float(value)))
        result = tuple(out)
        if steady:
            if len(memo) > 4096:
                memo.clear()
            memo[key] = result
        return result


__all__ = ["SCOPES", "Caps", "HeatCap", "bucket_read", "heat_caps"]
