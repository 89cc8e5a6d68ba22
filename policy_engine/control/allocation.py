"""The decision path of the core: an intent is decided, and what is approved reserved.

One step per intent: expire what the intent's timestamp passes, refuse a
duplicate id, evaluate the compiled policy, reserve the approved risk, and
build the decision (and its record when someone consumes it). Invalid intents
are decided here too: rejected, nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..engine.contracts import RISK_SCALE, AllocationDecision, PortfolioIntent, to_units
from ..engine.decision import allocation_decision, outcome_facts, refusal_facts
from ..engine.verdict import Verdict
from .base import INFO, NOTHING, CoreBase, Log, Outputs, outputs
from .events import Record
from .records import decision_record, totals
from .state import Trade

INVALID_INTENT_CODE = "rejected_invalid_intent"
DUPLICATE_INTENT_CODE = "rejected_duplicate_intent"

_SCALE = float(RISK_SCALE)


class Allocation(CoreBase):
    """Deciding intents."""

    # --- intents ---------------------------------------------------------------------------
    def request(
        self, intent: PortfolioIntent, *, build: bool = True, teach: bool = False
    ) -> tuple[AllocationDecision, Record | None, Outputs]:
        """Decide ``intent`` against the live state and reserve what is approved.

        The decision record is built only when ``build`` (someone consumes it);
        ``teach`` adds the teaching line.
        """
        seq = self.next_seq()
        book = self.book
        ts = intent.timestamp
        extra: list[Record] | None = None
        logs: list[Log] | None = None
        expired = book.advance(ts)
        if expired:
            extra, logs = [], []
            self.expire(expired, seq, extra, logs, teach)
        state = self.state
        before = totals(state) if build else None
        policy = self.policy
        iid = intent.intent_id
        if book.get(iid) is not None:
            return self.refuse(
                seq,
                iid,
                intent.requested_risk_abs,
                DUPLICATE_INTENT_CODE,
                f"intent {iid} already holds a live reservation or position",
                "CONTROLLER",
                {
                    "strategy": intent.strategy,
                    "symbol": intent.symbol,
                    "cohort": policy.cohort_of(intent.symbol, intent.correlation_bucket),
                    "side": intent.side,
                },
                self.iso_of(ts),
                extra or [],
                logs or [],
                teach,
            )
        outcome = policy.decide(intent, state)
        verdict = Verdict(policy, intent, state, outcome) if teach else None
        if teach:
            assert verdict is not None
            if logs is None:
                logs = []
            logs.append((INFO, verdict.log_line()))
        facts = outcome_facts(policy, intent, state, outcome, verdict)
        approved = facts["approved"]
        reserved = 0.0
        mutated = False
        cohort = policy.cohort_of(intent.symbol, intent.correlation_bucket)
        if approved and not (intent.side == "flat" or intent.reduce_only):
            mutated = True
            units = to_units(facts["approved_risk_abs"])
            created = book.clock or ts
            ttl = self.ttl
            book.reserve(
                Trade(
                    iid,
                    intent.strategy,
                    intent.symbol,
                    cohort,
                    units,
                    seq,
                    created,
                    None if ttl is None else created + ttl,
                )
            )
            reserved = units / _SCALE
        record: Record | None = None
        if build:
            assert before is not None
            record = decision_record(
                facts,
                seq=seq,
                ts=self.iso_of(ts),
                strategy=intent.strategy,
                symbol=intent.symbol,
                cohort=cohort,
                side=intent.side,
                reserved=reserved,
                policy=self.policy_ref,
                before=before,
                after=totals(state) if mutated else before,
            )
            if extra is None:
                extra = []
            extra.append(record)
        # Without a record nothing else holds the facts: the decision takes them over.
        decision = allocation_decision(facts, self.envelope(), policy, consume=record is None)
        if extra is None and logs is None:
            return decision, record, NOTHING
        return decision, record, outputs(extra or (), logs or (), None)

    def invalid_intent(
        self, raw: Any, message: str, *, teach: bool = False
    ) -> tuple[AllocationDecision, Record, Outputs]:
        """Decide an intent that failed validation: rejected, nothing else changes."""
        seq = self.next_seq()
        iid, requested, ts_text, extra = _raw_fields(raw)
        return self.refuse(
            seq,
            iid,
            requested,
            INVALID_INTENT_CODE,
            message,
            "VALIDATION",
            extra,
            ts_text,
            [],
            [],
            teach,
        )

    def invalid_decision(self, raw: Any, message: str) -> AllocationDecision:
        """The decision :meth:`invalid_intent` would give ``raw``, without applying an event
        (no sequence number taken, no record): for a shell that refuses malformed input
        before it reaches the authority's event stream."""
        iid, requested, _ts, _extra = _raw_fields(raw)
        facts = refusal_facts(
            iid, requested, INVALID_INTENT_CODE, message, "VALIDATION", self.mode_info()
        )
        return allocation_decision(facts, self.envelope(), self.policy)

    def refuse(
        self,
        seq: int,
        intent_id: str,
        requested: float,
        code: str,
        message: str,
        category: str,
        extra: Mapping[str, Any],
        ts: str | None,
        records: list[Record],
        logs: list[Log],
        teach: bool,
    ) -> tuple[AllocationDecision, Record, Outputs]:
        facts = refusal_facts(intent_id, requested, code, message, category, self.mode_info())
        before = totals(self.state)
        record = decision_record(
            facts,
            seq=seq,
            ts=ts,
            strategy=extra.get("strategy"),
            symbol=extra.get("symbol"),
            cohort=extra.get("cohort"),
            side=extra.get("side"),
            reserved=0.0,
            policy=self.policy_ref,
            before=before,
            after=before,
        )
        if teach:
            who = " ".join(str(x) for x in (extra.get("strategy"), extra.get("symbol")) if x)
            logs.append(
                (INFO, f"[RISK:{category}] {who or intent_id or '?'} → BLOCKED ({message})")
            )
        records.append(record)
        decision = allocation_decision(facts, self.envelope(), self.policy)
        return decision, record, outputs(records, logs, None)


def _raw_fields(raw: Any) -> tuple[str, float, str | None, dict[str, Any]]:
    """What a refusal of a malformed intent can still say: its id, requested risk (0 when
    not a finite number), timestamp text, and strategy / symbol / side when they are text."""
    fields: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    iid = fields.get("intent_id")
    req = fields.get("requested_risk_abs")
    requested = (
        float(req)
        if isinstance(req, int | float) and not isinstance(req, bool) and req == req
        else 0.0
    )
    if requested in (float("inf"), float("-inf")):
        requested = 0.0
    ts = fields.get("timestamp")
    ts_text = ts.isoformat() if isinstance(ts, datetime) else ts if isinstance(ts, str) else None
    extra = {k: v for k in ("strategy", "symbol", "side") if isinstance(v := fields.get(k), str)}
    return iid if isinstance(iid, str) else "", requested, ts_text, extra


__all__ = ["DUPLICATE_INTENT_CODE", "INVALID_INTENT_CODE", "Allocation"]
