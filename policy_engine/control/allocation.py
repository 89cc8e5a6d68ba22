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
from typing import Any

from ..decision_codes import CLOCK_SKEW as CLOCK_SKEW_CODE
from ..decision_codes import DUPLICATE_INTENT as DUPLICATE_INTENT_CODE
from ..decision_codes import INVALID_INTENT as INVALID_INTENT_CODE
from ..decision_codes import REDUCE_ONLY_POSITION, UNKNOWN_POSITION
from ..engine.contracts import RISK_SCALE, PortfolioIntent, to_units
from ..engine.verdict import (
    DecisionFacts,
    Verdict,
    allocation_decision,
    outcome_facts,
    refusal_facts,
)
from ..engine.waits import wait
from .events import IntentEvent, InvalidIntentEvent, Record
from .kernel import ACCEPT, INFO, NOTHING, Kernel, Options, Outputs, Ruling, Step, new_step, outputs
from .records import decision_record, totals
from .trade import Trade, approved_notional

_SCALE = float(RISK_SCALE)


class Intents:
    """Deciding intents: the refusal and the step of an intent event (a part of the core,
    over its :class:`~.kernel.Kernel`)."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    # --- refusal: what a live shell answers without journaling (pure) --------------------
    def refusal(self, event: IntentEvent, ahead: str | None, teach: bool) -> Ruling:
        """A reused id, or (``ahead``: the shell's admission message) a timestamp too far
        ahead of the shell's clock: refused. Its finding (the id is free) goes to the step."""
        intent = event.intent
        iid = intent.intent_id
        book = self.k.book
        # (the common case, a fresh id, without duplicate_message's call)
        taken = iid in book.trades or iid in book.seen or iid in book.ended
        duplicate = self.duplicate_message(iid) if taken else None
        if duplicate is not None:
            out = self.rejection(intent, DUPLICATE_INTENT_CODE, duplicate, "CONTROLLER", teach)
            return Ruling(out, duplicate)
        if ahead is not None:
            return Ruling(self.rejection(intent, CLOCK_SKEW_CODE, ahead, "VALIDATION", teach), None)
        if intent.position_id is not None:
            problem = self.position_problem(intent)
            if problem is not None:
                out = self.rejection(intent, *problem, "POSITION", teach)
                return Ruling(out, problem[1])
        return ACCEPT

    def invalid_refusal(self, event: InvalidIntentEvent, ahead: str | None, teach: bool) -> Ruling:
        """An intent that failed validation is always refused (never journaled)."""
        out = self.rejection(event.raw, INVALID_INTENT_CODE, event.message, "VALIDATION", teach)
        return Ruling(out, event.message)

    def invalid_step(
        self, event: InvalidIntentEvent, ruling: Ruling | None, opts: Options
    ) -> Outputs:
        """An invalid intent an older journal holds (written before refusals stopped being
        journaled): rejected, numbered, nothing else changes."""
        seq = self.k.skip()
        return self.rejection(
            event.raw, INVALID_INTENT_CODE, event.message, "VALIDATION", opts.teach, seq
        )

    # --- the step ------------------------------------------------------------------------
    def step(self, event: IntentEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Decide the intent against the live state and reserve what is approved.

        The decision record is built only when ``opts.build`` (someone consumes it);
        ``opts.teach`` adds the teaching line; without ``opts.decide`` (a replay, which keeps
        only the records) no :class:`AllocationDecision` is built. The refusal's finding
        (the id is free) holds unless the clock's move released something; otherwise, and
        in a replay (older journals hold reused ids), the id is checked here."""
        k = self.k
        intent = event.intent
        teach, build = opts.teach, opts.decision_record
        ts = intent.timestamp
        step = k.begin(ts, teach)
        seq = step.seq
        book = k.book
        state = k.state
        before = totals(state) if build else None
        policy = k.policy
        iid = intent.intent_id
        checked = ruling is not None and ruling.finding is None and not step.moved
        duplicate = None if checked else self.duplicate_message(iid)
        if duplicate is not None:
            return self._rejected(step, intent, DUPLICATE_INTENT_CODE, duplicate, "CONTROLLER")
        if not checked and intent.position_id is not None:  # (a replay, a what-if)
            problem = self.position_problem(intent)
            if problem is not None:
                return self._rejected(step, intent, *problem, "POSITION")
        book.decided(iid)
        outcome = policy.decide(intent, state)
        verdict = Verdict(policy, intent, state, outcome) if teach else None
        if verdict is not None:
            step.logs.append((INFO, verdict.log_line()))
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
        if not approved and policy.rule_waits and outcome[1] >= 0 and policy.rule_waits[outcome[1]]:
            self.wait(facts, outcome[1], intent, cohort, scopes)
        if k.windows.by_kind:
            self.count_decision(intent, cohort, approved, takes_risk, scopes, facts)
        if takes_risk:
            mutated = True
            trade = self.trade_of(intent, seq, facts["approved_risk_abs"], cohort, scopes)
            book.reserve(trade)
            reserved = trade.approved_units / _SCALE
        record: Record | None = None
        if build:
            assert before is not None
            record = decision_record(
                facts,
                seq=seq,
                ts=k.iso_of(ts),
                strategy=intent.strategy,
                symbol=intent.symbol,
                cohort=cohort,
                side=intent.side,
                reserved=reserved,
                policy=k.policy_ref,
                before=before,
                after=totals(state) if mutated else before,
            )
            step.records.append(record)
        decision = None
        if opts.decide:  # (a replay keeps the records only)
            # The envelope the decision was made under (before a latch it sets moves the mode).
            # Without a record nothing else holds the facts: the decision takes them over.
            decision = allocation_decision(facts, k.envelope(), policy, consume=record is None)
        if policy.latch_names:  # the latches all the same
            return k.finish(step, own=record is not None, decision=decision)
        if decision is None and not step.records and not step.logs:
            return NOTHING
        return outputs(step.records, step.logs, None, decision)

    def trade_of(
        self,
        intent: PortfolioIntent,
        seq: int,
        approved: float,
        cohort: str | None = None,
        scopes: dict[str, str] | None = None,
    ) -> Trade:
        """The trade an approval of ``approved`` risk for ``intent`` reserves (not reserved
        yet): its buckets (``cohort``, ``scopes``: derived when not given), the string fields
        a scope may be keyed by, and its deadline from the event clock."""
        k = self.k
        policy = k.policy
        if cohort is None:
            cohort = policy.cohort_of(intent.symbol, intent.correlation_bucket)
            if policy.data.scope_fields:
                scopes = policy.scopes_of(lambda name: getattr(intent, name, None))
        created = k.book.clock or intent.timestamp
        ttl = k.ttl
        trade = Trade(
            intent.intent_id,
            intent.strategy,
            intent.symbol,
            cohort,
            to_units(approved),
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
        trade.reserved_notional = approved_notional(
            intent.requested_notional_abs, to_units(intent.requested_risk_abs), trade.approved_units
        )
        if intent.quote_currency is not None and intent.requested_notional_abs:
            # its notional's approved share locks its quote currency (control/balances.py)
            trade.currency = intent.quote_currency
            trade.notional_units = trade.reserved_notional
        return trade

    def wait(
        self,
        facts: DecisionFacts,
        index: int,
        intent: Any,
        cohort: str,
        scopes: Mapping[str, str] | None,
    ) -> None:
        """A rejection by rule ``index``, which reads windows or locks: when they free up
        (engine/waits.py, the rule every shell shares), asked of the live windows and locks."""
        k = self.k
        keys = {"portfolio": "", "strategy": intent.strategy, "symbol": intent.symbol}
        keys |= {"cohort": cohort, **(scopes or {})}
        day = k.days.day
        day_end = None if day is None else k.policy.calendar.check_from(day)  # next rollover
        locks, windows = k.locks, k.windows
        wait(
            facts,
            k.policy,
            index,
            intent,
            keys,
            lambda name, _per, key: locks.end(name, key),
            windows.next_exit,
            day_end,
        )

    def count_decision(
        self,
        intent: PortfolioIntent,
        cohort: str,
        approved: bool,
        takes_risk: bool,
        scopes: dict[str, str] | None,
        facts: Mapping[str, Any],
    ) -> None:
        """The rolling windows count the decision in its buckets (``scopes``: the declared
        scopes' ones) after it: an intent never sees itself. A request or rejection carries
        the intent's requested risk and notional, an approval the approved risk and the
        notional scaled to it (rounded down to the micro-unit: never more than requested)."""
        windows = self.k.windows
        by_kind = windows.by_kind
        kind = "approvals" if takes_risk else None if approved else "rejections"
        if "requests" not in by_kind and kind not in by_kind:
            return  # (no window counts these: no keys to build)
        keys = {"strategy": intent.strategy, "symbol": intent.symbol, "cohort": cohort}
        if scopes:
            keys.update(scopes)
        now = self.k.book.clock or intent.timestamp
        # (the quantities only when a window of the kind aggregates one: most count only)
        quantified = windows.quantified
        asked: dict[str, int] | None = None
        if quantified:
            asked = {"risk": to_units(intent.requested_risk_abs)}
            if intent.requested_notional_abs is not None:
                asked["notional"] = to_units(intent.requested_notional_abs)
        if "requests" in by_kind:
            windows.count("requests", now, keys, None, asked)
        if takes_risk:
            took: dict[str, int] | None = None
            if asked is not None and "approvals" in quantified:
                units = to_units(facts["approved_risk_abs"])
                took = {"risk": units}
                if "notional" in asked:  # what the trade reserves (Trade.reserved_notional)
                    took["notional"] = approved_notional(
                        intent.requested_notional_abs, asked["risk"], units
                    )
            windows.count("approvals", now, keys, None, took)
        elif not approved:
            windows.count("rejections", now, keys, None, asked)

    def duplicate_message(self, intent_id: str) -> str | None:
        """Why ``intent_id`` cannot be decided again, or None: it names a live trade, a
        remembered ended one (a reused id could pick up a late fill of the trade it named
        before), or one of the last ``SEEN_MEMORY`` intents decided."""
        book = self.k.book
        if book.get(intent_id) is not None:
            return f"intent {intent_id} already holds a live reservation or position"
        if intent_id in book.seen or intent_id in book.ended:
            return f"intent id {intent_id} was already decided: intent ids must be unique"
        return None

    def position_problem(self, intent: PortfolioIntent) -> tuple[str, str] | None:
        """Why an intent naming a position (``position_id``) is refused, as (code, message),
        or None: the id must name an open position (a live trade with a fill) in the
        intent's symbol; a reduce-only intent must be on the other side (or flat) and ask
        for no more risk than the position holds (NautilusTrader's reduce-only checks)."""
        pid = intent.position_id
        trade = self.k.book.get(pid) if pid is not None else None
        if trade is None or not trade.is_open or trade.symbol != intent.symbol:
            return UNKNOWN_POSITION, f"no open position {pid!r} in {intent.symbol}"
        if intent.reduce_only:
            if intent.side == trade.side:
                why = f"reduce-only {intent.side} would add to {trade.side} position {pid}"
                return REDUCE_ONLY_POSITION, why
            if to_units(intent.requested_risk_abs) > trade.filled_units:
                why = (
                    f"reduce-only {intent.requested_risk_abs} exceeds position {pid} ({trade.size})"
                )
                return REDUCE_ONLY_POSITION, why
        return None

    def rejection(
        self,
        raw: Any,
        code: str,
        message: str,
        category: str,
        teach: bool = False,
        seq: int | None = None,
    ) -> Outputs:
        """The rejection of an intent refused before evaluation (invalid, a reused id, too far
        ahead), with its decision: no state changes, and unless ``seq`` is given no event is
        numbered (the shells do not journal what they refuse). ``raw`` is a PortfolioIntent
        or whatever the caller sent."""
        return self._rejected(
            new_step(-1 if seq is None else seq, None, teach), raw, code, message, category
        )

    def _rejected(self, step: Step, raw: Any, code: str, message: str, category: str) -> Outputs:
        """The rejection of ``raw`` before evaluation as ``step``'s last record (``step.seq``
        -1: no number), with its decision; the teaching line goes to its logs."""
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
        intent_id = iid if isinstance(iid, str) else ""
        ts = fields.get("timestamp")
        ts_text = (
            ts.isoformat() if isinstance(ts, datetime) else ts if isinstance(ts, str) else None
        )
        extra = {
            k: v for k in ("strategy", "symbol", "side") if isinstance(v := fields.get(k), str)
        }
        if isinstance(raw, PortfolioIntent):
            extra["cohort"] = self.k.policy.cohort_of(raw.symbol, raw.correlation_bucket)
        requested = _shown_amount(fields.get("requested_risk_abs"))
        facts = refusal_facts(intent_id, requested, code, message, category, self.k.mode_info())
        before = totals(self.k.state)
        if step.teach:
            who = " ".join(str(x) for x in (extra.get("strategy"), extra.get("symbol")) if x)
            step.logs.append(
                (INFO, f"[RISK:{category}] {who or intent_id or '?'} → BLOCKED ({message})")
            )
        record = decision_record(
            facts,
            seq=None if step.seq < 0 else step.seq,
            ts=ts_text,
            strategy=extra.get("strategy"),
            symbol=extra.get("symbol"),
            cohort=extra.get("cohort"),
            side=extra.get("side"),
            reserved=0.0,
            policy=self.k.policy_ref,
            before=before,
            after=before,
        )
        step.records.append(record)
        decision = allocation_decision(facts, self.k.envelope(), self.k.policy)
        return outputs(step.records, step.logs, None, decision)


def _shown_amount(value: Any) -> float:
    """What a refused intent asked for, as far as it can be shown (0.0 when not a sane number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        amount = float(value)
    except OverflowError:  # an int beyond any float
        return 0.0
    return amount if math.isfinite(amount) else 0.0


__all__ = ["DUPLICATE_INTENT_CODE", "INVALID_INTENT_CODE", "Intents"]
