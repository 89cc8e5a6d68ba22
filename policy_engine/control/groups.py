"""Order groups, decided all or none (a part of the core): NautilusTrader's order lists and
brackets.

A ``group`` event carries a group id and its member intents. The members are decided in
order, each against the portfolio with the members before it already reserved (so a cap, or
a free balance, is checked against the group's cumulative reservation), each reading the
group as a whole (``group.count``, ``group.risk``, ``group.notional``: the same for every
member). The group is approved only if every member is approved in full: a member rejected,
or clipped (a bracket's legs must keep their sizes), rejects the whole group. Then nothing is
reserved (the members reserved so far are undone exactly), every member's decision record
says ``approved: false``: the failing member's with its own rule and code (a clip:
``rejected_group``), every other one ``rejected_group`` naming the member and the rule in its
``context`` and reasons; members after the failing one are not evaluated. The group's
record (``kind: group``) comes last. Every member's id is consumed either way.

The decision is :mod:`policy_engine.engine.groups` (``policy explain`` runs it too); this
module reserves, undoes and records.

``cancel_group`` releases the unfilled remainder of every live member of a group, exactly as
``cancel`` releases one (not decided; the windows of ``cancels`` count each).
"""

from __future__ import annotations

from typing import Any

from ..decision_codes import APPROVED_FULL, GROUP_REJECTED
from ..decision_codes import CLOCK_SKEW as CLOCK_SKEW_CODE
from ..decision_codes import DUPLICATE_INTENT as DUPLICATE_INTENT_CODE
from ..engine.contracts import PortfolioIntent, from_units, to_units
from ..engine.groups import Failure, Member, decide_group, group_facts
from ..engine.verdict import DecisionFacts
from .allocation import Intents
from .book import Trade
from .events import Record
from .kernel import INFO, Kernel, Options, Outputs, Ruling, admitted, outputs
from .lifecycle import count_trade
from .orders import CancelGroupEvent, GroupEvent
from .records import decision_record, lifecycle_record, totals


class Groups:
    """Order groups and their cancels (a part of the core, over its :class:`~.kernel.Kernel`);
    a member is decided and reserved as :class:`~.allocation.Intents` decides an intent."""

    def __init__(self, kernel: Kernel, intents: Intents) -> None:
        self.k = kernel
        self.intents = intents

    # --- refusals (pure) -------------------------------------------------------------------
    def refusal(self, event: GroupEvent, ahead: str | None, teach: bool) -> Ruling:
        """A member id already used, or a group stamped too far ahead: the whole group is
        refused (its record, ``seq`` null), never journaled."""
        for member in event.intents:
            duplicate = self.intents.duplicate_message(member.intent_id)
            if duplicate is not None:
                out = self._refused(event, DUPLICATE_INTENT_CODE, duplicate, member.intent_id)
                return Ruling(out, duplicate)
        if ahead is not None:
            return Ruling(self._refused(event, CLOCK_SKEW_CODE, ahead), ahead)
        return Ruling(None, None)

    def _refused(
        self, event: GroupEvent, code: str, message: str, member: str | None = None
    ) -> Outputs:
        rec = self._group_record(event, -1, False, code, None, member, [])
        rec["seq"] = None
        rec["message"] = message
        return outputs([rec], ())

    def cancel_refusal(self, event: CancelGroupEvent, ahead: str | None, teach: bool) -> Ruling:
        """A group with no live remainder: answered, not journaled."""
        admitted(ahead)
        if self.live(event.group_id):
            return Ruling(None, "cancel")
        rec: Record = {"kind": "cancel_group", "seq": None, "group_id": event.group_id}
        rec.update(status="unknown", released_risk_abs=0.0, members=[])
        rec["message"] = f"cancel_group {event.group_id}: no live reservation in the group"
        return Ruling(outputs([rec], ()), "unknown")

    def live(self, group_id: str) -> list[Trade]:
        """The group's live members with a remainder to release, in reservation order."""
        return [
            t
            for t in self.k.book.live()
            if t.group == group_id and t.released is None and t.late is None
        ]

    # --- steps -----------------------------------------------------------------------------
    def step(self, event: GroupEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Decide every member in order; reserve all of them, or none."""
        k = self.k
        step = k.begin(event.timestamp, opts.teach)
        checked = ruling is not None and ruling.finding is None and not step.moved
        if not checked:  # the clock's move (or a replay of an older journal)
            for member in event.intents:
                duplicate = self.intents.duplicate_message(member.intent_id)
                if duplicate is not None:
                    rec = self._group_record(
                        event, step.seq, False, DUPLICATE_INTENT_CODE, None, None, []
                    )
                    rec["message"] = duplicate
                    step.records.append(rec)
                    return k.finish(step)
        book, state = k.book, k.state
        before = totals(state)
        count = len(event.intents)
        for member in event.intents:  # every id is used, decided or not reached
            book.decided(member.intent_id)

        def reserve(member: PortfolioIntent, facts: DecisionFacts, _st: Any) -> tuple[Trade, Any]:
            trade = self.intents.trade_of(member, step.seq, facts["approved_risk_abs"])
            trade.group = event.group_id
            book.reserve(trade)
            return trade, state

        decided, failed = decide_group(k.policy, event.group_id, event.intents, state, reserve)
        if failed is not None:
            for m in decided:
                if m.held is not None:
                    book.unreserve(m.held)
        self._records(event, step.seq, decided, failed, before, step.records)
        if k.windows.by_kind:
            for m in decided:
                probe = m.held or self.intents.trade_of(m.intent, step.seq, 0.0)  # its buckets
                took = m.held is not None and failed is None
                self.intents.count_decision(
                    m.intent, probe.cohort, failed is None, took, probe.scopes, m.facts
                )
        code = APPROVED_FULL if failed is None else GROUP_REJECTED
        rule = None if failed is None else failed.rule
        member_id = None if failed is None else failed.member
        rec = self._group_record(event, step.seq, failed is None, code, rule, member_id, decided)
        rec["before"], rec["after"] = before, totals(state)
        if opts.teach:
            verdict = "APPROVED" if failed is None else f"REJECTED ({member_id}: {failed.why})"
            step.logs.append((INFO, f"[RISK:GROUP] {event.group_id} of {count} → {verdict}"))
        step.records.append(rec)
        return k.finish(step)

    def _records(
        self,
        event: GroupEvent,
        seq: int,
        decided: list[Member],
        failed: Failure | None,
        before: dict[str, Any],
        records: list[Record],
    ) -> None:
        """Every member's decision record (with ``group_id``), in order; members not reached
        when another failed are rejected with ``rejected_group`` too."""
        k = self.k
        rows = group_facts(event.group_id, event.intents, decided, failed, k.mode_info())
        for member, facts, trade in rows:
            reserved = (
                from_units(trade.approved_units) if trade is not None and failed is None else 0.0
            )
            rec = decision_record(
                facts,
                seq=seq,
                ts=k.iso_of(member.timestamp),
                strategy=member.strategy,
                symbol=member.symbol,
                cohort=k.policy.cohort_of(member.symbol, member.correlation_bucket),
                side=member.side,
                reserved=reserved,
                policy=k.policy_ref,
                before=before,
                after=totals(k.state),
            )
            rec["group_id"] = event.group_id
            records.append(rec)

    def _group_record(
        self,
        event: GroupEvent,
        seq: int,
        approved: bool,
        code: str,
        rule: str | None,
        member: str | None,
        decided: list[Member],
    ) -> Record:
        reserved = (
            sum(m.held.approved_units for m in decided if m.held is not None) if approved else 0
        )
        return {
            "kind": "group",
            "seq": seq,
            "group_id": event.group_id,
            "status": "approved" if approved else "rejected" if seq >= 0 else "refused",
            "approved": approved,
            "decision_code": code,
            "rule_id": rule,
            "member": member,
            "members": [m.intent_id for m in event.intents],
            "requested_risk_abs": from_units(
                sum(to_units(m.requested_risk_abs) for m in event.intents)
            ),
            "reserved_risk_abs": from_units(reserved),
        }

    def cancel(self, event: CancelGroupEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Release the remainder of every live member of the group."""
        k = self.k
        step = k.begin(event.timestamp, opts.teach)
        before = totals(k.state)
        members = self.live(event.group_id)
        released = 0
        for trade in members:
            units = k.book.release(trade, "cancelled")
            released += units
            if k.windows.by_kind:
                count_trade(k, "cancels", trade, event.timestamp)
            rec = lifecycle_record("cancel", step.seq, trade, trade.intent_id, k.state)
            rec.update(
                status="cancelled", released_risk_abs=from_units(units), group_id=event.group_id
            )
            step.records.append(rec)
        rec = {"kind": "cancel_group", "seq": step.seq, "group_id": event.group_id}
        rec.update(
            status="cancelled" if members else "unknown",
            released_risk_abs=from_units(released),
            members=[t.intent_id for t in members],
            before=before,
            after=totals(k.state),
        )
        step.records.append(rec)
        return k.finish(step)


__all__ = ["Groups"]
