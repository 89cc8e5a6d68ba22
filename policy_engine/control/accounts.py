"""The ``balance`` event's part of the core: a currency's balance as the account reports it.

A balance for a currency the policy in force does not declare (``currencies:``) changes
nothing a rule could read: it is answered (``status: undeclared``) and not journaled, so the
state holds only the currencies the policy reads. Otherwise the step records the reported
``free`` and ``locked`` amounts (exact micro-units; :mod:`.balances`), and its record shows
them with what this portfolio's reservations lock of the currency (``reserved_lock``) and
the balance the rules read (``free_after_locks``).
"""

from __future__ import annotations

from ..engine.contracts import from_units
from .balances import BalanceEvent, units_of
from .events import Record
from .kernel import INFO, Kernel, Options, Outputs, Ruling, admitted, outputs


class Accounts:
    """Balances per currency (a part of the core, over its :class:`~.kernel.Kernel`)."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    def refusal(self, event: BalanceEvent, ahead: str | None, teach: bool) -> Ruling:
        """A currency the policy does not read: answered, not journaled."""
        admitted(ahead)
        if event.currency in self.k.policy.checked.spec.currencies:
            return Ruling(None, "balance")
        rec = self._record(event, None, "undeclared")
        rec["message"] = (
            f"balance of {event.currency}: policy {self.k.policy.name} reads no such currency "
            "(declare it under `currencies:`)"
        )
        return Ruling(outputs([rec], ()), "undeclared")

    def step(self, event: BalanceEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Record the currency's reported balance (a reload that dropped the currency since
        the refusal, or a replay: still recorded; the rules just no longer read it)."""
        k = self.k
        step = k.begin(event.timestamp, opts.teach)
        k.state.balances.reported[event.currency] = units_of(event)
        k.state.version += 1
        rec = self._record(event, step.seq, "recorded")
        if opts.teach:
            step.logs.append(
                (
                    INFO,
                    f"[RISK:BALANCE] {event.currency} free={event.free} locked={event.locked} "
                    f"(reservations lock {rec['reserved_lock']})",
                )
            )
        step.records.append(rec)
        return k.finish(step)

    def _record(self, event: BalanceEvent, seq: int | None, status: str) -> Record:
        balances = self.k.state.balances
        rec: Record = {"kind": "balance", "seq": seq, "currency": event.currency}
        rec["ts"] = None if event.timestamp is None else event.timestamp.isoformat()
        rec.update(status=status, free=float(event.free), locked=float(event.locked))
        rec["reserved_lock"] = from_units(balances.locks.get(event.currency, 0))
        rec["free_after_locks"] = balances.read(event.currency, "free")
        return rec


__all__ = ["Accounts"]
