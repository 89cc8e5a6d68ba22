"""The lifecycle steps of the core: fills, cancels, closes and ticks.

Each step expires what its timestamp passes, moves exact integer amounts
through the book, and returns its record last (``status`` says what happened:
``committed``, ``duplicate``, ``cancelled``, ``closed``, or why nothing did).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..engine.contracts import from_units, to_units
from .base import INFO, WARNING, CoreBase, Log, Outputs, outputs
from .events import FillUpdate, Record
from .records import lifecycle_record, totals


class Lifecycle(CoreBase):
    """Fills, cancels, closes and ticks."""

    # --- admission: would the event change anything? (pure; shells journal only what does) --
    def fill_status(self, fill: FillUpdate) -> str:
        """``commit`` (a live trade's new fill), ``late`` (absorbed as exposure after the trade
        ended or released its remainder), ``duplicate`` or ``unknown`` (nothing changes)."""
        book = self.book
        trade = book.get(fill.intent_id)
        if trade is None:
            if book.ended_fill(fill.intent_id, fill.fill_id):
                return "duplicate"  # re-sent after its trade ended: no exposure
            return "late" if fill.intent_id in book.ended else "unknown"
        if trade.fills is not None and fill.fill_id in trade.fills:
            return "duplicate"
        return "late" if trade.released else "commit"

    def cancel_status(self, intent_id: str) -> str:
        """``cancel`` when a reservation remainder is live; else why nothing would change."""
        trade = self.book.get(intent_id)
        if trade is None:
            return self.book.ended_reason(intent_id) or "unknown"
        return trade.released or "cancel"

    def close_status(self, intent_id: str, risk_units: int | None = None) -> str:
        """``close`` when the trade is live (and a partial amount fits its position); else
        why nothing would change (``invalid``: an amount the position cannot give)."""
        trade = self.book.get(intent_id)
        if trade is None:
            return self.book.ended_reason(intent_id) or "unknown"
        if risk_units is not None and risk_units > trade.filled_units:
            return "invalid"
        return "close"

    def fill_refusal(self, fill: FillUpdate, ahead: str | None = None) -> Outputs | None:
        """The record of a fill that changes nothing (not journaled), or None: a duplicate,
        one for no trade, or one stamped too far ahead (``ahead``: the admission's reason)."""
        status = "invalid" if ahead is not None else self.fill_status(fill)
        if status not in ("invalid", "duplicate", "unknown"):
            return None
        return self.unchanged(
            "fill",
            fill.intent_id,
            status,
            fill_id=fill.fill_id,
            ts=fill.timestamp.isoformat(),
            filled_risk_abs=fill.filled_risk_abs,
            committed_risk_abs=0.0,
            **({"message": ahead} if ahead else {}),
        )

    def cancel_refusal(self, intent_id: str) -> Outputs | None:
        """The record of a cancel that would change nothing (not journaled), or None."""
        status = self.cancel_status(intent_id)
        if status == "cancel":
            return None
        return self.unchanged("cancel", intent_id, status, released_risk_abs=0.0)

    def close_refusal(self, intent_id: str, risk_units: int | None = None) -> Outputs | None:
        """The record of a close that would change nothing or cannot apply (a partial amount
        above the position), not journaled; None when the close applies."""
        status = self.close_status(intent_id, risk_units)
        if status == "close":
            return None
        extra = {}
        if status == "invalid" and risk_units is not None:
            extra["message"] = self._close_problem(intent_id, risk_units)
        return self.unchanged(
            "close",
            intent_id,
            status,
            released_active_risk_abs=0.0,
            released_reserved_risk_abs=0.0,
            **extra,
        )

    def _close_problem(self, intent_id: str, risk_units: int) -> str:
        trade = self.book.get(intent_id)
        held = 0 if trade is None else trade.filled_units
        if held == 0:
            return f"close of {from_units(risk_units)} for {intent_id}: no position (no fill yet)"
        return (
            f"close of {from_units(risk_units)} for {intent_id} exceeds its position "
            f"of {from_units(held)}"
        )

    def unchanged(self, kind: str, intent_id: str, status: str, **fields: Any) -> Outputs:
        """The record of a fill, cancel or close that changes nothing (not journaled, no
        sequence number): a duplicate, or one for a trade that is unknown or already ended."""
        rec = lifecycle_record(kind, -1, self.book.get(intent_id), intent_id, self.state)
        rec["seq"] = None
        rec.update(status=status, before=rec["after"], **fields)
        if status == "unknown" and kind == "fill":
            rec["message"] = (
                f"fill {fields['fill_id']} for {intent_id}: no such trade; not absorbed"
            )
            return outputs([rec], [(WARNING, f"[RISK:FILL] {rec['message']}")])
        if status == "unknown":
            rec["message"] = f"{kind} for {intent_id}: no such trade"
        return outputs([rec], ())

    # --- fills, cancels, closes ------------------------------------------------------------
    def fill(self, fill: FillUpdate, *, teach: bool = False, build: bool = True) -> Outputs:
        """Commit one execution; the fill record (last) says how (``status``). Without
        ``build`` (a replay that only wants decisions) no fill record or warning is built."""
        seq, records, logs = self.begin(fill.timestamp, teach)
        book = self.book
        units = to_units(fill.filled_risk_abs)
        before = totals(self.state) if build else None
        iid = fill.intent_id
        trade = book.get(iid)
        status = "committed"
        committed = overfill = 0
        late: str | None = None
        if trade is None and book.ended_fill(iid, fill.fill_id):
            status = "duplicate"  # re-sent after its trade ended: no exposure
        elif trade is None:
            if iid in book.ended:
                # A fill after the trade was cancelled, expired or closed is real exposure at
                # the venue: absorb it as an orphan position that counts against every cap.
                late = book.ended[iid][0]
                trade = book.absorb(iid, fill.fill_id, units, seq, book.clock or fill.timestamp)
                status, committed, overfill = "late", units, units
            else:
                status = "unknown"
        elif trade.fills is not None and fill.fill_id in trade.fills:
            status = "duplicate"
        else:
            late = trade.late or trade.released  # the remainder was released: a late fill
            _from_reserved, overfill = book.fill(trade, fill.fill_id, units)
            committed = units
            if late is not None:
                status = "late"
        if not build:
            return self.settled(outputs(records, logs, None), seq, fill.timestamp, teach, own=False)
        rec = lifecycle_record("fill", seq, trade, iid, self.state)
        rec.update(
            fill_id=fill.fill_id,
            ts=fill.timestamp.isoformat(),
            status=status,
            filled_risk_abs=from_units(units),
            committed_risk_abs=from_units(committed),
            overfill_risk_abs=from_units(overfill),
            before=before,
        )
        if status == "late":
            rec["late_after"] = late
            rec["message"] = (
                f"fill {fill.fill_id} for {iid} arrived after the trade was {late}: "
                f"absorbed as an orphan position of {from_units(units)}"
            )
            logs.append((WARNING, f"[RISK:FILL] {rec['message']}"))
        elif status == "unknown":
            rec["message"] = f"fill {fill.fill_id} for {iid}: no such trade; not absorbed"
            logs.append((WARNING, f"[RISK:FILL] {rec['message']}"))
        elif overfill:
            logs.append(
                (
                    WARNING,
                    f"[RISK:FILL] {iid} fill {fill.fill_id} exceeds the reservation "
                    f"by {from_units(overfill)}",
                )
            )
        records.append(rec)
        return self.settled(outputs(records, logs, None), seq, fill.timestamp, teach)

    def invalid_fill(self, raw: Any, message: str) -> Outputs:
        """Report a fill that failed validation (status ``invalid``); nothing changes."""
        seq = self.next_seq()
        iid = raw.get("intent_id") if isinstance(raw, Mapping) else None
        rec = lifecycle_record("fill", seq, None, iid if isinstance(iid, str) else "", self.state)
        rec.update(status="invalid", message=message)
        return outputs([rec], [(WARNING, f"[RISK:FILL] invalid fill → REJECTED ({message})")], None)

    def cancel(
        self, intent_id: str, ts: datetime | None, *, teach: bool = False, build: bool = True
    ) -> Outputs:
        """Release the unfilled remainder of ``intent_id``'s reservation."""
        seq, records, logs = self.begin(ts, teach)
        book = self.book
        before = totals(self.state) if build else None
        trade = book.get(intent_id)
        released = 0
        if trade is None:
            status = book.ended_reason(intent_id) or "unknown"
        elif trade.released is not None:
            status = trade.released
        else:
            released = book.release(trade, "cancelled")
            status = "cancelled"
        if not build:
            return self.settled(outputs(records, logs, None), seq, ts, teach, own=False)
        rec = lifecycle_record("cancel", seq, trade, intent_id, self.state)
        rec.update(status=status, released_risk_abs=from_units(released), before=before)
        records.append(rec)
        return self.settled(outputs(records, logs, None), seq, ts, teach)

    def close(
        self,
        intent_id: str,
        ts: datetime | None,
        *,
        risk_units: int | None = None,
        pnl_units: int | None = None,
        teach: bool = False,
        build: bool = True,
    ) -> Outputs:
        """End ``intent_id``'s trade (release its active and reserved risk and its slot), or
        with ``risk_units`` below its position take only that much off (a partial close).
        ``pnl_units`` is the realized P&L the close reports."""
        seq, records, logs = self.begin(ts, teach)
        book = self.book
        before = totals(self.state) if build else None
        trade = book.get(intent_id)
        active = reserved = 0
        status = self.close_status(intent_id, risk_units)
        if trade is not None and status == "close":
            if risk_units is not None and risk_units < trade.filled_units:
                book.reduce(trade, risk_units)
                active, status = risk_units, "reduced"
            else:
                active, reserved = book.close(trade)
                status = "closed"
            if pnl_units is not None:
                book.realize(trade, pnl_units)
            if self.windows.by_kind:
                keys = {"strategy": trade.strategy, "symbol": trade.symbol, "cohort": trade.cohort}
                keys.update(trade.scopes or {})
                now = book.clock or ts
                assert now is not None
                self.windows.count("closes", now, keys)
                if pnl_units is not None and pnl_units < 0:
                    self.windows.count("losing_closes", now, keys)
        if not build:
            return self.settled(outputs(records, logs, None), seq, ts, teach, own=False)
        rec = lifecycle_record("close", seq, trade, intent_id, self.state)
        rec.update(
            status=status,
            released_active_risk_abs=from_units(active),
            released_reserved_risk_abs=from_units(reserved),
            before=before,
        )
        if status == "invalid" and risk_units is not None:
            rec["message"] = self._close_problem(intent_id, risk_units)
        if pnl_units is not None:
            rec["realized_pnl"] = from_units(pnl_units)
        if status == "reduced":
            assert trade is not None
            rec["remaining_active_risk_abs"] = from_units(trade.filled_units)
        if trade is not None and teach and status in ("closed", "reduced"):
            logs.append(
                (
                    INFO,
                    f"[RISK:STRATEGY] {trade.strategy} {trade.symbol} {status} {intent_id} → "
                    f"RELEASED active={from_units(active)} reserved={from_units(reserved)}",
                )
            )
        records.append(rec)
        return self.settled(outputs(records, logs, None), seq, ts, teach)

    def tick(self, ts: datetime, *, teach: bool = False) -> Outputs:
        """Move the logical clock; the records are the expiries it caused."""
        seq = self.next_seq()
        records: list[Record] = []
        logs: list[Log] = []
        self.advance(ts, seq, records, logs, teach)
        return self.settled(outputs(records, logs, None), seq, ts, teach, own=False)


__all__ = ["Lifecycle"]
