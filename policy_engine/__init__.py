"""policy-engine: risk limits as configuration.

Load a YAML policy once with :func:`load_policy`, then ask it about every
trade intent with :meth:`Policy.evaluate`.
"""

from .contracts import (
    AllocationDecision,
    BucketState,
    Clip,
    PolicyRef,
    PortfolioConstraintEnvelope,
    PortfolioIntent,
    PortfolioSnapshot,
    RuleWarning,
)
from .controller import PortfolioController
from .diagnostics import CODES, Diagnostic, PolicyError, Severity, Span
from .evaluate import Policy, Verdict, load_policy, load_policy_text
from .journal import replay

__all__ = [
    "CODES",
    "AllocationDecision",
    "BucketState",
    "Clip",
    "Diagnostic",
    "Policy",
    "PolicyError",
    "PolicyRef",
    "PortfolioConstraintEnvelope",
    "PortfolioController",
    "PortfolioIntent",
    "PortfolioSnapshot",
    "RuleWarning",
    "Severity",
    "Span",
    "Verdict",
    "load_policy",
    "load_policy_text",
    "replay",
]
