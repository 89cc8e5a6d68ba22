"""The lifecycle steps of the core: fills, cancels and closes.

Each has a refusal (pure: what a live shell answers without journaling, when the
event would change nothing) and a step (expire what its timestamp passes, move
exact integer amounts through the book, return its record last: ``status`` says
what happened, ``committed``, ``duplicate``, ``cancelled``, ``closed``, or why
nothing did). The refusal's status is the step's finding: it is computed once,
and again only when the clock's move released something before the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..engine.contracts import RISK_SCALE, from_units, to_units
from .book import Trade
from .events import CancelEvent, CloseEvent, FillEvent, FillUpdate, InvalidFillEvent, Record
from .kernel import (
    INFO,
    WARNING,
    Kernel,
    Options,
    Outputs,
    Ruling,
    admitted,
    outputs,
)
from .records import lifecycle_record, totals

# What lets a fill, cancel or close through, by its status (built once, not per event).
_THROUGH = {status: Ruling(None, status) for status in ("commit", "late", "cancel", "close")}
_CANCEL = _THROUGH["cancel"]


class Lifecycle:
    """Fills, cancels and closes (a part of the core, over its :class:`~.kernel.Kernel`)."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    # --- what would the event change? ----------------------------------------------------
    def fill_status(self, fill: FillUpdate) -> str:
        """``commit`` (a live trade's new fill), ``late`` (absorbed as exposure after the trade
        ended or released its remainder), ``duplicate`` or ``unknown`` (nothing changes)."""
        return self._fill_status(fill, self.k.book.get(fill.intent_id))

    def _fill_status(self, fill: FillUpdate, trade: Trade | None) -> str:
        """:meth:`fill_status`, ``trade`` being the book's live trade of the fill's intent."""
        if trade is None:
            book = self.k.book
            if book.ended_fill(fill.intent_id, fill.fill_id):
                return "duplicate"  # re-sent after its trade ended: no exposure
            return "late" if fill.intent_id in book.ended else "unknown"
        if trade.fills is not None and fill.fill_id in trade.fills:
            return "duplicate"
        return "late" if trade.released else "commit"

    def cancel_status(self, intent_id: str) -> str:
        """``cancel`` when a reservation remainder is live; else why nothing would change."""
        trade = self.k.book.get(intent_id)
        if trade is None:
            return self.k.book.ended_reason(intent_id) or "unknown"
        return trade.released or "cancel"

    def close_status(self, intent_id: str, risk_units: int | None = None) -> str:
        """``close`` when the trade is live (and a partial amount fits its position); else
        why nothing would change (``invalid``: an amount the position cannot give)."""
        trade = self.k.book.get(intent_id)
        if trade is None:
            return self.k.book.ended_reason(intent_id) or "unknown"
        if risk_units is not None and risk_units > trade.filled_units:
            return "invalid"
        return "close"

    # --- refusals (pure; shells journal only what they let through) -----------------------
    def fill_refusal(self, event: FillEvent, ahead: str | None, teach: bool) -> Ruling:
        """A duplicate, one for no trade, or one stamped too far ahead (``ahead``: the
        admission's reason) is answered with its record; else the status is the finding."""
        fill = event.fill
        status = "invalid" if ahead is not None else self.fill_status(fill)
        if status not in ("invalid", "duplicate", "unknown"):
            return _THROUGH[status]
        out = self.unchanged(
            "fill",
            fill.intent_id,
            status,
            fill_id=fill.fill_id,
            ts=fill.timestamp.isoformat(),
            filled_risk_abs=fill.filled_risk_abs,
            committed_risk_abs=0.0,
            **({"message": ahead} if ahead else {}),
        )
        return Ruling(out, status)

    def invalid_fill_refusal(
        self, event: InvalidFillEvent, ahead: str | None, teach: bool
    ) -> Ruling:
        """A fill that failed validation: reported (status ``invalid``), never journaled."""
        raw = event.raw
        iid = raw.get("intent_id") if isinstance(raw, Mapping) else None
        iid = iid if isinstance(iid, str) else ""
        return Ruling(self.unchanged("fill", iid, "invalid", message=event.message), "invalid")

    def cancel_refusal(self, event: CancelEvent, ahead: str | None, teach: bool) -> Ruling:
        """A cancel with no live remainder changes nothing: answered, not journaled."""
        if ahead is not None:
            admitted(ahead)
        trade = self.k.book.trades.get(event.intent_id)
        if trade is not None and trade.released is None:  # (cancel_status's common case)
            return _CANCEL
        status = self.cancel_status(event.intent_id)
        if status == "cancel":
            return _THROUGH[status]
        return Ruling(
            self.unchanged("cancel", event.intent_id, status, released_risk_abs=0.0), status
        )

    def close_refusal(self, event: CloseEvent, ahead: str | None, teach: bool) -> Ruling:
        """A close of no live trade, or of more than its position: answered, not journaled."""
        if ahead is not None:
            admitted(ahead)
        intent_id, risk_units = event.intent_id, event.risk_units
        status = self.close_status(intent_id, risk_units)
        if status == "close":
            return _THROUGH[status]
        extra = {}
        if status == "invalid" and risk_units is not None:
            extra["message"] = self._close_problem(intent_id, risk_units)
        out = self.unchanged(
            "close",
            intent_id,
            status,
            released_active_risk_abs=0.0,
            released_reserved_risk_abs=0.0,
            **extra,
        )
        return Ruling(out, status)

    def _close_problem(self, intent_id: str, risk_units: int) -> str:
        trade = self.k.book.get(intent_id)
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
        rec = lifecycle_record(kind, -1, self.k.book.get(intent_id), intent_id, self.k.state)
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

    # --- steps ---------------------------------------------------------------------------
    def fill(self, event: FillEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Commit one execution; the fill record (last) says how (``status``). Without
        ``opts.records`` (a replay that only wants decisions) no record or warning is built."""
        k = self.k
        fill = event.fill
        step = k.begin(fill.timestamp, opts.teach)
        seq, records, logs = step.seq, step.records, step.logs
        build = opts.records
        book = k.book
        units = to_units(fill.filled_risk_abs)
        before = totals(k.state) if build else None
        iid = fill.intent_id
        trade = book.get(iid)
        found = None if ruling is None or step.moved else ruling.finding
        status = found or self._fill_status(fill, trade)
        committed = overfill = 0
        moved: int | None = None  # the notional the fill moved (None: the trade holds none)
        late: str | None = None
        if trade is None and status == "late":
            # A fill after the trade was cancelled, expired or closed is real exposure at
            # the venue: absorb it as an orphan position that counts against every cap.
            late = book.ended[iid][0]
            trade, moved = book.absorb(iid, fill.fill_id, units, seq, book.clock or fill.timestamp)
            committed, overfill = units, units
            if fill.price is not None:
                book.priced_fill(trade, moved or 0, fill.price)
        elif trade is not None and status in ("commit", "late"):
            late = trade.late or trade.released  # the remainder was released: a late fill
            _from_reserved, overfill, moved = book.fill(trade, fill.fill_id, units)
            if fill.price is not None:
                book.priced_fill(trade, moved or 0, fill.price)
            committed = units
            status = "late" if late is not None else "committed"
        if committed and k.windows.by_kind:
            assert trade is not None
            took = {"risk": committed}
            if fill.fee is not None:
                took["fee"] = to_units(fill.fee)
            if moved is not None:
                took["notional"] = moved
            count_trade(self.k, "fills", trade, fill.timestamp, None, took)
        if not build:
            return k.finish(step, own=False)
        rec = lifecycle_record("fill", seq, trade, iid, k.state)
        rec.update(
            fill_id=fill.fill_id,
            ts=fill.timestamp.isoformat(),
            status=status,
            filled_risk_abs=from_units(units),
            committed_risk_abs=from_units(committed),
            overfill_risk_abs=from_units(overfill),
            before=before,
        )
        if fill.fee is not None:
            rec["fee"] = fill.fee
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
        return k.finish(step)

    def invalid_fill(
        self, event: InvalidFillEvent, ruling: Ruling | None, opts: Options
    ) -> Outputs:
        """A fill that failed validation, journaled by an older version: numbered, reported
        (status ``invalid``); nothing changes."""
        k = self.k
        seq = k.skip()
        raw = event.raw
        iid = raw.get("intent_id") if isinstance(raw, Mapping) else None
        rec = lifecycle_record("fill", seq, None, iid if isinstance(iid, str) else "", k.state)
        rec.update(status="invalid", message=event.message)
        return outputs(
            [rec], [(WARNING, f"[RISK:FILL] invalid fill → REJECTED ({event.message})")], None
        )

    def cancel(self, event: CancelEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Release the unfilled remainder of the trade's reservation."""
        k = self.k
        intent_id = event.intent_id
        step = k.begin(event.timestamp, opts.teach)
        book = k.book
        build = opts.records
        before = totals(k.state) if build else None
        status = (None if ruling is None or step.moved else ruling.finding) or self.cancel_status(
            intent_id
        )
        trade = book.get(intent_id)
        released = 0
        if trade is not None and status == "cancel":
            released = book.release(trade, "cancelled")
            status = "cancelled"
            if k.windows.by_kind:
                count_trade(k, "cancels", trade, event.timestamp)
        if not build:
            return k.finish(step, own=False)
        if trade is not None:  # (lifecycle_record + update written out: a hot path)
            rec: Record = {
                "kind": "cancel",
                "seq": step.seq,
                "intent_id": trade.intent_id,
                "strategy": trade.strategy,
                "symbol": trade.symbol,
                "cohort": trade.cohort,
                "after": totals(k.state),
                "status": status,
                "released_risk_abs": released / RISK_SCALE,
                "before": before,
            }
        else:
            rec = lifecycle_record("cancel", step.seq, trade, intent_id, k.state)
            rec.update(status=status, released_risk_abs=from_units(released), before=before)
        step.records.append(rec)
        return k.finish(step)

    def close(self, event: CloseEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """End the trade (release its active and reserved risk and its slot), or with
        ``risk_units`` below its position take only that much off (a partial close).
        ``pnl_units`` is the realized P&L the close reports."""
        k = self.k
        intent_id, risk_units, pnl_units = event.intent_id, event.risk_units, event.pnl_units
        ts = event.timestamp
        step = k.begin(ts, opts.teach)
        book = k.book
        build = opts.records
        before = totals(k.state) if build else None
        trade = book.get(intent_id)
        active = reserved = 0
        taken: int | None = None  # the filled notional it took off (None: the trade held none)
        status = (None if ruling is None or step.moved else ruling.finding) or self.close_status(
            intent_id, risk_units
        )
        if trade is not None and status == "close":
            if risk_units is not None and risk_units < trade.filled_units:
                taken = book.reduce(trade, risk_units)
                active, status = risk_units, "reduced"
            else:
                active, reserved, taken = book.close(trade)
                status = "closed"
            if pnl_units is not None:
                book.realize(trade, pnl_units)
            if k.windows.by_kind:
                took = {"risk": active}
                if pnl_units is not None:
                    took["realized_pnl"] = pnl_units
                if taken is not None:
                    took["notional"] = taken
                count_trade(k, "closes", trade, ts, event.reason, took)
                if pnl_units is not None and pnl_units < 0:
                    count_trade(k, "losing_closes", trade, ts, event.reason, took)
        if not build:
            return k.finish(step, own=False)
        rec = lifecycle_record("close", step.seq, trade, intent_id, k.state)
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
        if event.reason is not None:
            rec["reason"] = event.reason
        if status == "reduced":
            assert trade is not None
            rec["remaining_active_risk_abs"] = from_units(trade.filled_units)
        if trade is not None and opts.teach and status in ("closed", "reduced"):
            step.logs.append(
                (
                    INFO,
                    f"[RISK:STRATEGY] {trade.strategy} {trade.symbol} {status} {intent_id} → "
                    f"RELEASED active={from_units(active)} reserved={from_units(reserved)}",
                )
            )
        step.records.append(rec)
        return k.finish(step)


def count_trade(
    k: Kernel,
    kind: str,
    trade: Trade,
    ts: datetime | None,
    reason: str | None = None,
    quantities: dict[str, int] | None = None,
) -> None:
    """The rolling windows of ``kind`` count one event of ``trade`` (its strategy, symbol,
    cohort and scopes) at the event clock, with its ``quantities`` in micro-units."""
    keys = {"strategy": trade.strategy, "symbol": trade.symbol, "cohort": trade.cohort}
    keys.update(trade.scopes or {})
    now = k.book.clock or ts
    assert now is not None
    k.windows.count(kind, now, keys, reason, quantities)


__all__ = ["Lifecycle", "count_trade"]
