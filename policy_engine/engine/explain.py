"""Explanations, in one place: the numbers behind a decision, its reasons and teaching line.

An explanation is computed only when asked for (a rejection, a clip, a shadow
warning, ``policy explain``), never on the approve path. It is an option of
evaluation, not a second semantics: the values come from re-running the
deciding rule through the reference interpreter with a trace, or through the
same walk compiled to straight-line code (:mod:`.tracegen`) when that runs
cleanly; a differential test keeps the two identical.

:class:`Explainer` belongs to one :class:`~.policy.Policy` and caches the
compiled tracers and message renderers of its rules.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from ..document.model import RuleSpec
from ..document.names import LIVE_FIELDS, Ref
from ..lang import syntax as s
from ..lang.errors import MISSING_KINDS, EvalError, EvalErrorKind
from ..lang.lexical import fmt
from .contracts import RuleWarning
from .interpreter import Env, Trace, evaluate
from .outcome import (
    AMOUNT,
    APPROVED,
    CLIPS,
    ERROR,
    ERROR_AT,
    MODE,
    OVERRIDDEN,
    RULE,
    STATUS,
    WARNINGS,
    Outcome,
)
from .runtime import within
from .tracegen import MessageFn, Tracer, compile_message, compile_tracer

if TYPE_CHECKING:
    from .policy import Policy
    from .verdict import Verdict


class Explained(NamedTuple):
    """One rule's explanation: its trace (name or sub-expression -> value), its headroom
    (how much more it would allow; None when it has no single measure) and its error."""

    trace: Trace
    headroom: float | None
    error: EvalError | None


_MISSING: Any = object()
_new = tuple.__new__  # builds an Explained without the NamedTuple's Python-level __new__
_ORDERING = ("<", "<=", ">", ">=")
HeadroomSpec = tuple[
    str, str, Any, str, Any
]  # op, left key, left literal, right key, right literal


@cache
def is_name(key: str) -> bool:
    """A trace key that is a dotted name (``strategy.max_trades``), not a sub-expression.

    Memoised: the keys are the sub-expressions of the policy's own rules, a bounded set."""
    return key.replace("_", "").replace(".", "").isalnum() and "." in key


def amount_at(outcome: Outcome, requested: float, index: int) -> float:
    """The amount rule ``index`` saw: the request, as clipped by the rules before it."""
    amount = float(requested)
    for i, _a, b in outcome[CLIPS] or ():
        if i < index:
            amount = b
    return amount


def default_message(rule: RuleSpec) -> str:
    if rule.kind == "limit":
        return "limit exceeded"
    if rule.kind == "allow":
        return "allowed"
    return "requirement not met"


class Explainer:
    """Explains the decisions of one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._tracers: dict[int, Tracer | None] = {}
        self._messages: dict[int, MessageFn | None] = {}
        self._headrooms: dict[int, HeadroomSpec | None] = {}
        # Whether a trace can hold an event time (shown as text: records are JSON); most
        # policies read none, and their explanations skip the pass.
        checked = policy.checked
        self.reads_time = any(
            isinstance(node, s.Name)
            and isinstance(ref := checked.scope.resolve(node.path), Ref)
            and ref.type.kind == "time"
            for rule in checked.rules
            for root in (rule.expr, rule.when, *(p for p in rule.message if not isinstance(p, str)))
            if root is not None and not isinstance(root, str)
            for node in s.walk(root)
        )

    # --- the compiled helpers, per rule, on first use -----------------------------------
    def tracer(self, index: int) -> Tracer | None:
        """Rule ``index``'s generated tracer (None if it cannot be generated)."""
        try:
            return self._tracers[index]
        except KeyError:
            p = self.policy
            fn = self._tracers[index] = compile_tracer(p.checked, p.data, index)
            return fn

    def message_fn(self, index: int) -> MessageFn | None:
        """Rule ``index``'s generated placeholder renderer (None if it cannot be generated)."""
        try:
            return self._messages[index]
        except KeyError:
            p = self.policy
            fn = self._messages[index] = compile_message(p.checked, p.data, index)
            return fn

    def headroom_spec(self, index: int) -> HeadroomSpec | None:
        """A gate's single ordering comparison, from which its headroom is read."""
        try:
            return self._headrooms[index]
        except KeyError:
            expr: Any = self.policy.checked.rules[index].expr
            spec = None
            if isinstance(expr, s.Compare) and len(expr.ops) == 1 and expr.ops[0] in _ORDERING:
                first, right = expr.first, expr.rest[0]
                spec = (
                    expr.ops[0],
                    s.unparse(first),
                    getattr(first, "value", None),
                    s.unparse(right),
                    getattr(right, "value", None),
                )
            self._headrooms[index] = spec
            return spec

    def env(self, verdict: Verdict, index: int) -> Env:
        """The interpreter's environment for rule ``index`` of ``verdict``."""
        p = self.policy
        outcome = verdict.outcome
        env = Env(
            p.checked.scope,
            p.data,
            verdict.intent,
            verdict.snapshot,
            p.data.modes[outcome[MODE]],
            amount_at(outcome, verdict.intent.requested_risk_abs, index),
        )
        env.overridden = outcome[OVERRIDDEN]
        return env

    # --- one rule -----------------------------------------------------------------------
    def deciding(self, verdict: Verdict) -> Explained:
        """The explanation of the rule that decided (or of the evaluation error)."""
        outcome = verdict.outcome
        if outcome[STATUS] == ERROR:
            err = outcome[ERROR_AT]
            assert err is not None
            return _new(Explained, ({"error": err.code, "detail": err.detail}, None, err))
        rule = verdict.rule
        if rule is None:
            return _new(Explained, ({}, None, None))
        return self.rule(verdict, rule.index if outcome[RULE] < 0 else outcome[RULE])

    def rule(self, verdict: Verdict, index: int) -> Explained:
        """Rule ``index`` re-run with a trace for ``verdict``'s intent and snapshot."""
        policy = self.policy
        outcome = verdict.outcome
        checked_rule = policy.checked.rules[index]
        spec = checked_rule.spec
        amount = amount_at(outcome, verdict.intent.requested_risk_abs, index)
        trace: Trace = {}
        value = _MISSING
        tracer = self.tracer(index)
        if tracer is not None:
            try:
                value = tracer(
                    trace,
                    verdict.intent,
                    verdict.snapshot,
                    amount,
                    outcome[MODE],
                    outcome[OVERRIDDEN],
                )
            except Exception:  # the interpreter names the cause
                trace = {}
                value = _MISSING
        if value is _MISSING:
            env = self.env(verdict, index)
            try:
                value = evaluate(checked_rule.expr, env, trace)
                if checked_rule.when is not None:
                    evaluate(checked_rule.when, env, trace)
            except EvalError as exc:
                exc.at = spec.id
                if self.reads_time:
                    times_as_text(trace)
                return _new(
                    Explained, ({**trace, "error": exc.code, "detail": exc.detail}, None, exc)
                )
        nan = None
        for key, x in trace.items():
            if x != x and isinstance(x, float):  # NaN; cheap for every other value
                nan = key
                break
        if self.reads_time:
            times_as_text(trace)
        # A NaN is the failure of a rejecting rule, and of a shadow rule it warned about.
        if nan is not None and (outcome[STATUS] != APPROVED or index in (outcome[WARNINGS] or ())):
            return _new(
                Explained,
                (trace, None, EvalError(EvalErrorKind.NOT_FINITE, f"`{nan}` is NaN", spec.id)),
            )
        headroom: float | None = None
        if spec.kind == "limit":
            trace["intent.risk"] = amount
            headroom = float(value)
            trace["headroom"] = headroom
        else:
            headroom = _gate_headroom(self.headroom_spec(index), trace)
            if headroom is not None:
                trace["headroom"] = headroom
        return _new(Explained, (trace, headroom, None))

    def message(self, verdict: Verdict, rule: RuleSpec, index: int | None = None) -> str:
        """The rule's message with its placeholders filled (``?`` where one fails)."""
        parts = self.policy.checked.rules[rule.index].message
        if not parts:
            return ""
        if len(parts) == 1 and isinstance(parts[0], str):  # no placeholders
            return parts[0]
        at = rule.index if index is None else index
        outcome = verdict.outcome
        fn = self.message_fn(rule.index)
        if fn is not None:
            try:
                amount = amount_at(outcome, verdict.intent.requested_risk_abs, at)
                values = iter(
                    fn(verdict.intent, verdict.snapshot, amount, outcome[MODE], outcome[OVERRIDDEN])
                )
                return "".join(p if isinstance(p, str) else fmt(next(values)) for p in parts)
            except Exception:  # the interpreter renders what it can, `?` for the rest
                pass
        env = self.env(verdict, at)
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                out.append(fmt(evaluate(part, env)))
            except Exception:
                out.append("?")
        return "".join(out)

    # --- what a verdict shows -------------------------------------------------------------
    def reasons(self, verdict: Verdict) -> list[str]:
        err = verdict.error
        if err is not None:
            return [f"{verdict.rule_id}: evaluation failed: {err.detail}"]
        rule = verdict.rule
        if rule is None:
            return ["all rules passed"]
        text = self.message(verdict, rule) or default_message(rule)
        trace = verdict.explained.trace
        numbers = " ".join([f"{k}={fmt(v)}" for k, v in trace.items() if is_name(k)])
        return [f"{rule.id}: {text}", *([numbers] if numbers else [])]

    def warnings(self, verdict: Verdict) -> list[RuleWarning]:
        out = []
        for i in verdict.outcome[WARNINGS] or ():
            rule = self.policy.rules[i]
            trace, _headroom, err = self.rule(verdict, i)
            message = (
                f"evaluation failed: {err.detail}"
                if err
                else (self.message(verdict, rule, i) or default_message(rule))
            )
            out.append(RuleWarning(rule_id=rule.id, code=rule.code, message=message, context=trace))
        return out

    def log_line(self, verdict: Verdict) -> str:
        """The teaching line, with the category, the counts and the decision on every line:
        ``[RISK:STRATEGY] SCALPER BTC-USD active=2 max=2 → BLOCKED (limit reached)``,
        ``[RISK:STRATEGY] SCALPER BTC-USD active=1 max=2 → ALLOWED``."""
        rule = verdict.rule
        intent = verdict.intent
        shown, ctx = rule, verdict.context if rule or verdict.error else {}
        if rule is None and verdict.error is None:
            # Approved in full: show the numbers of the rule a reader checks first (the
            # first strategy limit, else the first enforced one), as the seed asks.
            index = self._teaching_rule()
            if index is not None:
                shown, ctx = self.policy.rules[index], self.rule(verdict, index).trace
        category = shown.category if shown else "POLICY"
        numbers = " ".join(
            f"{_short(k)}={fmt(x)}"
            for k, x in ctx.items()
            if is_name(k) and k not in ("intent.risk", "headroom")
        )
        head = f"[RISK:{category}] {intent.strategy} {intent.symbol}" + (
            f" {numbers}" if numbers else ""
        )
        if verdict.error is not None:
            return (
                f"{head} → BLOCKED (evaluation error in {verdict.rule_id}: {verdict.error.detail})"
            )
        if not verdict.approved:
            assert rule is not None
            return f"{head} → BLOCKED ({self.message(verdict, rule) or default_message(rule)})"
        clips = verdict.outcome[CLIPS]
        if clips:
            a, b = clips[0][1], verdict.outcome[AMOUNT]
            return f"{head} → CLIPPED ({fmt(a)} → {fmt(b)} by {rule.id if rule else '?'})"
        return f"{head} → ALLOWED" + (f" ({rule.id})" if rule else "")

    def _teaching_rule(self) -> int | None:
        """The rule whose numbers an approval's teaching line shows: the first enforced
        strategy rule that counts something live (`strategy.active_trades < ...`), else the
        first enforced strategy rule, else the first enforced rule."""
        rules = self.policy.checked.rules
        enforced = [
            i
            for i, r in enumerate(rules)
            if r.spec.kind != "allow" and r.spec.enforcement == "enforce"
        ]
        strategy = [i for i in enforced if rules[i].spec.category == "STRATEGY"]
        for i in strategy:
            if any(
                isinstance(n, s.Name)
                and n.path[0] == "strategy"
                and len(n.path) > 1
                and n.path[1] in LIVE_FIELDS
                for n in s.walk(rules[i].expr)
            ):
                return i
        first = strategy or enforced
        return first[0] if first else None

    # --- every rule (``policy explain``) -----------------------------------------------
    def every_rule(self, verdict: Verdict) -> list[dict[str, Any]]:
        """Every rule's verdict and sub-expression values, not only up to the first failure,
        in the mode ``verdict`` was decided in."""
        policy = self.policy
        mode = policy.data.modes[verdict.outcome[MODE]]
        rows: list[dict[str, Any]] = []
        for i, crule in enumerate(policy.checked.rules):
            spec = crule.spec
            env = self.env(verdict, i)
            env.mode = mode
            trace: Trace = {}
            row: dict[str, Any] = {"rule_id": spec.id, "kind": spec.kind, "category": spec.category}
            try:
                if crule.when is not None and not evaluate(crule.when, env, trace):
                    row["verdict"] = "skipped"
                else:
                    value = evaluate(crule.expr, env, trace)
                    if spec.kind == "limit":
                        row["verdict"] = (
                            "pass"
                            if within(env.amount, value)
                            else ("clip" if spec.on_exceed == "clip" else "fail")
                        )
                        trace["intent.risk"] = env.amount
                    elif spec.kind == "allow":
                        row["verdict"] = "allow" if value else "allow-skip"
                    else:
                        row["verdict"] = "pass" if value else "fail"
            except EvalError as exc:
                missing = spec.when_missing == "approve" and exc.kind in MISSING_KINDS
                row["verdict"] = "missing" if missing else "error"
                trace["error"] = f"{exc.code}: {exc.detail}"
            if spec.shadow_at(verdict.intent.timestamp):
                row["shadow"] = True
            if spec.enforce_from is not None:
                row["enforce_from"] = spec.enforce_from.isoformat()
            times_as_text(trace)
            row["values"] = trace
            rows.append(row)
        return rows


def times_as_text(trace: Trace) -> None:
    """Event times in a trace as ISO 8601 text: explanations go into JSON records."""
    for key, value in trace.items():
        if isinstance(value, datetime):
            trace[key] = value.isoformat()


def _gate_headroom(spec: HeadroomSpec | None, trace: Trace) -> float | None:
    if spec is not None:
        op, left_key, left_literal, right_key, right_literal = spec
        left = trace.get(left_key, left_literal)
        right = trace.get(right_key, right_literal)
        if isinstance(left, int | float) and isinstance(right, int | float):
            return float(right - left) if op in ("<", "<=") else float(left - right)
    return None


def _short(key: str) -> str:
    """`strategy.active_trades` -> `active`, `strategy.max_trades` -> `max` (the seed's format)."""
    last = key.rsplit(".", 1)[-1]
    return {"active_trades": "active", "max_trades": "max"}.get(last, key)
