"""The reset of a latch: the one way, besides the trading-day rollover, a latch clears.

A latch (``latches:``) is set by the core after any event whose outcome makes its
`when` hold (:meth:`~.kernel.Kernel.finish`) and stays set even if the condition
clears. An operator clears it with ``reset_latch(name, reason)``: an event of its
own, journaled with its reason and replayed exactly. A reset that would change
nothing is refused and never journaled: the latch is not set, or its `when`
still holds (it would be set again by the same event).
"""

from __future__ import annotations

from ..diagnostics import suggest
from .events import EventError, Record, ResetLatchEvent
from .kernel import INFO, Kernel, Options, Outputs, Ruling, admitted, outputs

_RESET = Ruling(None, "reset")  # what lets a reset through


class Latching:
    """Resetting latches (a part of the core, over its :class:`~.kernel.Kernel`)."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    def latch_status(self, name: str) -> str:
        """``reset`` when the latch can be reset; else why not: ``not_set`` or
        ``still_holds``. EventError when the policy declares no such latch."""
        policy = self.k.policy
        declared = policy.latch_names
        if name not in declared:
            hint = suggest(name, declared)
            raise EventError(
                f"policy {policy.name} declares no latch {name!r}" + (f" ({hint})" if hint else "")
            )
        state = self.k.state
        if name not in state.latches:
            return "not_set"
        skip = [n for n in declared if n != name]
        if policy.latches_met(state, skip=skip):
            return "still_holds"
        return "reset"

    def refusal(self, event: ResetLatchEvent, ahead: str | None, teach: bool) -> Ruling:
        """A reset that would change nothing is answered with its record, not journaled."""
        if ahead is not None:
            admitted(ahead)
        name = event.name
        status = self.latch_status(name)
        if status == "reset":
            return _RESET
        rec: Record = {"kind": "latch", "seq": None, "name": name, "status": status}
        rec["message"] = (
            f"latch {name} is not set"
            if status == "not_set"
            else f"the `when` of latch {name} still holds: it would be set again at once"
        )
        return Ruling(outputs([rec], ()), status)

    def step(self, event: ResetLatchEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Clear the latch (a reset the operator journaled with its reason)."""
        k = self.k
        name, reason, ts = event.name, event.reason, event.timestamp
        step = k.begin(ts, opts.teach)
        status = self.latch_status(name)  # after the clock: a rollover may have cleared it
        if status == "reset":
            k.state.clear_latch(name)
        rec: Record = {
            "kind": "latch",
            "seq": step.seq,
            "ts": ts and k.iso_of(ts),
            "name": name,
            "status": status,
            "reason": reason,
        }
        if opts.teach and status == "reset":
            step.logs.append((INFO, f"[RISK:LATCH] {name} → RESET ({reason or '-'})"))
        step.records.append(rec)
        env, push = k.after_mode_change(False)  # a mode may read the latch
        return k.finish(step, env if push else None)


__all__ = ["Latching"]
