"""policy-engine: risk limits as configuration.

Load a YAML policy once with :func:`load_policy`, then ask it about every
trade intent with :meth:`Policy.evaluate`. Every exception it raises on purpose is a
:class:`PolicyEngineError` (a policy that does not load: :class:`PolicyError`; the
journal: :class:`JournalError`).
"""

import importlib
from typing import TYPE_CHECKING, Any

from .decision_codes import DECISION_CODES
from .diagnostics import CODES, Diagnostic, PolicyEngineError, PolicyError, Severity, Span
from .engine.contracts import (
    AllocationDecision,
    BucketState,
    Clip,
    PolicyRef,
    PortfolioConstraintEnvelope,
    PortfolioIntent,
    PortfolioSnapshot,
    RuleWarning,
)
from .engine.policy import Policy, Verdict, load_policy, load_policy_text

if TYPE_CHECKING:
    from .control.controller import PortfolioController
    from .control.journal import JournalError
    from .control.replay import replay

_LAZY = {
    "JournalError": "control.journal",
    "PortfolioController": "control.controller",
    "replay": "control.replay",
}


def __getattr__(name: str) -> Any:
    # The control plane loads on first use, so `policy-check` starts without it.
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CODES",
    "DECISION_CODES",
    "AllocationDecision",
    "BucketState",
    "Clip",
    "Diagnostic",
    "JournalError",
    "Policy",
    "PolicyEngineError",
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
