"""The decision path of the core: an intent is decided, and what is approved reserved.

One step per intent: expire what the intent's timestamp passes, refuse a
duplicate id, evaluate the compiled policy, reserve the approved risk, and
build the decision (and its record when someone consumes it). Invalid intents
are decided here too: rejected, nothing else changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, overload

from ..decision_codes import CLOCK_SKEW as CLOCK_SKEW_CODE
from ..decision_codes import DUPLICATE_INTENT as DUPLICATE_INTENT_CODE
from ..decision_codes import INVALID_INTENT as INVALID_INTENT_CODE
from ..engine.contracts import RISK_SCALE, AllocationDecision, PortfolioIntent, to_units
from ..engine.verdict import Verdict, allocation_decision, outcome_facts, refusal_facts
from .base import INFO, NOTHING, CoreBase, Log, Outputs, outputs
from .book import Trade
from .events import Record
from .records import decision_record, totals

_SCALE = float(RISK_SCALE)


class Allocation(CoreBase):
    """Deciding intents."""

    # --- intents ---------------------------------------------------------------------------
    @overload
    def request(
        self,
        intent: PortfolioIntent,
        *,
        build: bool = ...,
        teach: bool = ...,
        decide: Literal[True] = ...,
        admitted: bool = ...,
    ) -> tuple[AllocationDecision, Record | None, Outputs]: ...

    @overload
    def request(
        self,
        intent: PortfolioIntent,
        *,
        build: bool = ...,
        teach: bool = ...,
        decide: bool,
        admitted: bool = ...,
    ) -> tuple[AllocationDecision | None, Record | None, Outputs]: ...

    def request(
        self,
        intent: PortfolioIntent,
        *,
        build: bool = True,
        teach: bool = False,
        decide: bool = True,
        admitted: bool = False,
    ) -> tuple[AllocationDecision | None, Record | None, Outputs]:
        """Decide ``intent`` against the live state and reserve what is approved.

        The decision record is built only when ``build`` (someone consumes it);
        ``teach`` adds the teaching line. Without ``decide`` (a replay, which keeps
        only the records) no :class:`AllocationDecision` is built. ``admitted``: the
        shell's :meth:`admit` just passed this intent with nothing applied since, so its
        id is not checked twice (a replay checks it here: old journals hold reused ids).
        """
        seq = self.next_seq()
        book = self.book
        ts = intent.timestamp
        extra, logs = self.clock_to(ts, seq, teach)
        state = self.state
        before = totals(state) if build else None
        policy = self.policy
        iid = intent.intent_id
        duplicate = None if admitted else self.duplicate_message(iid)
        if duplicate is not None:
            return self.refuse(
                seq,
                iid,
                intent.requested_risk_abs,
                DUPLICATE_INTENT_CODE,
                duplicate,
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
        book.decided(iid)
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
        takes_risk = approved and not (intent.side == "flat" or intent.reduce_only)
        # The declared scopes' buckets, read from the intent once: the windows count the
        # decision in them and a new trade is reserved in them.
        scopes = (
            policy.scopes_of(lambda name: getattr(intent, name, None))
            if policy.data.scope_fields
            else None
        )
        if self.windows.by_kind:
            self.count_decision(intent, cohort, approved, takes_risk, scopes)
        if takes_risk:
            mutated = True
            units = to_units(facts["approved_risk_abs"])
            created = book.clock or ts
            ttl = self.ttl
            trade = Trade(
                iid,
                intent.strategy,
                intent.symbol,
                cohort,
                units,
                seq,
                created,
                None if ttl is None else created + ttl,
                intent.correlation_bucket,
                intent.side,
            )
            values = policy.read_keys(intent)
            if values != policy.no_keys:  # most intents carry none of these fields
                keys = zip(policy.key_fields, values, strict=True)
                trade.keys = {k: v for k, v in keys if v is not None}
            trade.scopes = scopes
            book.reserve(trade)
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
        if not decide:  # a replay: the records only, but the latches all the same
            out = outputs(extra or (), logs or (), None)
            if policy.latch_names:
                out = self.settled(out, seq, ts, teach, own=record is not None)
            return None, record, out
        # Without a record nothing else holds the facts: the decision takes them over.
        decision = allocation_decision(facts, self.envelope(), policy, consume=record is None)
        out = NOTHING if extra is None and logs is None else outputs(extra or (), logs or (), None)
        if policy.latch_names:
            out = self.settled(out, seq, ts, teach, own=record is not None)
        return decision, record, out

    def count_decision(
        self,
        intent: PortfolioIntent,
        cohort: str,
        approved: bool,
        takes_risk: bool,
        scopes: dict[str, str] | None,
    ) -> None:
        """The rolling windows count the decision in its buckets (``scopes``: the declared
        scopes' ones) after it: an intent never sees itself."""
        keys = {"strategy": intent.strategy, "symbol": intent.symbol, "cohort": cohort}
        if scopes:
            keys.update(scopes)
        now = self.book.clock or intent.timestamp
        windows = self.windows
        windows.count("requests", now, keys)
        if takes_risk:
            windows.count("approvals", now, keys)
        elif not approved:
            windows.count("rejections", now, keys)

    def duplicate_message(self, intent_id: str) -> str | None:
        """Why ``intent_id`` cannot be decided again, or None: it names a live trade, a
        remembered ended one (a reused id could pick up a late fill of the trade it named
        before), or one of the last ``SEEN_MEMORY`` intents decided."""
        if self.book.get(intent_id) is not None:
            return f"intent {intent_id} already holds a live reservation or position"
        if intent_id in self.book.seen or intent_id in self.book.ended:
            return f"intent id {intent_id} was already decided: intent ids must be unique"
        return None

    def admit(
        self, intent: PortfolioIntent, ahead: str | None = None, *, teach: bool = False
    ) -> tuple[AllocationDecision, Record, Outputs] | None:
        """The refusal of a parsed intent that a live shell must not journal, or None (decide
        it): a reused id, or (``ahead``: the shell's admission message) a timestamp too far
        ahead of the shell's clock. Pure: nothing is numbered, nothing changes."""
        duplicate = self.duplicate_message(intent.intent_id)
        if duplicate is not None:
            return self.refusal(intent, DUPLICATE_INTENT_CODE, duplicate, "CONTROLLER", teach=teach)
        if ahead is not None:
            return self.refusal(intent, CLOCK_SKEW_CODE, ahead, "VALIDATION", teach=teach)
        return None

    def invalid_intent(
        self, raw: Any, message: str, *, teach: bool = False
    ) -> tuple[AllocationDecision, Record, Outputs]:
        """Decide an intent that failed validation and was journaled (journals written before
        refusals stopped being journaled): rejected, numbered, nothing else changes."""
        return self.refusal(
            raw, INVALID_INTENT_CODE, message, "VALIDATION", teach=teach, seq=self.next_seq()
        )

    def refusal(
        self,
        raw: Any,
        code: str,
        message: str,
        category: str,
        *,
        teach: bool = False,
        seq: int | None = None,
    ) -> tuple[AllocationDecision, Record, Outputs]:
        """The rejection of an intent refused before evaluation (invalid, a reused id): no
        state changes, and unless ``seq`` is given no event is numbered (the shells do not
        journal what they refuse). ``raw`` is a PortfolioIntent or whatever the caller sent."""
        if isinstance(raw, PortfolioIntent):
            fields: Mapping[str, Any] = {
                "intent_id": raw.intent_id,
                "requested_risk_abs": raw.requested_risk_abs,
                "timestamp": raw.timestamp,
                "strategy": raw.strategy,
                "symbol": raw.symbol,
                "side": raw.side,
            }
        else:
            fields = raw if isinstance(raw, Mapping) else {}
        iid = fields.get("intent_id")
        requested = _shown_amount(fields.get("requested_risk_abs"))
        ts = fields.get("timestamp")
        ts_text = (
            ts.isoformat() if isinstance(ts, datetime) else ts if isinstance(ts, str) else None
        )
        extra = {
            k: v for k in ("strategy", "symbol", "side") if isinstance(v := fields.get(k), str)
        }
        if isinstance(raw, PortfolioIntent):
            extra["cohort"] = self.policy.cohort_of(raw.symbol, raw.correlation_bucket)
        return self.refuse(
            seq,
            iid if isinstance(iid, str) else "",
            requested,
            code,
            message,
            category,
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
        return self.refusal(raw, INVALID_INTENT_CODE, message, "VALIDATION")[0]

    def refuse(
        self,
        seq: int | None,
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


def _shown_amount(value: Any) -> float:
    """What a refused intent asked for, as far as it can be shown (0.0 when not a sane number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        amount = float(value)
    except OverflowError:  # an int beyond any float
        return 0.0
    return amount if math.isfinite(amount) else 0.0


__all__ = ["DUPLICATE_INTENT_CODE", "INVALID_INTENT_CODE", "Allocation"]
