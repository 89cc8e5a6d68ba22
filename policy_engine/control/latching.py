"""The reset of a latch: the one way, besides the trading-day rollover, a latch clears.

A latch (``latches:``) is set by the core after any event whose outcome makes its
`when` hold (:meth:`~.base.CoreBase.settled`) and stays set even if the condition
clears. An operator clears it with ``reset_latch(name, reason)``: an event of its
own, journaled with its reason and replayed exactly. A reset that would change
nothing is refused and never journaled: the latch is not set, or its `when`
still holds (it would be set again by the same event).
"""

from __future__ import annotations

from datetime import datetime

from ..diagnostics import suggest
from .base import INFO, CoreBase, Outputs, outputs
from .events import EventError, Record


class Latching(CoreBase):
    """Resetting latches."""

    def latch_status(self, name: str) -> str:
        """``reset`` when the latch can be reset; else why not: ``not_set`` or
        ``still_holds``. EventError when the policy declares no such latch."""
        declared = self.policy.latch_names
        if name not in declared:
            hint = suggest(name, declared)
            raise EventError(
                f"policy {self.policy.name} declares no latch {name!r}"
                + (f" ({hint})" if hint else "")
            )
        state = self.state
        if name not in state.latches:
            return "not_set"
        skip = [n for n in declared if n != name]
        if self.policy.latches_met(state, skip=skip):
            return "still_holds"
        return "reset"

    def latch_refusal(self, name: str) -> Outputs | None:
        """The record of a reset that would change nothing (not journaled), or None."""
        status = self.latch_status(name)
        if status == "reset":
            return None
        rec: Record = {"kind": "latch", "seq": None, "name": name, "status": status}
        rec["message"] = (
            f"latch {name} is not set"
            if status == "not_set"
            else f"the `when` of latch {name} still holds: it would be set again at once"
        )
        return outputs([rec], ())

    def reset_latch(
        self, name: str, reason: str, ts: datetime | None, *, teach: bool = False
    ) -> Outputs:
        """Clear latch ``name`` (a reset the operator journaled with ``reason``)."""
        seq, records, logs = self.begin(ts, teach)
        status = self.latch_status(name)
        if status == "reset":
            self.state.clear_latch(name)
        rec: Record = {
            "kind": "latch",
            "seq": seq,
            "ts": ts and self.iso_of(ts),
            "name": name,
            "status": status,
            "reason": reason,
        }
        if teach and status == "reset":
            logs.append((INFO, f"[RISK:LATCH] {name} → RESET ({reason or '-'})"))
        records.append(rec)
        env, push = self.after_mode_change(False)  # a mode may read the latch
        return self.settled(outputs(records, logs, env if push else None), seq, ts, teach)


__all__ = ["Latching"]
