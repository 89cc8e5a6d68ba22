"""The one builder of decisions: every path that answers an intent goes through here.

A decision starts as :class:`DecisionFacts` (a plain dict: what was decided
and why) built by one of two functions: :func:`verdict_facts` for an intent
the policy evaluated (approved in full, clipped or rejected by a rule, failed
closed), :func:`refusal_facts` for one refused before evaluation (invalid,
duplicate). :func:`allocation_decision` turns facts into the public
:class:`~.contracts.AllocationDecision`; the control plane's decision record
(:mod:`policy_engine.control.records`) is built from the same facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from . import verdict as verdicts  # a module reference: verdict.py imports this module too
from .contracts import (
    AllocationDecision,
    Clip,
    PortfolioConstraintEnvelope,
    RuleWarning,
    fast_model,
)
from .outcome import AMOUNT, APPROVED, CLIPS, MODE, OVERRIDDEN, RULE, STATUS, WARNINGS, Outcome

if TYPE_CHECKING:
    from .policy import ModeInfo, Policy
    from .verdict import Verdict


class DecisionFacts(TypedDict):
    """What was decided and why (the fields of an AllocationDecision but the envelope,
    the reservation TTL and the policy reference)."""

    intent_id: str
    approved: bool
    requested_risk_abs: float
    approved_risk_abs: float
    decision_code: str
    rule_id: str | None
    category: str | None
    reasons: list[str]
    context: dict[str, Any]
    headroom: float | None
    clips: list[Clip]
    warnings: list[RuleWarning]
    mode: str
    mode_source: str
    mode_reason: str


def verdict_facts(verdict: Verdict) -> DecisionFacts:
    """The facts of an evaluated intent; the approve-in-full path explains nothing."""
    return outcome_facts(verdict.policy, verdict.intent, verdict.snapshot, verdict.outcome, verdict)


def outcome_facts(
    policy: Policy, intent: Any, snapshot: Any, outcome: Outcome, verdict: Verdict | None = None
) -> DecisionFacts:
    """The facts of ``outcome``; a :class:`Verdict` is built only if an explanation is needed
    (pass one in to share what it already computed)."""
    mode = policy.data.modes[outcome[MODE]]
    if outcome[OVERRIDDEN]:
        mode_source = "override"
        mode_reason = getattr(snapshot, "mode_override_reason", None) or "override"
    else:
        mode_source = "drawdown"
        mode_reason = mode.reason
    approved = outcome[STATUS] == APPROVED
    if approved and outcome[RULE] < 0 and not outcome[CLIPS] and not outcome[WARNINGS]:
        # The common path: approved in full by the whole chain; nothing to explain.
        return {
            "intent_id": intent.intent_id,
            "approved": True,
            "requested_risk_abs": float(intent.requested_risk_abs),
            "approved_risk_abs": outcome[AMOUNT],
            "decision_code": "approved_full",
            "rule_id": None,
            "category": None,
            "reasons": [],
            "context": {},
            "headroom": None,
            "clips": [],
            "warnings": [],
            "mode": mode.name,
            "mode_source": mode_source,
            "mode_reason": mode_reason,
        }
    if verdict is None:
        verdict = verdicts.Verdict(policy, intent, snapshot, outcome)
    rule = verdict.rule
    explained = rule is not None or verdict.error is not None
    rules = policy.rules
    return {
        "intent_id": intent.intent_id,
        "approved": approved,
        "requested_risk_abs": float(intent.requested_risk_abs),
        "approved_risk_abs": outcome[AMOUNT] if approved else 0.0,
        "decision_code": verdict.decision_code,
        "rule_id": verdict.rule_id,
        "category": rule.category if rule is not None else None,
        "reasons": verdict.reasons if explained else [],
        "context": verdict.context if explained else {},
        "headroom": verdict.headroom if rule is not None else None,
        "clips": [
            fast_model(Clip, {"rule_id": rules[i].id, "from_risk": a, "to_risk": b})
            for i, a, b in outcome[CLIPS] or ()
        ],
        "warnings": verdict.warnings if outcome[WARNINGS] else [],
        "mode": mode.name,
        "mode_source": mode_source,
        "mode_reason": mode_reason,
    }


def refusal_facts(
    intent_id: str, requested: float, code: str, message: str, category: str, mode: ModeInfo
) -> DecisionFacts:
    """The facts of an intent refused before evaluation (invalid, duplicate)."""
    return {
        "intent_id": intent_id,
        "approved": False,
        "requested_risk_abs": requested,
        "approved_risk_abs": 0.0,
        "decision_code": code,
        "rule_id": None,
        "category": category,
        "reasons": [message],
        "context": {},
        "headroom": None,
        "clips": [],
        "warnings": [],
        "mode": mode.name,
        "mode_source": mode.source,
        "mode_reason": mode.reason,
    }


def allocation_decision(
    facts: DecisionFacts,
    envelope: PortfolioConstraintEnvelope,
    policy: Policy,
    *,
    consume: bool = False,
) -> AllocationDecision:
    """The public decision: ``facts`` with the envelope in force and the policy's reference.

    The decision owns its lists: it copies the reasons and context, unless ``consume``
    says nothing else holds ``facts`` (then the facts dict itself becomes the decision's
    fields; the hot path saves a copy).
    """
    values: dict[str, Any]
    if consume:
        values = facts  # type: ignore[assignment]  # a TypedDict grows the three other fields
    else:
        values = {**facts, "reasons": [*facts["reasons"]], "context": {**facts["context"]}}
    values["constraint_envelope"] = envelope
    values["reservation_ttl_sec"] = policy.reservation_ttl_sec
    values["policy"] = policy.ref
    decision: AllocationDecision = fast_model(AllocationDecision, values)
    return decision
