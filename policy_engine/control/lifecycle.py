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

    def begin(self, ts: datetime | None, teach: bool) -> tuple[int, list[Record], list[Log]]:
        """Number the event and advance the clock: (seq, records so far, logs so far)."""
        seq = self.seq
        self.seq = seq + 1
        records: list[Record] = []
        logs: list[Log] = []
        if ts is not None:
            expired = self.book.advance(ts)
            if expired:
                self.expire(expired, seq, records, logs, teach)
        return seq, records, logs

    # --- fills, cancels, closes ------------------------------------------------------------
    def fill(self, fill: FillUpdate, *, teach: bool = False, build: bool = True) -> Outputs:
        """Commit one execution; the fill record (last) says how (``status``). Without
        ``build`` (a replay that only wants decisions) no fill record or warning is built."""
        seq = self.seq
        self.seq = seq + 1
        records: list[Record] = []
        logs: list[Log] = []
        book = self.book
        expired = book.advance(fill.timestamp)
        if expired:
            self.expire(expired, seq, records, logs, teach)
        units = to_units(fill.filled_risk_abs)
        before = totals(self.state) if build else None
        trade = book.get(fill.intent_id)
        status = "committed"
        committed = overfill = 0
        if trade is None:
            status = book.ended_reason(fill.intent_id) or "unknown"
        elif trade.released is not None:
            status = trade.released
        elif trade.fills is not None and fill.fill_id in trade.fills:
            status = "duplicate"
        else:
            _from_reserved, overfill = book.fill(trade, fill.fill_id, units)
            committed = units
        if not build:
            return outputs(records, logs, None)
        rec = lifecycle_record("fill", seq, trade, fill.intent_id, self.state)
        rec.update(
            fill_id=fill.fill_id,
            ts=fill.timestamp.isoformat(),
            status=status,
            filled_risk_abs=from_units(units),
            committed_risk_abs=from_units(committed),
            overfill_risk_abs=from_units(overfill),
            before=before,
        )
        if status not in ("committed", "duplicate"):
            rec["message"] = (
                f"fill {fill.fill_id} for {fill.intent_id}: no live reservation ({status}); "
                "not absorbed"
            )
            logs.append((WARNING, f"[RISK:FILL] {rec['message']}"))
        elif overfill:
            logs.append(
                (
                    WARNING,
                    f"[RISK:FILL] {fill.intent_id} fill {fill.fill_id} exceeds the reservation "
                    f"by {from_units(overfill)}",
                )
            )
        records.append(rec)
        return outputs(records, logs, None)

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
            return outputs(records, logs, None)
        rec = lifecycle_record("cancel", seq, trade, intent_id, self.state)
        rec.update(status=status, released_risk_abs=from_units(released), before=before)
        records.append(rec)
        return outputs(records, logs, None)

    def close(
        self, intent_id: str, ts: datetime | None, *, teach: bool = False, build: bool = True
    ) -> Outputs:
        """End ``intent_id``'s trade: release its active and reserved risk and its slot."""
        seq, records, logs = self.begin(ts, teach)
        book = self.book
        before = totals(self.state) if build else None
        trade = book.get(intent_id)
        active = reserved = 0
        if trade is None:
            status = book.ended_reason(intent_id) or "unknown"
        else:
            active, reserved = book.close(trade)
            status = "closed"
        if not build:
            return outputs(records, logs, None)
        rec = lifecycle_record("close", seq, trade, intent_id, self.state)
        rec.update(
            status=status,
            released_active_risk_abs=from_units(active),
            released_reserved_risk_abs=from_units(reserved),
            before=before,
        )
        if trade is not None and teach:
            logs.append(
                (
                    INFO,
                    f"[RISK:STRATEGY] {trade.strategy} {trade.symbol} closed {intent_id} → "
                    f"RELEASED active={from_units(active)} reserved={from_units(reserved)}",
                )
            )
        records.append(rec)
        return outputs(records, logs, None)

    def tick(self, ts: datetime, *, teach: bool = False) -> Outputs:
        """Move the logical clock; the records are the expiries it caused."""
        seq = self.next_seq()
        records: list[Record] = []
        logs: list[Log] = []
        self.advance(ts, seq, records, logs, teach)
        return outputs(records, logs, None)


__all__ = ["Lifecycle"]
