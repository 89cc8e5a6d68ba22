"""`load_policy` and `Policy.evaluate`: the compiled chain behind a small API.

``Policy.evaluate`` is pure: it reads the intent and the snapshot and nothing
else (no clock, no I/O, no randomness). It never raises into the caller: a
fast-path exception re-runs the reference interpreter, and an evaluation
error rejects with ``rejected_eval_error`` naming the rule and the cause.

It returns a :class:`Verdict`: the outcome at once, and the explanation (the
numbers behind the deciding rule, reasons, warnings) computed only when asked
for, so the approve path stays as cheap as a hand-written ``if`` chain.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

from .compiler import (
    Chain,
    EnvelopeFn,
    MessageFn,
    Tracer,
    compile_chain,
    compile_envelope,
    compile_message,
    compile_tracer,
)
from .contracts import (
    AllocationDecision,
    Clip,
    PolicyRef,
    PortfolioConstraintEnvelope,
    RuleWarning,
    fast_model,
)
from .diagnostics import Diagnostic, PolicyError
from .document.build import build_spec
from .document.checker import CheckedPolicy, check
from .document.model import RuleSpec
from .document.yaml_source import Document, load_document, parse_document
from .interpreter import Env, Outcome, Trace, evaluate, run_chain
from .lang import syntax as s
from .runtime import APPROVED, ERROR, EvalError, RuntimeData

EVAL_ERROR_CODE = "rejected_eval_error"


def load_policy(path: str | Path) -> Policy:
    """Read, validate, check and compile a policy file. Raises :class:`PolicyError`."""
    return Policy.from_document(load_document(path))


def load_policy_text(text: str | bytes, path: str = "<policy>") -> Policy:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return Policy.from_document(parse_document(raw, path))


def check_document(doc: Document) -> tuple[CheckedPolicy | None, list[Diagnostic]]:
    """Everything `load_policy` verifies, as diagnostics (the linter's entry point)."""
    try:
        spec = build_spec(doc)
    except PolicyError as exc:
        return None, list(exc.diagnostics)
    return check(spec, doc)


def fmt(value: Any) -> str:
    """A number as a risk owner writes it: 2 not 2.0, 0.06 not 6.000000000000001e-02."""
    cls = value.__class__  # the common cases first (explanations are on the hot path)
    if cls is float:
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if cls is int:
        return str(value)
    if cls is str:
        return str(value)  # the same object
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


class Policy:
    """A compiled policy. Build with :func:`load_policy`."""

    def __init__(self, checked: CheckedPolicy) -> None:
        spec = checked.spec
        self.checked = checked
        self.name = spec.name
        self.version = spec.version
        self.content_hash = spec.content_hash
        self.path = spec.path
        self.description = spec.description
        self.rules: tuple[RuleSpec, ...] = tuple(r.spec for r in checked.rules)
        self.reservation_ttl_sec = spec.reservation_ttl_sec
        self.warnings: tuple[Diagnostic, ...] = checked.warnings
        self.ref = PolicyRef(name=spec.name, version=spec.version, hash=spec.content_hash)
        self.data = RuntimeData.of(checked)
        self._chain: Chain
        self._chain, self.chain_source = compile_chain(checked, self.data)
        self._envelope: EnvelopeFn
        self._envelope, self.envelope_source = compile_envelope(checked, self.data)
        # The failure path's generated explainers, compiled per rule on first use.
        self._tracers: dict[int, Tracer | None] = {}
        self._messages: dict[int, MessageFn | None] = {}
        self._headrooms: dict[int, tuple[str, str, Any, str, Any] | None] = {}

    def _tracer(self, index: int) -> Tracer | None:
        try:
            return self._tracers[index]
        except KeyError:
            fn = self._tracers[index] = compile_tracer(self.checked, self.data, index)
            return fn

    def _message_fn(self, index: int) -> MessageFn | None:
        try:
            return self._messages[index]
        except KeyError:
            fn = self._messages[index] = compile_message(self.checked, self.data, index)
            return fn

    def _headroom_spec(self, index: int) -> tuple[str, str, Any, str, Any] | None:
        """A gate's single ordering comparison: (op, left key, left literal, right key, ...)."""
        try:
            return self._headrooms[index]
        except KeyError:
            expr: Any = self.checked.rules[index].expr
            spec = None
            if isinstance(expr, s.Compare) and len(expr.ops) == 1 and expr.ops[0] in _ORDERING:
                first, right = expr.first, expr.rest[0]
                spec = (
                    expr.ops[0],
                    s.unparse(first),
                    _literal(first),
                    s.unparse(right),
                    _literal(right),
                )
            self._headrooms[index] = spec
            return spec

    @classmethod
    def from_document(cls, doc: Document) -> Policy:
        checked, problems = check_document(doc)
        if checked is None:
            raise PolicyError(problems)
        return cls(checked)

    def __repr__(self) -> str:
        return (
            f"<Policy {self.name} v{self.version} {len(self.rules)} rules {self.content_hash[:19]}>"
        )

    # --- evaluation ----------------------------------------------------------------------
    def evaluate(self, intent: Any, snapshot: Any) -> Verdict:
        """Decide one intent against one snapshot. Pure; never raises."""
        try:
            outcome = self._chain(intent, snapshot)
        except Exception:
            outcome = self.interpret(intent, snapshot)
        return Verdict(self, intent, snapshot, outcome)

    def interpret(self, intent: Any, snapshot: Any) -> Outcome:
        """The reference interpreter's outcome (slow; for errors, tests and explain)."""
        return run_chain(self.checked, self.data, intent, snapshot)

    def envelope(self, snapshot: Any) -> PortfolioConstraintEnvelope:
        """The constraint envelope for ``snapshot``; fails closed to "no new risk"."""
        mode_name = "normal"
        try:
            m, _ov, raw = self._envelope(snapshot)
            mode = self.data.modes[m]
            mode_name = mode.name
            values: dict[str, Any] = {
                "portfolio_mode": mode.name,
                "max_new_risk_abs": _cap(raw.get("max_new_risk_abs")),
                "max_additional_positions": _count(raw.get("max_additional_positions")),
                "symbol_max_risk_abs": _cap(raw.get("symbol_max_risk_abs")),
                "size_multiplier_cap": _cap(
                    raw.get("size_multiplier_cap", mode.values["risk_multiplier"])
                ),
                "force_flatten_only": bool(mode.values["flatten_only"]),
                "policy_version": self.version,
            }
        except Exception:
            values = {
                "portfolio_mode": mode_name,
                "max_new_risk_abs": 0.0,
                "max_additional_positions": 0,
                "symbol_max_risk_abs": 0.0,
                "size_multiplier_cap": 0.0,
                "force_flatten_only": True,
                "policy_version": self.version,
            }
        result: PortfolioConstraintEnvelope = fast_model(PortfolioConstraintEnvelope, values)
        return result

    def explain(self, intent: Any, snapshot: Any) -> list[dict[str, Any]]:
        """Every rule's verdict and sub-expression values (not only up to the first failure)."""
        return _explain(self, intent, snapshot)


def _cap(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isinf(value) and value > 0):
        return None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("NaN in envelope")
    return max(0.0, float(value))


def _count(value: Any) -> int | None:
    capped = _cap(value)
    return None if capped is None else math.floor(capped)


class Verdict:
    """The outcome of one evaluation. Cheap to build; explanations are computed on demand."""

    __slots__ = ("_error", "_explained", "intent", "outcome", "policy", "snapshot")

    def __init__(self, policy: Policy, intent: Any, snapshot: Any, outcome: Outcome) -> None:
        self.policy = policy
        self.intent = intent
        self.snapshot = snapshot
        self.outcome = outcome
        self._explained: tuple[Trace, float | None, EvalError | None] | None = None

    # --- the outcome ---------------------------------------------------------------------
    @property
    def approved(self) -> bool:
        return self.outcome[0] == APPROVED

    @property
    def approved_risk_abs(self) -> float:
        return self.outcome[2] if self.outcome[0] == APPROVED else 0.0

    @property
    def rule(self) -> RuleSpec | None:
        """The deciding rule: the rejecting or failing one, the allow that approved, or the last clip."""
        status: int = self.outcome[0]
        index: int = self.outcome[1]
        clips: Any = self.outcome[3]
        rules: tuple[RuleSpec, ...] = self.policy.rules
        if index >= 0:
            return rules[index]
        if status == APPROVED and clips:
            last: int = clips[-1][0]
            return rules[last]
        return None

    @property
    def rule_id(self) -> str | None:
        err = self.error
        if err is not None:
            return str(getattr(err, "at", None) or (self.rule.id if self.rule else "modes"))
        rule = self.rule
        return rule.id if rule else None

    @property
    def error(self) -> EvalError | None:
        if self.outcome[0] == ERROR:
            err: EvalError = self.outcome[7]
            return err
        if self.outcome[0] != APPROVED:
            return self._explain()[2]
        return None

    @property
    def decision_code(self) -> str:
        status, _index, _amount, clips = self.outcome[:4]
        if status == APPROVED:
            return "approved_clipped" if clips else "approved_full"
        if self.error is not None:
            return EVAL_ERROR_CODE
        rule = self.rule
        assert rule is not None
        return rule.code

    @property
    def mode(self) -> str:
        return self.policy.data.modes[self.outcome[5]].name

    @property
    def mode_source(self) -> str:
        return "override" if self.outcome[6] else "drawdown"

    @property
    def mode_reason(self) -> str:
        if self.outcome[6]:
            return str(getattr(self.snapshot, "mode_override_reason", None) or "override")
        return self.policy.data.modes[self.outcome[5]].reason

    @property
    def clips(self) -> list[Clip]:
        rules = self.policy.rules
        return [
            Clip(rule_id=rules[i].id, from_risk=a, to_risk=b) for i, a, b in self.outcome[3] or ()
        ]

    # --- the explanation -----------------------------------------------------------------
    def _amount_at(self, index: int) -> float:
        amount = float(self.intent.requested_risk_abs)
        for i, _a, b in self.outcome[3] or ():
            if i < index:
                amount = b
        return amount

    def _env(self, index: int) -> Env:
        p = self.policy
        env = Env(
            p.checked.scope,
            p.data,
            self.intent,
            self.snapshot,
            p.data.modes[self.outcome[5]],
            self._amount_at(index),
        )
        env.overridden = self.outcome[6]
        return env

    def _explain(self) -> tuple[Trace, float | None, EvalError | None]:
        if self._explained is None:
            self._explained = _trace_rule(self)
        return self._explained

    @property
    def context(self) -> dict[str, Any]:
        """The numbers behind the deciding rule: every name and sub-expression value."""
        return dict(self._explain()[0])

    @property
    def headroom(self) -> float | None:
        return self._explain()[1]

    @property
    def reasons(self) -> list[str]:
        err = self.error
        if err is not None:
            return [f"{self.rule_id}: evaluation failed: {err.detail}"]
        rule = self.rule
        if rule is None:
            return ["all rules passed"]
        text = _render_message(self, rule) or _default_message(self, rule)
        trace = self._explain()[0]
        numbers = " ".join([f"{k}={fmt(v)}" for k, v in trace.items() if _is_name(k)])
        return [f"{rule.id}: {text}", *([numbers] if numbers else [])]

    @property
    def warnings(self) -> list[RuleWarning]:
        out = []
        for i in self.outcome[4] or ():
            rule = self.policy.rules[i]
            trace, _headroom, err = _trace_index(self, i)
            message = (
                f"evaluation failed: {err.detail}"
                if err
                else (_render_message(self, rule, i) or _default_message(self, rule))
            )
            out.append(RuleWarning(rule_id=rule.id, code=rule.code, message=message, context=trace))
        return out

    def log_line(self) -> str:
        """The teaching line: ``[RISK:STRATEGY] SCALPER active=2 max=2 → BLOCKED (limit reached)``."""
        return _log_line(self)

    def decision(self, envelope: PortfolioConstraintEnvelope | None = None) -> AllocationDecision:
        """The full :class:`AllocationDecision` (envelope of the snapshot unless given)."""
        p = self.policy
        rule = self.rule
        values = {
            "intent_id": self.intent.intent_id,
            "approved": self.approved,
            "requested_risk_abs": float(self.intent.requested_risk_abs),
            "approved_risk_abs": self.approved_risk_abs,
            "decision_code": self.decision_code,
            "rule_id": self.rule_id,
            "category": rule.category if rule else None,
            "reasons": self.reasons if (rule or self.error) else [],
            "context": self.context if (rule or self.error) else {},
            "headroom": self.headroom if rule else None,
            "clips": self.clips,
            "warnings": self.warnings if self.outcome[4] else [],
            "mode": self.mode,
            "mode_source": self.mode_source,
            "mode_reason": self.mode_reason,
            "constraint_envelope": envelope if envelope is not None else p.envelope(self.snapshot),
            "reservation_ttl_sec": p.reservation_ttl_sec,
            "policy": p.ref,
        }
        result: AllocationDecision = fast_model(AllocationDecision, values)
        return result


@cache
def _is_name(key: str) -> bool:
    # memoised: the keys are the sub-expressions of the policy's own rules, a bounded set
    return key.replace("_", "").replace(".", "").isalnum() and "." in key


def _trace_rule(v: Verdict) -> tuple[Trace, float | None, EvalError | None]:
    status, index = v.outcome[0], v.outcome[1]
    if status == ERROR:
        err: EvalError = v.outcome[7]
        return {"error": err.kind, "detail": err.detail}, None, err
    rule = v.rule
    if rule is None:
        return {}, None, None
    return _trace_index(v, rule.index if index < 0 else index)


_MISSING: Any = object()


def _trace_index(v: Verdict, index: int) -> tuple[Trace, float | None, EvalError | None]:
    policy = v.policy
    checked_rule = policy.checked.rules[index]
    spec = checked_rule.spec
    amount = v._amount_at(index)
    trace: Trace = {}
    value = _MISSING
    tracer = policy._tracer(index)
    if tracer is not None:
        try:
            value = tracer(trace, v.intent, v.snapshot, amount, v.outcome[5], v.outcome[6])
        except Exception:  # the interpreter names the cause
            trace = {}
            value = _MISSING
    if value is _MISSING:
        env = v._env(index)
        try:
            value = evaluate(checked_rule.expr, env, trace)
            if checked_rule.when is not None:
                evaluate(checked_rule.when, env, trace)
        except EvalError as exc:
            exc.at = spec.id
            return {**trace, "error": exc.kind, "detail": exc.detail}, None, exc
    nan = None
    for key, x in trace.items():
        if x != x and isinstance(x, float):  # NaN; cheap for every other value
            nan = key
            break
    # A NaN is the failure of a rejecting rule, and of a shadow rule it warned about.
    if nan is not None and (v.outcome[0] != APPROVED or index in (v.outcome[4] or ())):
        err = EvalError("not_finite", f"`{nan}` is NaN")
        err.at = spec.id
        return trace, None, err
    headroom: float | None = None
    if spec.kind == "limit":
        trace["intent.risk"] = amount
        headroom = float(value)
        trace["headroom"] = headroom
    else:
        headroom = _gate_headroom(policy._headroom_spec(index), trace)
        if headroom is not None:
            trace["headroom"] = headroom
    return trace, headroom, None


_ORDERING = ("<", "<=", ">", ">=")


def _gate_headroom(spec: tuple[str, str, Any, str, Any] | None, trace: Trace) -> float | None:
    if spec is not None:
        op, left_key, left_literal, right_key, right_literal = spec
        left = trace.get(left_key, left_literal)
        right = trace.get(right_key, right_literal)
        if isinstance(left, int | float) and isinstance(right, int | float):
            return float(right - left) if op in ("<", "<=") else float(left - right)
    return None


def _literal(node: Any) -> Any:
    return getattr(node, "value", None)


def _render_message(v: Verdict, rule: RuleSpec, index: int | None = None) -> str:
    parts = v.policy.checked.rules[rule.index].message
    if not parts:
        return ""
    if len(parts) == 1 and isinstance(parts[0], str):  # no placeholders
        return parts[0]
    at = rule.index if index is None else index
    fn = v.policy._message_fn(rule.index)
    if fn is not None:
        try:
            values = iter(fn(v.intent, v.snapshot, v._amount_at(at), v.outcome[5], v.outcome[6]))
            return "".join(p if isinstance(p, str) else fmt(next(values)) for p in parts)
        except Exception:  # the interpreter renders what it can, `?` for the rest
            pass
    env = v._env(at)
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


def _default_message(v: Verdict, rule: RuleSpec) -> str:
    if rule.kind == "limit":
        return "limit exceeded"
    if rule.kind == "allow":
        return "allowed"
    return "requirement not met"


def _log_line(v: Verdict) -> str:
    rule = v.rule
    intent = v.intent
    category = rule.category if rule else "POLICY"
    who = f"{intent.strategy} {intent.symbol}"
    ctx = v.context if rule or v.error else {}
    numbers = " ".join(
        f"{_short(k)}={fmt(x)}" for k, x in ctx.items() if _is_name(k) and k != "intent.risk"
    )
    head = f"[RISK:{category}] {who}" + (f" {numbers}" if numbers else "")
    if v.error is not None:
        return f"{head} → BLOCKED (evaluation error in {v.rule_id}: {v.error.detail})"
    if not v.approved:
        text = (_render_message(v, rule) if rule else "") or (
            _default_message(v, rule) if rule else ""
        )
        return f"{head} → BLOCKED ({text})"
    if v.outcome[3]:
        a, b = v.outcome[3][0][1], v.outcome[2]
        return f"{head} → CLIPPED ({fmt(a)} → {fmt(b)} by {rule.id if rule else '?'})"
    return f"{head} → ALLOWED" + (f" ({rule.id})" if rule else "")


def _short(key: str) -> str:
    """`strategy.active_trades` -> `active`, `strategy.max_trades` -> `max` (the seed's format)."""
    last = key.rsplit(".", 1)[-1]
    return {"active_trades": "active", "max_trades": "max"}.get(last, key)


def _explain(policy: Policy, intent: Any, snapshot: Any) -> list[dict[str, Any]]:
    outcome = policy.interpret(intent, snapshot)
    verdict = Verdict(policy, intent, snapshot, outcome)
    mode = policy.data.modes[outcome[5]]
    rows: list[dict[str, Any]] = []
    for i, crule in enumerate(policy.checked.rules):
        spec = crule.spec
        env = verdict._env(i)
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
                        if env.amount <= value
                        else ("clip" if spec.on_exceed == "clip" else "fail")
                    )
                    trace["intent.risk"] = env.amount
                else:
                    row["verdict"] = (
                        "pass" if value else ("allow-skip" if spec.kind == "allow" else "fail")
                    )
                    if spec.kind == "allow" and value:
                        row["verdict"] = "allow"
        except EvalError as exc:
            row["verdict"] = "error"
            trace["error"] = f"{exc.kind}: {exc.detail}"
        if spec.enforcement == "warn":
            row["shadow"] = True
        row["values"] = trace
        rows.append(row)
    return rows
