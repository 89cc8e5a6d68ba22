""":class:`Verdict`: the outcome of one evaluation, explained on demand.

Cheap to build (the outcome is already known); the explanation, the reasons,
the warnings and the full :class:`~.contracts.AllocationDecision` are
computed only when read, by the policy's :class:`~.explain.Explainer`.
A verdict explains itself against the snapshot it was given, so a caller
that goes on to mutate that snapshot reads what it needs first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..document.model import RuleSpec
from ..lang.errors import EvalError
from .contracts import AllocationDecision, Clip, PortfolioConstraintEnvelope, RuleWarning
from .decision import allocation_decision, verdict_facts
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
    Outcome,
)

if TYPE_CHECKING:
    from .policy import Policy

EVAL_ERROR_CODE = "rejected_eval_error"


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
            return "approved_clipped" if outcome[CLIPS] else "approved_full"
        if self.error is not None:
            return EVAL_ERROR_CODE
        rule = self.rule
        assert rule is not None
        return rule.code

    @property
    def mode(self) -> str:
        return self.policy.data.modes[self.outcome[MODE]].name

    @property
    def mode_source(self) -> str:
        return "override" if self.outcome[OVERRIDDEN] else "drawdown"

    @property
    def mode_reason(self) -> str:
        if self.outcome[OVERRIDDEN]:
            return str(getattr(self.snapshot, "mode_override_reason", None) or "override")
        return self.policy.data.modes[self.outcome[MODE]].reason

    @property
    def clips(self) -> list[Clip]:
        rules = self.policy.rules
        return [
            Clip(rule_id=rules[i].id, from_risk=a, to_risk=b)
            for i, a, b in self.outcome[CLIPS] or ()
        ]

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
        env = envelope if envelope is not None else self.policy.envelope(self.snapshot)
        return allocation_decision(verdict_facts(self), env, self.policy, consume=True)
