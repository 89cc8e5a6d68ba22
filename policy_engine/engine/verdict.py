""":class:`Verdict` and the one builder of decisions: every path that answers an intent ends here.

A :class:`Verdict` is the outcome of one evaluation, cheap to build (the outcome
is already known); the explanation, the reasons, the warnings and the full
:class:`~.contracts.AllocationDecision` are computed only when read, by the
policy's :class:`~.explain.Explainer`. A verdict explains itself against the
snapshot it was given, so a caller that goes on to mutate that snapshot reads
what it needs first.

A decision starts as :class:`DecisionFacts` (a plain dict: what was decided and
why) built by one of two functions: :func:`outcome_facts` for an intent the
policy evaluated (approved in full, clipped or rejected by a rule, failed
closed), :func:`refusal_facts` for one refused before evaluation (invalid,
duplicate). :func:`allocation_decision` turns facts into the public
:class:`~.contracts.AllocationDecision`; the control plane's decision record
(:mod:`policy_engine.control.records`) is built from the same facts. The codes
come from :mod:`policy_engine.decision_codes`; the mode's source and reason from
:func:`~.runtime.mode_source_reason`; the clip list from :func:`clips`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from ..decision_codes import APPROVED_CLIPPED, APPROVED_FULL, EVAL_ERROR
from ..document.model import RuleSpec
from ..lang.errors import EvalError
from .contracts import (
    AllocationDecision,
    Clip,
    PortfolioConstraintEnvelope,
    RuleWarning,
    fast_model,
)
from .explain import Explained
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
from .runtime import mode_source_reason
from .waits import snapshot_wait

if TYPE_CHECKING:
    from .policy import ModeInfo, Policy


def clips(policy: Policy, outcome: Outcome) -> list[Clip]:
    """The clips of ``outcome`` in chain order (the one place a list of :class:`Clip` is built)."""
    rules = policy.rules
    return [
        fast_model(Clip, {"rule_id": rules[i].id, "from_risk": a, "to_risk": b})
        for i, a, b in outcome[CLIPS] or ()
    ]


class Verdict:
    """The outcome of one evaluation. Cheap to build; explanations are computed on demand."""

    __slots__ = ("_explained", "intent", "outcome", "policy", "snapshot")

    def __init__(self, policy: Policy, intent: Any, snapshot: Any, outcome: Outcome) -> None:
        self.policy = policy
        self.intent = intent
        self.snapshot = snapshot
        self.outcome = outcome
        self._explained: Explained | None = None

    # --- the outcome ---------------------------------------------------------------------
    @property
    def approved(self) -> bool:
        return self.outcome[STATUS] == APPROVED

    @property
    def approved_risk_abs(self) -> float:
        return self.outcome[AMOUNT] if self.outcome[STATUS] == APPROVED else 0.0

    @property
    def rule(self) -> RuleSpec | None:
        """The deciding rule: the rejecting or failing one, the allow that approved, or the last clip."""
        outcome = self.outcome
        rules = self.policy.rules
        if outcome[RULE] >= 0:
            return rules[outcome[RULE]]
        if outcome[STATUS] == APPROVED and outcome[CLIPS]:
            return rules[outcome[CLIPS][-1][0]]
        return None

    @property
    def rule_id(self) -> str | None:
        err = self.error
        if err is not None:
            return err.at or (self.rule.id if self.rule else "modes")
        rule = self.rule
        return rule.id if rule else None

    @property
    def error(self) -> EvalError | None:
        """What failed, when the decision is an evaluation error (fail closed)."""
        if self.outcome[STATUS] == ERROR:
            return self.outcome[ERROR_AT]
        if self.outcome[STATUS] != APPROVED:
            return self.explained.error  # a NaN found while explaining a rejection
        return None

    @property
    def decision_code(self) -> str:
        outcome = self.outcome
        if outcome[STATUS] == APPROVED:
            return APPROVED_CLIPPED if outcome[CLIPS] else APPROVED_FULL
        if self.error is not None:
            return EVAL_ERROR
        rule = self.rule
        assert rule is not None
        return rule.code

    @property
    def mode(self) -> str:
        return self.policy.data.modes[self.outcome[MODE]].name

    @property
    def mode_source(self) -> str:
        return self._mode_source_reason()[0]

    @property
    def mode_reason(self) -> str:
        return self._mode_source_reason()[1]

    def _mode_source_reason(self) -> tuple[str, str]:
        outcome = self.outcome
        mode = self.policy.data.modes[outcome[MODE]]
        return mode_source_reason(mode, outcome[OVERRIDDEN], self.snapshot)

    @property
    def clips(self) -> list[Clip]:
        return clips(self.policy, self.outcome)

    # --- the explanation -----------------------------------------------------------------
    @property
    def explained(self) -> Explained:
        """The deciding rule's trace, headroom and error (computed once)."""
        if self._explained is None:
            self._explained = self.policy.explainer.deciding(self)
        return self._explained

    @property
    def context(self) -> dict[str, Any]:
        """The numbers behind the deciding rule: every name and sub-expression value."""
        return dict(self.explained.trace)

    @property
    def headroom(self) -> float | None:
        return self.explained.headroom

    @property
    def reasons(self) -> list[str]:
        return self.policy.explainer.reasons(self)

    @property
    def warnings(self) -> list[RuleWarning]:
        return self.policy.explainer.warnings(self)

    def log_line(self) -> str:
        """The teaching line: ``[RISK:STRATEGY] SCALPER active=2 max=2 → BLOCKED (limit reached)``."""
        return self.policy.explainer.log_line(self)

    def decision(self, envelope: PortfolioConstraintEnvelope | None = None) -> AllocationDecision:
        """The full :class:`AllocationDecision` (envelope of the snapshot unless given)."""
        policy = self.policy
        env = envelope if envelope is not None else policy.envelope(self.snapshot)
        facts = verdict_facts(self)
        index = self.outcome[RULE]
        if not facts["approved"] and policy.rule_waits and index >= 0 and policy.rule_waits[index]:
            snapshot_wait(facts, policy, index, self.intent, self.snapshot)  # as the core does
        return allocation_decision(facts, env, policy, consume=True)


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
    mode_source, mode_reason = mode_source_reason(mode, outcome[OVERRIDDEN], snapshot)
    approved = outcome[STATUS] == APPROVED
    if approved and outcome[RULE] < 0 and not outcome[CLIPS] and not outcome[WARNINGS]:
        # The common path: approved in full by the whole chain; nothing to explain.
        return {
            "intent_id": intent.intent_id,
            "approved": True,
            "requested_risk_abs": float(intent.requested_risk_abs),
            "approved_risk_abs": outcome[AMOUNT],
            "decision_code": APPROVED_FULL,
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
        verdict = Verdict(policy, intent, snapshot, outcome)
    rule = verdict.rule
    explained = rule is not None or verdict.error is not None
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
        "clips": clips(policy, outcome),
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


__all__ = [
    "DecisionFacts",
    "Verdict",
    "allocation_decision",
    "clips",
    "outcome_facts",
    "refusal_facts",
    "verdict_facts",
]
