"""The pure, deterministic control core: ``(state, event) -> (state, records)``.

:class:`ControlCore` is the portfolio authority with every side effect taken
out: no file or network I/O, no threads or locks, no wall clock, no logging,
no randomness, no iteration over hash-ordered sets. Each method applies one
event to the state and returns :class:`Outputs`: the records it produced (the
expiries it caused first), the teaching lines to log (when asked for) and the
envelope to broadcast (when the mode changed, an override was set or a policy
loaded). The shells decide what to do with them: the in-process
:class:`~.controller.PortfolioController` (lock, journal, sinks, subscribers,
logging), :func:`~.replay.replay` and the Temporal workflow.

Trade lifecycle
---------------
- An approved intent that adds risk *reserves* its approved risk and counts as
  one live trade for its strategy, symbol, cohort and the portfolio. A
  risk-reducing intent (``side: flat`` or ``reduce_only``) is decided like any
  other but reserves nothing and takes no trade slot. An approved intent of
  zero risk reserves nothing but still takes a trade slot (it is a trade).
- A *fill* names the ``intent_id``, its own ``fill_id`` and ``filled_risk_abs``,
  the risk of **this** execution (incremental). It moves that amount from
  reserved to active; the first fill makes the trade an open position. A
  repeated ``fill_id`` is a no-op (``duplicate``); a fill beyond the
  reservation is committed in full and flagged (``overfill_risk_abs``). A fill
  after the trade was cancelled, expired or closed is real exposure at the
  venue: it is absorbed as an orphan position (status ``late``, ``late_after``)
  that counts against every cap until it is closed. A fill for an intent never
  seen (or ended too long ago to attribute) is reported, not absorbed. An ended
  trade keeps its fill ids (for ENDED_MEMORY trades and ENDED_RETENTION of event
  time): a fill id re-sent after it ended is a ``duplicate``, a new one a late orphan.
- Intent ids must be unique: an id that names a live trade, a remembered
  ended one or one of the last ``SEEN_MEMORY`` intents decided is refused (it
  could otherwise pick up a late fill of the trade it named).
- ``cancel`` releases the unfilled remainder; a trade with no fill ends there.
  ``close`` ends a trade, releasing its active risk, any remainder and its slot.
- Reservation TTL runs on the events' own timestamps: the clock is the latest
  timestamp seen and never moves back. A reservation made while the clock
  reads ``T`` is live on ``[T, T + ttl)``; the first event stamped ``T + ttl`` or
  later releases its remainder *before* that event is processed.

Modes
-----
The policy's drawdown tiers select a mode from the equity; an override (set or
cleared with a ``mode`` event) applies when stricter. Every decision records
which one and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..engine.policy import Policy
from . import snapshot as snapshots
from .allocation import DUPLICATE_INTENT_CODE, INVALID_INTENT_CODE, Allocation
from .base import INFO, NOTHING, Log, Outputs, outputs, policy_ref_of, ttl_of
from .events import (
    EventError,
    Record,
    check_equity,
    check_mode,
    check_reason,
    close_amounts,
    field,
    optional_timestamp,
    parse_fill,
    parse_intent,
    parse_timestamp,
    policy_from_event,
)
from .latching import Latching
from .lifecycle import Lifecycle


class ControlCore(Allocation, Lifecycle, Latching):
    """The portfolio authority as a pure state machine over one :class:`Policy`.

    ``seq`` numbers events: every event applied takes the next number (an opening
    policy load counts as event 0, so the first event after it is 1).
    """

    # --- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The exact snapshot of this core (see :mod:`.snapshot`)."""
        return snapshots.take(self)

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> ControlCore:
        """The core a :meth:`snapshot` was taken from, exactly."""
        core = snapshots.restore(dict(data), cls)
        assert isinstance(core, cls)
        return core

    # --- equity, modes, policies -----------------------------------------------------------
    def equity(
        self,
        equity: float,
        peak_equity: float | None,
        ts: datetime | None,
        *,
        teach: bool = False,
    ) -> Outputs:
        """Track equity, peak and drawdown; a tier change broadcasts the new envelope."""
        check_equity(equity, peak_equity)
        seq = self.next_seq()
        records: list[Record] = []
        logs: list[Log] = []
        self.advance(ts, seq, records, logs, teach)
        before_mode = self.mode_info()
        self.state.set_equity(float(equity), None if peak_equity is None else float(peak_equity))
        env, push = self.after_mode_change(False)
        state = self.state
        rec: Record = {
            "kind": "equity",
            "seq": seq,
            "ts": ts and ts.isoformat(),
            "equity": state.equity,
            "peak_equity": state.peak_equity,
            "drawdown": state.drawdown,
            "mode_before": before_mode.name,
            "mode": env.portfolio_mode,
            "envelope": env.model_dump(mode="json"),
        }
        if before_mode.name != env.portfolio_mode and teach:
            logs.append(
                (
                    INFO,
                    f"[RISK:MODE] drawdown={round(state.drawdown, 6)} → "
                    f"{env.portfolio_mode.upper()} ({self.mode_info().reason})",
                )
            )
        records.append(rec)
        return self.settled(outputs(records, logs, env if push else None), seq, ts, teach)

    def set_mode(
        self, mode: str | None, reason: str, ts: datetime | None, *, teach: bool = False
    ) -> Outputs:
        """Set (or with ``None`` clear) the override; the envelope is always broadcast."""
        check_mode(mode)
        self.check_mode(mode)
        seq = self.next_seq()
        records: list[Record] = []
        logs: list[Log] = []
        self.advance(ts, seq, records, logs, teach)
        before = self.mode_info()
        self.state.set_override(mode, reason or None)
        env, _push = self.after_mode_change(True)
        after = self.mode_info()
        if teach:
            logs.append(
                (
                    INFO,
                    f"[RISK:MODE] override={mode} ({reason or '-'}) → {env.portfolio_mode.upper()}",
                )
            )
        records.append(
            {
                "kind": "mode",
                "seq": seq,
                "ts": ts and ts.isoformat(),
                "override": mode,
                "reason": reason,
                "mode_before": before.name,
                "mode": after.name,
                "mode_source": after.source,
                "mode_reason": after.reason,
                "envelope": env.model_dump(mode="json"),
            }
        )
        return self.settled(outputs(records, logs, env), seq, ts, teach)

    def reload_refusal(self, policy: Policy) -> str | None:
        """Why a live shell must not put ``policy`` in force (None: it may). Pure.

        Changed content must carry a higher version (a rollback is a new, higher version of
        the old text), and an override in force must name a mode the new policy declares.
        The same content again is a no-op (``"unchanged"``)."""
        current = self.policy
        if policy.content_hash == current.content_hash:
            return "unchanged"
        if policy.version <= current.version:
            return (
                f"policy {policy.name} v{policy.version} does not go up from "
                f"v{current.version}: changed content needs a higher version"
            )
        override = self.state.mode_override
        if override is not None and override not in policy.declared_modes:
            return (
                f"the override `{override}` is in force and policy {policy.name} "
                f"v{policy.version} does not declare it: clear the override first"
            )
        return None

    def reload_record(self, path: str, error: str | None) -> Record:
        """The record of a reload that changes nothing: the same content again (``error``
        None), or one refused for ``error``; the policy in force stays."""
        if error is None:
            return {
                "kind": "reload",
                "seq": None,
                "ok": True,
                "unchanged": True,
                "path": path,
                "policy": dict(self.policy_ref),
            }
        return {
            "kind": "reload",
            "ok": False,
            "path": path,
            "error": error,
            "policy": dict(self.policy_ref),
        }

    def use_policy(self, policy: Policy, *, teach: bool = False) -> Outputs:
        """Put ``policy`` in force, keeping the live state; the envelope is broadcast.

        Live trades whose cohort the new policy defines differently move to it, exposure
        and all, in this same step (a cohort cap must see what its members hold)."""
        seq = self.next_seq()
        old = self.policy_ref
        self.policy = policy
        self.policy_ref = policy_ref_of(policy)
        self.ttl = ttl_of(policy)
        self.days = self.days.follow(policy.calendar, self.book.clock)
        self.windows = self.windows.follow(policy.windows)
        moved = []
        for trade in self.book.live():
            cohort = policy.cohort_of(trade.symbol, trade.bucket)
            if cohort != trade.cohort:
                moved.append({"intent_id": trade.intent_id, "from": trade.cohort, "to": cohort})
                self.book.move_cohort(trade, cohort)
            scopes = policy.scopes_of(trade.field)
            if scopes != trade.scopes:
                self.book.move_scopes(trade, scopes)
        dropped = [n for n in self.state.latches if n not in policy.latch_names]
        for name in dropped:  # a latch the new policy does not declare cannot stay set
            self.state.clear_latch(name)
        env, _push = self.after_mode_change(True)
        logs: list[Log] = []
        if teach:
            logs.append(
                (
                    INFO,
                    f"[RISK:POLICY] {old['name']} v{old['version']} → {policy.name} v{policy.version}",
                )
            )
        rec: Record = {
            "kind": "reload",
            "seq": seq,
            "ok": True,
            "path": policy.path,
            "previous": old,
            "policy": dict(self.policy_ref),
            "mode": env.portfolio_mode,
        }
        if moved:
            rec["moved"] = moved
        if dropped:
            rec["latches_dropped"] = dropped
        return self.settled(outputs([rec], logs, env), seq, None, teach)

    # --- events as dicts -------------------------------------------------------------------
    def apply(
        self,
        event: Mapping[str, Any],
        *,
        teach: bool = False,
        read: Callable[[str], bytes] | None = None,
        records: bool = True,
    ) -> Outputs:
        """Apply one event dict (see :mod:`.events`). An intent's decision record is the
        last record. ``read`` resolves a policy event that carries no text. Without
        ``records``, fills, cancels and closes build no record (a replay of decisions)."""
        kind = event.get("type")
        if kind == "intent":
            try:
                intent = parse_intent(event, self.policy.intent_model)
            except ValueError as exc:
                return self.invalid_intent(event, str(exc), teach=teach)[2]
            return self.request(intent, build=True, teach=teach, decide=False)[2]
        if kind == "fill":
            try:
                fill = parse_fill(event)
            except ValueError as exc:
                return self.invalid_fill(event, str(exc))
            return self.fill(fill, teach=teach, build=records)
        if kind == "cancel":
            return self.cancel(
                field(event, "intent_id"),
                optional_timestamp(event.get("timestamp")),
                teach=teach,
                build=records,
            )
        if kind == "close":
            risk_units, pnl_units = close_amounts(event.get("risk_abs"), event.get("realized_pnl"))
            return self.close(
                field(event, "intent_id"),
                optional_timestamp(event.get("timestamp")),
                risk_units=risk_units,
                pnl_units=pnl_units,
                teach=teach,
                build=records,
            )
        if kind == "equity":
            return self.equity(
                field(event, "equity", (int, float)),
                event.get("peak_equity"),
                optional_timestamp(event.get("timestamp")),
                teach=teach,
            )
        if kind == "mode":
            return self.set_mode(
                event.get("mode"),
                event.get("reason") or "",
                optional_timestamp(event.get("timestamp")),
                teach=teach,
            )
        if kind == "tick":
            return self.tick(
                parse_timestamp(field(event, "timestamp", (str, datetime))), teach=teach
            )
        if kind == "policy":
            return self.use_policy(policy_from_event(event, read), teach=teach)
        if kind == "reset_latch":
            return self.reset_latch(
                field(event, "name"),
                check_reason(event.get("reason") or ""),
                optional_timestamp(event.get("timestamp")),
                teach=teach,
            )
        raise EventError(f"unknown event type {kind!r}")


__all__ = [
    "DUPLICATE_INTENT_CODE",
    "INVALID_INTENT_CODE",
    "NOTHING",
    "ControlCore",
    "Log",
    "Outputs",
]
