"""The decision codes the engine itself emits: one registry, like ``diagnostics.CODES``.

Every :class:`~policy_engine.engine.contracts.AllocationDecision` carries a
``decision_code``. A rule that rejects gives its own (``code:`` in the policy,
``rejected_<id>`` by default: :func:`rule_code`); every other code is one of the
constants below, emitted by the engine (the verdict) or by the control plane
(refusals before evaluation). Codes are part of the journal and of metrics labels,
so they never change once released; each is documented, with the meaning below,
in docs/policy-format.md ("Decision codes"), which a test holds to this registry.

The constants are plain strings on purpose: a decision is built on the hot path and
written byte for byte into journals that must replay.
"""

from __future__ import annotations

import re
from types import MappingProxyType

APPROVED_FULL = "approved_full"
APPROVED_CLIPPED = "approved_clipped"
EVAL_ERROR = "rejected_eval_error"
INVALID_INTENT = "rejected_invalid_intent"
DUPLICATE_INTENT = "rejected_duplicate_intent"
CLOCK_SKEW = "rejected_clock_skew"
DEFERRED = "deferred"
UNKNOWN_POSITION = "rejected_unknown_position"
REDUCE_ONLY_POSITION = "rejected_reduce_only_position"
REQUEST_CLIPPED = "rejected_request_clipped"
GROUP_REJECTED = "rejected_group"

#: Each code the engine can emit, with its meaning (the docs' table holds the same words).
DECISION_CODES = MappingProxyType(
    {
        APPROVED_FULL: "every rule passed (or an `allow` held): the whole requested risk is approved",
        APPROVED_CLIPPED: "approved for less than requested: a `limit` with `on_exceed: clip` cut it",
        EVAL_ERROR: "a rule or mode failed to evaluate; the decision fails closed",
        INVALID_INTENT: "the intent did not validate against the policy's intent model",
        DUPLICATE_INTENT: "the intent id names a live, recently ended or recently decided intent",
        CLOCK_SKEW: "the intent is stamped further ahead of the controller's clock than `max_skew`",
        UNKNOWN_POSITION: "the intent's `position_id` names no open position in its symbol (never opened, not yet filled, or closed)",
        REDUCE_ONLY_POSITION: "a reduce-only intent on the side of the position it names, or for more risk than that position holds",
        DEFERRED: "not now: a rule with `on_reject: defer` rejected it on a window or a lock that frees up later; `context.retry_after` says in how many seconds",
        GROUP_REJECTED: "a member of an order group was rejected or clipped, so nothing in the group is reserved: `context.member` names the member, `rule_id` its rule",
        REQUEST_CLIPPED: "a `limit` clipped a cancel or modify request: a cancel is all or nothing, a modify may not be cut below its order's size (when it grows it) or its filled risk; `rule_id` names the clipping rule",
    }
)

#: The prefix of a rule's default code.
RULE_CODE_PREFIX = "rejected_"


def rule_code(rule_id: str) -> str:
    """A rule's default decision code: ``rejected_`` and its id in snake case."""
    return RULE_CODE_PREFIX + re.sub(r"[^a-z0-9]+", "_", rule_id.lower()).strip("_")


__all__ = [
    "APPROVED_CLIPPED",
    "APPROVED_FULL",
    "CLOCK_SKEW",
    "DECISION_CODES",
    "DEFERRED",
    "DUPLICATE_INTENT",
    "EVAL_ERROR",
    "GROUP_REJECTED",
    "INVALID_INTENT",
    "REDUCE_ONLY_POSITION",
    "REQUEST_CLIPPED",
    "RULE_CODE_PREFIX",
    "UNKNOWN_POSITION",
    "rule_code",
]
