"""The structured records the control plane emits: one per decision and per lifecycle step.

A record is a JSON-ready dict. Decision records carry everything the seed asks
telemetry to explain (the code, the deciding rule, its numeric context,
requested and approved risk, clips, shadow warnings, the mode and why, the
policy, and the aggregates before and after); lifecycle records (``fill``,
``cancel``, ``close``, ``expire``, ``equity``, ``mode``, ``reload``) carry the
trade, the amounts moved and the totals after. ``canonical(record)`` is the
byte-exact form replay is compared on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..decision_codes import APPROVED_CLIPPED
from ..engine.contracts import RISK_SCALE
from ..engine.verdict import DecisionFacts
from .book import Trade
from .events import Record
from .state import Bucket

_SCALE = float(RISK_SCALE)

# The keys of a decision record, in the order they are built.
DECISION_KEYS = (
    "kind",
    "seq",
    "ts",
    "intent_id",
    "strategy",
    "symbol",
    "cohort",
    "side",
    "approved",
    "decision_code",
    "rule_id",
    "category",
    "requested_risk_abs",
    "approved_risk_abs",
    "reserved_risk_abs",
    "reasons",
    "context",
    "headroom",
    "clips",
    "warnings",
    "mode",
    "mode_source",
    "mode_reason",
    "policy",
    "before",
    "after",
)


def totals(state: Bucket) -> dict[str, Any]:
    """The portfolio's aggregates as a record shows them (before / after)."""
    return {
        "active_risk": state.active_units / _SCALE,
        "reserved_risk": state.reserved_units / _SCALE,
        "active_trades": state.active_trades,
        "open_positions": state.open_positions,
    }


def decision_record(
    facts: DecisionFacts,
    *,
    seq: int | None,
    ts: str | None,
    strategy: str | None,
    symbol: str | None,
    cohort: str | None,
    side: str | None,
    reserved: float,
    policy: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
) -> Record:
    """The decision record of ``facts`` (the same facts the AllocationDecision holds)."""
    return {
        "kind": "decision",
        "seq": seq,
        "ts": ts,
        "intent_id": facts["intent_id"],
        "strategy": strategy,
        "symbol": symbol,
        "cohort": cohort,
        "side": side,
        "approved": facts["approved"],
        "decision_code": facts["decision_code"],
        "rule_id": facts["rule_id"],
        "category": facts["category"],
        "requested_risk_abs": facts["requested_risk_abs"],
        "approved_risk_abs": facts["approved_risk_abs"],
        "reserved_risk_abs": reserved,
        "reasons": facts["reasons"],
        "context": facts["context"],
        "headroom": facts["headroom"],
        "clips": [
            {"rule_id": c.rule_id, "from_risk": c.from_risk, "to_risk": c.to_risk}
            for c in facts["clips"]
        ],
        "warnings": [w.model_dump() for w in facts["warnings"]],
        "mode": facts["mode"],
        "mode_source": facts["mode_source"],
        "mode_reason": facts["mode_reason"],
        "policy": policy,
        "before": before,
        "after": after,
    }


def outcome(record: Mapping[str, Any]) -> str:
    """A decision record's outcome: approved (in full), clipped or rejected."""
    if not record.get("approved"):
        return "rejected"
    return "clipped" if record.get("decision_code") == APPROVED_CLIPPED else "approved"


def lifecycle_record(
    kind: str, seq: int, trade: Trade | None, intent_id: str, state: Bucket
) -> Record:
    """The head of a fill / cancel / close / expire record: the trade and the totals after."""
    rec: Record = {"kind": kind, "seq": seq}
    if trade is not None:
        rec.update(
            intent_id=trade.intent_id,
            strategy=trade.strategy,
            symbol=trade.symbol,
            cohort=trade.cohort,
        )
    else:
        rec["intent_id"] = intent_id
    rec["after"] = totals(state)
    return rec


__all__ = ["DECISION_KEYS", "decision_record", "lifecycle_record", "outcome", "totals"]
