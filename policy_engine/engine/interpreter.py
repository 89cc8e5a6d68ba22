"""The reference interpreter: the meaning of every expression and of the chain.

Slow but careful: every read is checked and every failure becomes an
:class:`EvalError` with a precise cause. The compiled fast path must agree
with it (a differential test proves it); the evaluator falls back to it
whenever the fast path raises, and uses it to trace the numbers behind a
decision.

Evaluation options, not second semantics (as cel-go's interpreter decorators
make explanation an option): a ``trace`` records the value of every
sub-expression, an :class:`Observer` sees what each rule did and which way
every ``and``/``or``/``if`` went (``policy test --coverage``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol, assert_never

from ..document.checker import CheckedPolicy
from ..document.names import QUOTE, Ref, Scope, Source, live_source
from ..lang import syntax as s
from ..lang.errors import MISSING_KINDS, EvalError
from ..lang.errors import EvalErrorKind as E
from ..lang.functions import FUNCTIONS, number
from .outcome import APPROVED, ERROR, REJECTED, Outcome
from .runtime import (
    LOCK_PREFIX,
    MODE_FROM_OVERRIDE,
    MODE_FROM_TIERS,
    ZERO_BUCKET,
    ModeState,
    RuntimeData,
    locked,
    position_value,
    quantize_down,
    scope_key,
    within,
)

Trace = dict[str, Any]
_ABSENT: Any = object()


class Observer(Protocol):
    """Watches the reference chain: which rule ran and what it did, which way each branch
    went. Observation only: it never changes an outcome."""

    def at(self, rule: int, part: str) -> None:
        """Rule ``rule``'s ``part`` (``when`` or its kind) is about to be evaluated."""

    def rule(self, index: int, outcome: str) -> None:
        """What rule ``index`` did: approved, clipped, rejected, passed, skipped, warned, error."""

    def branch(self, node: s.Expr, taken: bool) -> None:
        """An ``and``/``or`` came out ``taken``, or an ``if`` took its body (``taken``)."""


class Env:
    """Everything one evaluation may read."""

    __slots__ = ("amount", "data", "intent", "mode", "overridden", "scope", "snap")

    def __init__(
        self,
        scope: Scope,
        data: RuntimeData,
        intent: Any,
        snap: Any,
        mode: ModeState | None,
        amount: float,
    ) -> None:
        self.overridden = False
        self.scope = scope
        self.data = data
        self.intent = intent
        self.snap = snap
        self.mode = mode
        self.amount = amount

    def read(self, node: s.Name) -> Any:
        ref = self.scope.resolve(node.path)
        assert isinstance(ref, Ref), node.path
        return read_ref(self, ref, node.dotted)


def _config(table: Mapping[str, Mapping[str, Any]], name: str, key: str, what: str) -> Any:
    cfg = table.get(name)
    if cfg is None:
        raise EvalError(
            E.UNDECLARED, f"{what} `{name}` is not declared in the policy", namespace=what
        )
    if key not in cfg:
        raise EvalError(E.MISSING_KEY, f"{what} `{name}` has no `{key}`")
    return cfg[key]


def _live(table: Mapping[str, Any], name: str, key: str) -> Any:
    return getattr(table.get(name, ZERO_BUCKET), key)


def read_ref(env: Env, ref: Ref, dotted: str) -> Any:
    intent, data, snap, key = env.intent, env.data, env.snap, ref.key
    match ref.source:  # every Source, or mypy says which one is missing
        case Source.INTENT:
            value = getattr(intent, key, _ABSENT)
            if value is _ABSENT:  # an input read from an intent not validated by this policy
                raise EvalError(
                    E.MISSING_INPUT,
                    f"the intent has no `{key}` (validate it with the policy's intent model)",
                )
            return value
        case Source.INTENT_RISK:
            return env.amount
        case Source.INTENT_TIME:
            return intent.timestamp
        case Source.INTENT_COHORT | Source.COHORT_NAME:
            return data.cohort_name(intent.symbol, intent.correlation_bucket)
        case Source.PORTFOLIO:
            return getattr(snap, key)
        case Source.MODE:
            if env.mode is None:
                raise EvalError(E.INTERNAL, "the mode is not known yet")
            if key == "source":
                return MODE_FROM_OVERRIDE if env.overridden else MODE_FROM_TIERS
            return env.mode.values[key]
        case Source.PARAM:
            value = data.params[key]
            for part in ref.rest:
                value = value[part]
            return value
        case Source.LATCH:
            return getattr(snap, "latches", {}).get(key, False)
        case Source.POSITION:
            return position_value(snap, intent, key)
        case Source.WINDOW:
            return _window_value(env, ref, dotted)
        case Source.BALANCE:  # a currency's (`quote`: the intent's own) balance, or null
            currency = intent.quote_currency if ref.scope == QUOTE else ref.scope
            return snap.balance(currency, key)
        case Source.LOCK:  # the end of the intent's key's lock, against the intent's time
            end = Ref(Source.WINDOW, LOCK_PREFIX + key, ref.type, (), ref.scope)
            return locked(_window_value(env, end, dotted), intent.timestamp)
        case Source.SCOPE_NAME | Source.SCOPE_CFG | Source.SCOPE_LIVE:
            return _scope_value(env, ref, dotted)
        case Source.STRATEGY_NAME:
            return intent.strategy
        case Source.STRATEGY_CFG:
            return _config(data.strategies, _strategy(env), key, "strategy")
        case Source.STRATEGY_LIVE:
            return _live(snap.strategies, _strategy(env), key)
        case Source.SYMBOL_NAME:
            return intent.symbol
        case Source.SYMBOL_CFG:
            return _config(data.symbols, intent.symbol, key, "symbol")
        case Source.SYMBOL_LIVE:
            return _live(snap.symbols, intent.symbol, key)
        case Source.COHORT_SYMBOLS:
            cohort = data.cohort_name(intent.symbol, intent.correlation_bucket)
            return data.cohort_symbols.get(cohort, [intent.symbol])
        case Source.COHORT_CFG:
            cohort = data.cohort_name(intent.symbol, intent.correlation_bucket)
            return _config(data.cohorts, cohort, key, "cohort")
        case Source.COHORT_LIVE:
            cohort = data.cohort_name(intent.symbol, intent.correlation_bucket)
            return _live(snap.cohorts, cohort, key)
        case unknown:
            assert_never(unknown)


def _strategy(env: Env) -> str:
    """The intent's strategy, which must be declared (even to read its live counters)."""
    name: str = env.intent.strategy
    if name not in env.data.strategies:
        raise EvalError(
            E.UNDECLARED, f"strategy `{name}` is not declared in the policy", namespace="strategy"
        )
    return name


def _window_value(env: Env, ref: Ref, dotted: str) -> Any:
    """A rolling window's count in the bucket of the namespace it is counted per."""
    namespace = ref.scope
    if namespace == "portfolio":
        bucket = env.snap
    elif namespace in env.scope.scopes:
        live = Ref(Source.SCOPE_LIVE, "windows", ref.type, (), namespace)
        bucket = _scope_value(env, live, dotted)
        return bucket.get(ref.key, 0)
    else:
        bucket = read_ref(env, Ref(live_source(namespace), "windows", ref.type), dotted)
        return bucket.get(ref.key, 0)
    return bucket.windows.get(ref.key, 0)


def _scope_value(env: Env, ref: Ref, dotted: str) -> Any:
    """A scope's key value (`venue.name`), constant or live counter, for the intent's key."""
    scope, fields = ref.scope, env.data.scope_fields[ref.scope]
    intent = env.intent
    selected = scope_key(fields, lambda f: getattr(intent, f, None))
    if selected is None:
        field = ", ".join(f"`intent.{f}`" for f in fields)
        raise EvalError(E.NO_SCOPE, f"{field} is null: there is no {scope} for `{dotted}`")
    if ref.source is Source.SCOPE_NAME:
        return selected
    if ref.source is Source.SCOPE_LIVE:
        return _live(getattr(env.snap, "scopes", {}).get(scope, {}), selected, ref.key)
    return _config(env.data.scopes[scope], selected, ref.key, scope)


def _not_nan(value: float, node: s.Expr) -> float:
    # +inf is a legitimate "no limit" and -inf a closed one; only NaN has no meaning.
    if isinstance(value, float) and math.isnan(value):
        raise EvalError(E.NOT_FINITE, f"`{s.unparse(node)}` is NaN")
    return value


def evaluate(
    node: s.Expr, env: Env, trace: Trace | None = None, seen: Observer | None = None
) -> Any:
    """Evaluate ``node``; with ``trace``, record every non-literal sub-expression's value;
    with ``seen``, report the way every ``and``/``or``/``if`` went."""
    value: Any
    match node:
        case s.Num(value=v) | s.Str(value=v) | s.Bool(value=v):
            return v
        case s.ListLit(items=items):
            value = [evaluate(i, env, trace, seen) for i in items]
        case s.Name():
            value = env.read(node)
        case s.Index(target=target, key=key):
            container = evaluate(target, env, trace, seen)
            k = evaluate(key, env, trace, seen)
            try:
                value = container[int(k) if isinstance(container, list) else k]
            except (KeyError, IndexError, TypeError, ValueError):
                raise EvalError(
                    E.MISSING_KEY, f"`{s.unparse(target)}` has no entry `{k}`"
                ) from None
        case s.Call(func=func, args=args):
            vals = [evaluate(a, env, trace, seen) for a in args]
            value = FUNCTIONS[func].call(vals, node, env.data.context)
        case s.Unary(operand=o):
            value = -number(evaluate(o, env, trace, seen), o)
        case s.Not(operand=o):
            value = not evaluate(o, env, trace, seen)
        case s.Binary(op=op, left=left, right=right):
            a = number(evaluate(left, env, trace, seen), left)
            b = number(evaluate(right, env, trace, seen), right)
            if op == "+":
                value = a + b
            elif op == "-":
                value = a - b
            elif op == "*":
                value = a * b
            else:
                if b == 0:
                    raise EvalError(
                        E.DIVISION_BY_ZERO, f"`{s.unparse(right)}` is zero in `{s.unparse(node)}`"
                    )
                value = a / b
        case s.Compare(first=first, ops=ops, rest=rest):
            left_value = evaluate(first, env, trace, seen)
            value = True
            for op, right_node in zip(ops, rest, strict=True):
                right_value = evaluate(right_node, env, trace, seen)
                if not _compare(op, left_value, right_value, node):
                    value = False
                    break
                left_value = right_value
        case s.BoolOp(op=op, values=values):
            value = op == "and"
            for operand in values:
                if bool(evaluate(operand, env, trace, seen)) != value:
                    value = not value
                    break
            if seen is not None:
                seen.branch(node, value)
        case s.Cond(body=body, test=test, orelse=orelse):
            taken = bool(evaluate(test, env, trace, seen))
            if seen is not None:
                seen.branch(node, taken)
            value = evaluate(body if taken else orelse, env, trace, seen)
        case _:  # pragma: no cover
            raise AssertionError(node)
    if trace is not None:
        trace.setdefault(s.unparse(node), value)
    return value


def _compare(op: str, a: Any, b: Any, node: s.Expr) -> bool:
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "in":
        return a in b
    if op == "not in":
        return a not in b
    for v in (a, b):
        if v is None:
            raise EvalError(E.NULL_VALUE, f"a null value in `{s.unparse(node)}`")
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


# --- the chain ---------------------------------------------------------------------------


def select_mode(
    checked: CheckedPolicy, data: RuntimeData, snap: Any, env: Env
) -> tuple[ModeState, bool]:
    """The drawdown mode (most severe `when` that holds), then the stricter override."""
    chosen = data.modes[0]
    for state in reversed(data.modes[1:]):
        when = checked.mode_whens.get(state.name)
        if when is not None:
            try:
                holds = evaluate(when, env)
            except EvalError as exc:
                exc.at = f"modes.{state.name}"
                raise
            if holds:
                chosen = state
                break
    override = getattr(snap, "mode_override", None)
    if override is not None:
        severity = data.severity.get(override)
        if severity is None:
            raise EvalError(
                E.UNDECLARED,
                f"the override `{override}` is not a mode the policy declares",
                namespace="mode",
            )
        if severity > chosen.index:
            return data.modes[severity], True
    return chosen, False


def run_chain(
    checked: CheckedPolicy,
    data: RuntimeData,
    intent: Any,
    snap: Any,
    seen: Observer | None = None,
) -> Outcome:
    """The reference chain. Never raises: errors become ERROR outcomes. ``seen`` observes
    every rule and branch (coverage); it never changes the outcome."""
    env = Env(checked.scope, data, intent, snap, None, 0.0)
    try:
        env.amount = float(intent.requested_risk_abs)
        mode, overridden = select_mode(checked, data, snap, env)
    except EvalError as exc:
        exc.at = exc.at or "modes"
        return (ERROR, -1, 0.0, None, None, 0, False, exc)
    except Exception as exc:
        return (ERROR, -1, 0.0, None, None, 0, False, _internal(exc, "modes"))
    env.mode = mode
    env.overridden = overridden
    clips: list[tuple[int, float, float]] = []
    warns: list[int] = []

    def outcome(status: int, index: int, error: EvalError | None = None) -> Outcome:
        amount = env.amount if status == APPROVED else 0.0
        return (
            status,
            index,
            amount,
            tuple(clips) or None,
            tuple(warns) or None,
            mode.index,
            overridden,
            error,
        )

    def did(index: int, what: str) -> None:
        if seen is not None:
            seen.rule(index, what)

    now = intent.timestamp  # event time: a staged rule (enforce_from) is shadow before it
    for i, rule in enumerate(checked.rules):
        spec = rule.spec
        shadow = spec.shadow_at(now)
        try:
            if rule.when is not None:
                if seen is not None:
                    seen.at(i, "when")
                if not evaluate(rule.when, env, None, seen):
                    did(i, "skipped")
                    continue
            if seen is not None:
                seen.at(i, spec.kind)
            if spec.kind == "allow":
                if evaluate(rule.expr, env, None, seen):
                    did(i, "approved")
                    return outcome(APPROVED, i)
                did(i, "passed")
                continue
            if spec.kind == "require":
                if evaluate(rule.expr, env, None, seen):
                    did(i, "passed")
                    continue
                if shadow:
                    did(i, "warned")
                    warns.append(i)
                    continue
                did(i, "rejected")
                return outcome(REJECTED, i)
            limit = number(evaluate(rule.expr, env, None, seen), rule.expr)
            _not_nan(limit, rule.expr)
            if within(env.amount, limit):
                did(i, "passed")
                continue
            if shadow:
                did(i, "warned")
                warns.append(i)
                continue
            if spec.on_exceed == "clip":
                clipped = quantize_down(limit)
                if clipped > 0 and clipped >= data.min_risk_abs:
                    did(i, "clipped")
                    clips.append((i, env.amount, clipped))
                    env.amount = clipped
                    continue
            did(i, "rejected")
            return outcome(REJECTED, i)
        except Exception as exc:  # fail closed on anything
            if (
                spec.when_missing == "approve"
                and isinstance(exc, EvalError)
                and exc.kind in MISSING_KINDS
            ):
                did(i, "missing")  # the rule lets the intent pass: its value is missing
                continue
            did(i, "error")
            if shadow:  # a shadow rule never blocks, not even by failing
                warns.append(i)
                continue
            if isinstance(exc, EvalError):
                exc.at = spec.id
                return outcome(ERROR, i, exc)
            return outcome(ERROR, i, _internal(exc, spec.id))
    return outcome(APPROVED, -1)


def latch_holds(checked: CheckedPolicy, data: RuntimeData, name: str, snap: Any) -> bool:
    """Whether latch ``name``'s `when` holds for ``snap``, the careful way (EvalError if it
    cannot be evaluated: the cause, for the record of a latch that fails closed)."""
    env = Env(checked.scope, data, None, snap, None, 0.0)
    try:
        return bool(evaluate(checked.latch_whens[name], env))
    except EvalError as exc:
        exc.at = f"latches.{name}"
        raise


def _internal(exc: Exception, at: str) -> EvalError:
    err = EvalError(E.INTERNAL, f"{type(exc).__name__}: {exc}")
    err.at = at
    return err
