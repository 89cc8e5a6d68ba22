"""Decided requests about a live order: a cancel and a modify (a part of the core).

A request names a live trade. Its subject is an intent built from the order as the book
remembers it (strategy, symbol, side, correlation bucket, the string fields the policy
keys by) and the amounts the request carries, validated by the policy's intent model:

- ``request_cancel`` asks for the unfilled remainder (``intent.risk`` is that remainder)
  and is decided by the rules that apply to cancels; approved, the remainder is released
  exactly as a ``cancel`` event releases it. A cancel is all or nothing: a clip rejects it.
- ``request_modify`` asks for a new total risk of the order. The order is taken out of the
  book while it is decided, so it is decided as if placed anew at its new size against the
  portfolio without it (a cap `limit: 1000 - portfolio.heat` reads the same headroom it
  read when the order was placed). One that grows the order (more risk, or a restated
  notional above its current one) is decided by the intent rules and the modify rules, in
  the order written (a growth passes every cap an intent passes);
  one that does not, by the modify rules alone. Approved, the order holds the approved risk
  (its reservation moves by the difference, exactly); a clip approves the clipped size only
  if it is still at least the order's size (when growing) and its filled risk, else rejects
  (``rejected_request_clipped``). Never more than requested.

Both are journaled when let through (windows count them: ``cancel_requests``,
``modify_requests``, and ``cancels`` for a remainder released); a refused one (no live
remainder, an invalid amount) is answered and not journaled, like a cancel of nothing.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

from ..decision_codes import REQUEST_CLIPPED
from ..engine.contracts import from_units, to_units
from ..engine.policy import Policy
from ..engine.verdict import DecisionFacts, outcome_facts
from .book import Book, Trade
from .events import Record
from .fields import parse_intent
from .kernel import INFO, Kernel, Options, Outputs, Ruling, admitted, outputs
from .lifecycle import count_trade
from .orders import Fields, RequestCancelEvent, RequestModifyEvent
from .records import decision_record, lifecycle_record, totals
from .state import move_all, move_notional
from .trade import approved_notional


class Requests:
    """Cancel and modify requests (a part of the core, over its :class:`~.kernel.Kernel`)."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        self._checked: tuple[object, Any] | None = None  # (the request, its subject)

    # --- what would the request be about? ------------------------------------------------
    def status(self, intent_id: str, units: int | None = None) -> str:
        """``live`` when the order has a live remainder (and a modify's risk is at least its
        filled risk); else why nothing would change: ``unknown``, how it ended, how its
        remainder was released, ``invalid``."""
        trade = self.k.book.get(intent_id)
        if trade is None:
            return self.k.book.ended_reason(intent_id) or "unknown"
        if trade.released:
            return trade.released
        if units is not None and units < trade.filled_units:
            return "invalid"
        return "live"

    def subject(self, trade: Trade, risk: float, ts: datetime, fields: Fields) -> Any:
        """The intent a request about ``trade`` is decided as (ValueError: the request's
        fields do not validate with the order's)."""
        data: dict[str, Any] = {
            "intent_id": trade.intent_id,
            "strategy": trade.strategy,
            "symbol": trade.symbol,
            "side": trade.side,
            "requested_risk_abs": risk,
            "timestamp": ts,
        }
        if trade.bucket is not None:
            data["correlation_bucket"] = trade.bucket
        if trade.currency is not None:  # what its notional is in (`balance.quote.*`)
            data["quote_currency"] = trade.currency
        data.update(trade.keys or {})
        data.update(fields)
        return parse_intent(data, self.k.policy.intent_model)

    def _problem(self, event: RequestCancelEvent | RequestModifyEvent) -> tuple[str, str | None]:
        units = event.units if isinstance(event, RequestModifyEvent) else None
        status = self.status(event.intent_id, units)
        if status == "invalid":
            trade = self.k.book.get(event.intent_id)
            assert trade is not None and isinstance(event, RequestModifyEvent)
            return status, (
                f"request_modify of {event.intent_id} to {from_units(event.units)}: below its "
                f"filled risk of {from_units(trade.filled_units)}"
            )
        if status != "live":
            return status, None
        trade = self.k.book.get(event.intent_id)
        assert trade is not None
        risk = event.risk_abs if isinstance(event, RequestModifyEvent) else 0.0
        try:
            subject = self.subject(trade, risk, event.timestamp, event.fields)
        except ValueError as exc:
            return "invalid", f"{_kind(event)} of {event.intent_id}: {exc}"
        # A modify's step decides this very subject: kept for it (the same event object and
        # an order whose fields never change give the same subject), validated once.
        self._checked = (event, subject)
        return "live", None

    # --- refusal (pure) --------------------------------------------------------------------
    def refusal(
        self, event: RequestCancelEvent | RequestModifyEvent, ahead: str | None, teach: bool
    ) -> Ruling:
        """A request about no live remainder, or one whose fields do not validate: answered
        (its record, ``seq`` null), never journaled."""
        admitted(ahead)
        status, message = self._problem(event)
        if status == "live":
            return Ruling(None, "live")
        rec = lifecycle_record(
            _kind(event), -1, self.k.book.get(event.intent_id), event.intent_id, self.k.state
        )
        rec.update(seq=None, status=status, approved=False, before=rec["after"])
        rec["message"] = message or f"{_kind(event)} of {event.intent_id}: no live order ({status})"
        return Ruling(outputs([rec], ()), status)

    # --- steps ---------------------------------------------------------------------------
    def cancel(self, event: RequestCancelEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Decide a cancel request; approved, release the remainder."""
        return self._step(event, ruling, opts)

    def modify(self, event: RequestModifyEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Decide a modify request; approved, the order holds the approved risk."""
        return self._step(event, ruling, opts)

    def _step(
        self, event: RequestCancelEvent | RequestModifyEvent, ruling: Ruling | None, opts: Options
    ) -> Outputs:
        k = self.k
        kind = _kind(event)
        step = k.begin(event.timestamp, opts.teach)
        before = totals(k.state)
        found = None if ruling is None or step.moved else ruling.finding
        status, message = (found, None) if found == "live" else self._problem(event)
        trade = k.book.get(event.intent_id)
        if status != "live" or trade is None:  # the clock's move ended it (or a replay)
            rec = lifecycle_record(kind, step.seq, trade, event.intent_id, k.state)
            rec.update(status=status, approved=False, before=before)
            rec["message"] = message or f"{kind} of {event.intent_id}: no live order ({status})"
            step.records.append(rec)
            return k.finish(step)
        if isinstance(event, RequestModifyEvent):
            rec = self._decide_modify(event, trade, step.seq)
        else:
            rec = self._decide_cancel(event, trade, step.seq)
        rec["before"] = before
        rec["after"] = totals(k.state)
        if k.windows.by_kind:
            count_trade(k, kind.replace("request_", "") + "_requests", trade, event.timestamp)
            if rec["status"] == "cancelled":
                count_trade(k, "cancels", trade, event.timestamp)
        if opts.teach:
            verdict = "APPROVED" if rec["approved"] else f"REJECTED by {rec['rule_id']}"
            step.logs.append(
                (
                    INFO,
                    f"[RISK:{rec['category'] or 'REQUEST'}] {kind} {trade.intent_id} → {verdict}",
                )
            )
        step.records.append(rec)
        return k.finish(step)

    def _decide_cancel(self, event: RequestCancelEvent, trade: Trade, seq: int) -> Record:
        k = self.k
        remainder = from_units(trade.reserved_units)
        intent = self.subject(trade, remainder, event.timestamp, event.fields)
        chain = k.policy.for_request("cancel")
        facts = _facts(chain, intent, k.state)
        if facts["approved"] and facts["approved_risk_abs"] < remainder:
            _clipped(facts)
        released = 0
        if facts["approved"]:
            released = k.book.release(trade, "cancelled")
        rec = self._record("request_cancel", facts, trade, seq, event.timestamp, chain)
        rec["status"] = "cancelled" if facts["approved"] else "rejected"
        rec["released_risk_abs"] = from_units(released)
        return rec

    def _decide_modify(self, event: RequestModifyEvent, trade: Trade, seq: int) -> Record:
        k = self.k
        book = k.book
        previous = trade.approved_units
        restated = dict(event.fields).get("requested_notional_abs")
        # it grows with more risk, or with more notional (it would lock more of a balance)
        grows = event.units > previous or (
            isinstance(restated, int | float) and to_units(restated) > trade.notional_units
        )
        checked, self._checked = self._checked, None
        if checked is not None and checked[0] is event:
            intent = checked[1]
        else:
            intent = self.subject(trade, event.risk_abs, event.timestamp, event.fields)
        chain = k.policy.for_request("grow" if grows else "modify")
        lift(book, trade)  # decided as if placed anew, against the portfolio without it
        try:
            facts = _facts(chain, intent, k.state)
        except BaseException:
            resize(book, trade, previous)  # (nothing raises here; if it did, nothing moved)
            raise
        units, notional = previous, None
        if facts["approved"]:
            units = min(event.units, to_units(facts["approved_risk_abs"]))
            if units < trade.filled_units or (grows and units < previous):
                _clipped(facts)
                units = previous
            elif trade.currency is not None:  # the notional its lock is the share of
                trade.notional_units = (
                    approved_notional(
                        intent.requested_notional_abs, to_units(intent.requested_risk_abs), units
                    )
                    if restated is not None
                    else trade.notional_units * units // previous
                    if previous
                    else trade.notional_units
                )
            if units != previous or restated is not None:  # its notional follows (issue 23)
                notional = _reserved_notional(trade, restated, event.units, previous, units)
        resize(book, trade, units, notional)
        rec = self._record("request_modify", facts, trade, seq, event.timestamp, chain)
        rec["status"] = "modified" if facts["approved"] else "rejected"
        rec["previous_risk_abs"] = from_units(previous)
        rec["reserved_risk_abs"] = from_units(trade.reserved_units)
        return rec

    def _record(
        self,
        kind: str,
        facts: DecisionFacts,
        trade: Trade,
        seq: int,
        ts: datetime,
        chain: Policy,
    ) -> Record:
        k = self.k
        rec = decision_record(
            facts,
            seq=seq,
            ts=k.iso_of(ts),
            strategy=trade.strategy,
            symbol=trade.symbol,
            cohort=trade.cohort,
            side=trade.side,
            reserved=from_units(trade.reserved_units),
            policy=k.policy_ref,
            before={},
            after={},
        )
        rec["kind"] = kind
        return rec


def _facts(chain: Policy, intent: Any, state: Any) -> DecisionFacts:
    outcome = chain.decide(intent, state)
    return outcome_facts(chain, intent, state, outcome)  # explained when needed


def _clipped(facts: DecisionFacts) -> None:
    """A clip the request cannot take: rejected, the clipping rule named."""
    clip = facts["clips"][-1] if facts["clips"] else None
    facts["approved"] = False
    facts["decision_code"] = REQUEST_CLIPPED
    facts["approved_risk_abs"] = 0.0
    if clip is not None:
        facts["rule_id"] = clip.rule_id
        facts["reasons"] = [
            f"{clip.rule_id} would clip it from {clip.from_risk} to {clip.to_risk}",
            *facts["reasons"],
        ]


def _kind(event: RequestCancelEvent | RequestModifyEvent) -> str:
    return "request_modify" if isinstance(event, RequestModifyEvent) else "request_cancel"


def _reserved_notional(
    trade: Trade, restated: Any, requested: int, previous: int, units: int
) -> int:
    """The notional a modify to ``units`` of approved risk leaves reserved: the order's whole
    notional (restated for ``requested`` units and scaled to what was approved, or the one it
    had, scaled from ``previous`` units) less what its fills already hold (never below 0)."""
    if isinstance(restated, int | float):
        whole = approved_notional(restated, requested, units)
    else:
        whole = trade.filled_notional + trade.reserved_notional
        whole = whole * units // previous if previous else whole
    return max(0, whole - trade.filled_notional)


def lift(book: Book, trade: Trade) -> None:
    """Take ``trade`` out of its buckets (its active and reserved risk, position and slot)
    while a request to modify it is decided as if it were placed anew; :func:`resize`
    puts it back, exactly."""
    opens = -1 if trade.is_open else 0
    if trade.currency is not None:
        book.state.balances.lock(trade.currency, -book.locked(trade))
    buckets = book.buckets(trade)
    move_all(buckets, -trade.filled_units, -trade.reserved_units, opens, -1, trade.long)
    move_notional(buckets, -trade.filled_notional, -trade.reserved_notional, trade.long)
    book.state.version += 1


def resize(book: Book, trade: Trade, units: int, notional: int | None = None) -> None:
    """Put a lifted ``trade`` back with ``units`` of approved risk: its reservation is
    what its fills have not taken (the caller keeps ``units`` at least the filled risk),
    and its reserved notional ``notional`` (None: as it was). A reservation that comes
    back from zero gets its deadline again."""
    if book.captures.views:  # a capture holds it: keep its row first
        book.captures.keep(trade)
    was = trade.reserved_units
    trade.approved_units = units
    trade.reserved_units = units - trade.filled_units
    if notional is not None:
        trade.reserved_notional = notional
    opens = 1 if trade.is_open else 0
    buckets = book.buckets(trade)
    move_all(buckets, trade.filled_units, trade.reserved_units, opens, 1, trade.long)
    move_notional(buckets, trade.filled_notional, trade.reserved_notional, trade.long)
    if was == 0 and trade.reserved_units and trade.expires is not None:
        heapq.heappush(book.deadlines, (trade.expires, trade.seq, trade.intent_id))
    if trade.currency is not None:
        book.lock(trade, 0)
    book.state.version += 1


__all__ = ["Requests"]
