"""The in-process portfolio controller: the pure core behind a lock, with its collaborators.

:class:`PortfolioController` is the embedded default control plane. It owns a
:class:`~.core.ControlCore` and adds exactly what the core leaves out, each
collaborator injected rather than reached into: a re-entrant lock (thread
safety), a journal sink (every accepted event, written before it is applied),
a record sink (every record), the subscribers that receive envelope
broadcasts, the ``policy_engine`` logger (teaching lines), and policy file
watchers. Its method names follow the design note: ``request_allocation``,
``on_fill_update``, ``broadcast_constraints``, ``set_portfolio_mode``,
``get_portfolio_state``.

The event format and the trade lifecycle are documented in :mod:`.events` and
:mod:`.core`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Unpack

from ..engine.contracts import AllocationDecision, PortfolioConstraintEnvelope, PortfolioIntent
from ..engine.policy import Policy, load_policy
from .admission import Admission, wall_clock
from .core import INVALID_INTENT_CODE, ControlCore, Outputs
from .events import (
    DEFAULT_MAX_SKEW,
    Clock,
    FillUpdate,
    Record,
    check_equity,
    check_intent_id,
    check_mode,
    check_reason,
    check_time,
    close_amounts,
    equity_event,
    fill_event,
    intent_event,
    latch_event,
    lifecycle_event,
    mode_event,
    optional_timestamp,
    parse_fill,
    parse_intent,
    parse_timestamp,
    policy_event,
    tick_event,
)
from .feed import apply_event
from .journal import CHECKPOINT_EVERY, Durability, JournalSink, JournalWriter, journal_sink
from .recovery import RecoverOptions, Recovery, recovered
from .reloading import Reloading
from .state import PortfolioState
from .subscribers import Subscriber, Subscribers
from .watcher import PolicyWatcher

if TYPE_CHECKING:
    from .metrics import ControlMetrics

logger = logging.getLogger("policy_engine")
_enabled = logger.isEnabledFor
INFO = logging.INFO
_now_ns = time.perf_counter_ns

RecordSink = Callable[[Record], None] | list[Record] | None


class PortfolioController(Reloading):
    """The single authority over a portfolio's risk, in one process: decisions,
    reservations, modes.

    ``policy`` is a compiled :class:`~policy_engine.Policy` or a path to a policy
    file. ``journal`` (a path, a list to collect events in memory, or any
    :class:`JournalSink`) turns on the event journal; ``records`` (a list or a
    callable) receives every record. ``clock`` (the wall clock by default; ``None``
    for a simulation over historical or future times) bounds how far ahead of now an
    event's timestamp may be (``max_skew``, 5 minutes by default): one stamped later is
    refused and cannot move the event clock. ``metrics`` (:class:`~.metrics.ControlMetrics`)
    counts decisions, their latency and every record, and reads the state when scraped.

    ``durability`` and ``checkpoint_every`` configure a journal file (:mod:`.journal`);
    ``resume`` is a core :meth:`recover` rebuilt from that journal (nothing is written).

    What is refused (an invalid intent, a reused intent id, a timestamp too far ahead, a
    fill/cancel/close that would change nothing) is answered but never journaled and
    leaves the state untouched: its record carries ``seq: null``.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str],
        equity: float = 0.0,
        *,
        peak_equity: float | None = None,
        journal: str | os.PathLike[str] | list[dict[str, Any]] | JournalSink | None = None,
        records: RecordSink = None,
        clock: Clock | None = wall_clock,
        max_skew: timedelta = DEFAULT_MAX_SKEW,
        durability: Durability | str = "event",
        checkpoint_every: int | None = CHECKPOINT_EVERY,
        resume: ControlCore | None = None,
        metrics: ControlMetrics | None = None,
    ) -> None:
        if not isinstance(policy, Policy):
            policy = load_policy(os.fspath(policy))
        check_equity(equity, peak_equity)  # before the journal is opened: nothing half-written
        # A file is appended to and locked; a non-empty one is refused (see `recover`).
        sink = journal_sink(journal, durability, checkpoint_every)
        self._core = resume or ControlCore(policy)
        self._admission = Admission(clock, max_skew)
        self._lock = threading.RLock()
        self._subscribers = Subscribers()
        self._watchers: list[PolicyWatcher] = []
        self._sink = records.append if isinstance(records, list) else records
        self._build = self._sink is not None  # decision records are built for a sink only
        self._decided = None if metrics is None else metrics.decided  # bound once: a hot path
        if metrics is not None:  # it reads the state when scraped and sees every record
            self._sink = metrics.attach(self._core, self._lock, self._sink)
        self._journal = sink
        if isinstance(sink, JournalWriter):
            sink.bind(self._core.snapshot)  # checkpoint lines hold this core's exact snapshot
        self.recovery: Recovery | None = None
        if resume is not None:
            return  # a core rebuilt from this journal by `recover`: nothing to open with
        with self._lock:
            self._write(policy_event(policy))
            self._write(equity_event(equity, peak_equity, None))
            self._run(self._core.equity(equity, peak_equity, None, teach=self._teach()))

    @classmethod
    def recover(
        cls,
        journal_path: str | os.PathLike[str],
        policy: Policy | str | os.PathLike[str] | None = None,
        **options: Unpack[RecoverOptions],
    ) -> PortfolioController:
        """A controller with the exact state ``journal_path``'s events produce, appending to
        the same journal (:mod:`.recovery`; ``ctl.recovery`` says how); then ``policy``, as
        by ``use_policy``. Records of the replayed events are not sent to ``records``."""
        return recovered(cls, journal_path, policy, **options)

    # --- plumbing ------------------------------------------------------------------------
    @property
    def core(self) -> ControlCore:
        """The deterministic core (read it; change it only through this controller)."""
        return self._core

    @property
    def state(self) -> PortfolioState:
        """The live aggregates the policy reads."""
        return self._core.state

    @property
    def journal(self) -> JournalSink | None:
        return self._journal

    def _write(self, event: dict[str, Any]) -> None:
        # A write that fails raises (JournalWriteError) before the core sees the event:
        # nothing is decided unrecorded.
        if self._journal is not None:
            self._journal.write(event)

    def _run(self, out: Outputs) -> Outputs:
        """Hand a core step's outputs to the collaborators."""
        sink = self._sink
        if sink is None and not out.logs and out.broadcast is None:
            return out  # nobody listens: the common case of a fill, cancel or close
        if sink is not None:
            for rec in out.records:
                sink(rec)
        for level, text in out.logs:
            logger.log(level, text)
        if out.broadcast is not None:
            self._broadcast(out.broadcast)
        return out

    def close(self) -> None:
        """Stop file watchers and close the journal."""
        for w in list(self._watchers):
            w.stop()
        if self._journal is not None:
            self._journal.close()

    def __enter__(self) -> PortfolioController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- allocation ----------------------------------------------------------------------
    def decide(
        self, intent: PortfolioIntent | Mapping[str, Any]
    ) -> tuple[AllocationDecision, Record]:
        """``request_allocation`` that also returns the decision record (always built)."""
        decision, record = self._request(intent, True)
        assert record is not None
        return decision, record

    def request_allocation(self, intent: PortfolioIntent | Mapping[str, Any]) -> AllocationDecision:
        """Decide ``intent`` against the live state and reserve what is approved, atomically.

        Never raises for bad input: an intent that fails validation is rejected
        with ``rejected_invalid_intent`` and the validation message.
        """
        return self._request(intent, False)[0]

    def _request(self, intent: Any, want: bool) -> tuple[AllocationDecision, Record | None]:
        core = self._core
        start = _now_ns() if self._decided is not None else 0  # the caller's wait
        model = core.policy.intent_model
        try:
            parsed = parse_intent(intent, model)
        except Exception as exc:  # never raise into the trading loop
            with self._lock:
                return self._refused(
                    core.refusal(
                        intent, INVALID_INTENT_CODE, str(exc), "VALIDATION", teach=self._teach()
                    ),
                    start,
                )
        with self._lock:
            if core.policy.intent_model is not model:  # a reload declared other inputs
                return self._request(intent, want)
            refused = core.admit(
                parsed, self._admission.ahead(parsed.timestamp), teach=self._teach()
            )
            if refused is not None:
                return self._refused(refused, start)
            if self._journal is not None:
                self._journal.write(intent_event(parsed))
            decision, record, out = core.request(
                parsed, build=want or self._build, teach=self._teach(), admitted=True
            )
            if out.records or out.logs or out.broadcast is not None:
                self._run(out)
            if self._decided is not None:
                self._decided(decision, _now_ns() - start)
            return decision, record

    def _refused(
        self, refused: tuple[AllocationDecision, Record, Outputs], start: int
    ) -> tuple[AllocationDecision, Record]:
        decision, record, out = refused
        self._run(out)
        if self._decided is not None:
            self._decided(decision, _now_ns() - start)
        return decision, record

    # --- fills, cancels, closes ----------------------------------------------------------
    def on_fill_update(self, fill: FillUpdate | Mapping[str, Any]) -> Record:
        """Commit one execution; returns the fill record (never raises for bad input).

        ``status``: ``committed``, ``late`` (after the trade was cancelled, expired or
        closed: absorbed as an orphan position, flagged), ``duplicate`` (fill id seen),
        ``unknown`` (no such trade) or ``invalid``; the last three change nothing and are
        not journaled.
        """
        core = self._core
        if fill.__class__ is FillUpdate:
            parsed: FillUpdate = fill  # its class was just checked
        else:
            try:
                parsed = parse_fill(fill)
            except Exception as exc:
                with self._lock:
                    return self._run(
                        core.unchanged("fill", _intent_id_of(fill), "invalid", message=str(exc))
                    ).records[-1]
        with self._lock:
            refused = core.fill_refusal(parsed, self._admission.ahead(parsed.timestamp))
            if refused is not None:
                return self._run(refused).records[-1]
            return self._commit(
                lambda: fill_event(parsed),
                lambda: core.fill(parsed, teach=_enabled(INFO)),
            )

    def cancel_reservation(self, intent_id: str, timestamp: datetime | str | None = None) -> Record:
        """Release the unfilled remainder of ``intent_id``'s reservation (a no-op, not
        journaled, when there is none: ``status`` says why)."""
        check_intent_id(intent_id)
        ts = optional_timestamp(timestamp)
        with self._lock:
            self._admission.check(ts)
            refused = self._core.cancel_refusal(intent_id)
            if refused is not None:
                return self._run(refused).records[-1]
            return self._commit(
                lambda: lifecycle_event("cancel", intent_id, ts),
                lambda: self._core.cancel(intent_id, ts, teach=_enabled(INFO)),
            )

    def close_position(
        self,
        intent_id: str,
        timestamp: datetime | str | None = None,
        *,
        risk_abs: float | None = None,
        realized_pnl: float | None = None,
    ) -> Record:
        """End ``intent_id``'s trade: release its active and reserved risk and its slot; with
        ``risk_abs`` below its position, a partial close that takes only that much off.
        ``realized_pnl`` (signed) feeds the day's P&L and loss streaks. A no-op, not
        journaled, when there is nothing to close (``status`` says why: ``invalid`` for a
        ``risk_abs`` above the position)."""
        check_intent_id(intent_id)
        ts = optional_timestamp(timestamp)
        risk_units, pnl_units = close_amounts(risk_abs, realized_pnl)
        with self._lock:
            self._admission.check(ts)
            refused = self._core.close_refusal(intent_id, risk_units)
            if refused is not None:
                return self._run(refused).records[-1]
            return self._commit(
                lambda: lifecycle_event(
                    "close", intent_id, ts, risk_abs=risk_abs, realized_pnl=realized_pnl
                ),
                lambda: self._core.close(
                    intent_id, ts, risk_units=risk_units, pnl_units=pnl_units, teach=_enabled(INFO)
                ),
            )

    def _commit(self, event: Callable[[], dict[str, Any]], apply: Callable[[], Outputs]) -> Record:
        """Journal the event (built only when there is a journal), apply it to the core, hand
        the outputs on; returns its record. Called under the lock, refusals answered."""
        if self._journal is not None:
            self._journal.write(event())
        out = apply()
        if self._sink is not None or out.logs or out.broadcast is not None:
            self._run(out)
        return out.records[-1]

    def reset_latch(
        self, name: str, reason: str = "", timestamp: datetime | str | None = None
    ) -> Record:
        """Clear latch ``name`` (journaled with ``reason``). A no-op, not journaled, when it
        is not set or its `when` still holds (``status`` says which); EventError when the
        policy declares no such latch."""
        ts = optional_timestamp(timestamp)
        check_reason(reason)
        with self._lock:
            self._admission.check(ts)
            refused = self._core.latch_refusal(name)
            if refused is not None:
                return self._run(refused).records[-1]
            return self._commit(
                lambda: latch_event(name, reason, ts),
                lambda: self._core.reset_latch(name, reason, ts, teach=self._teach()),
            )

    def advance_time(self, timestamp: datetime | str) -> list[Record]:
        """Move the logical clock (a ``tick``); returns the expiry records it caused."""
        ts = check_time(parse_timestamp(timestamp))
        with self._lock:
            self._admission.check(ts)
            self._write(tick_event(ts))
            return list(self._run(self._core.tick(ts, teach=self._teach())).records)

    # --- equity, modes, envelopes --------------------------------------------------------
    def update_equity(
        self,
        equity: float,
        timestamp: datetime | str | None = None,
        *,
        peak_equity: float | None = None,
    ) -> Record:
        """Track equity, peak and drawdown; a drawdown tier change broadcasts the new envelope."""
        ts = optional_timestamp(timestamp)
        check_equity(equity, peak_equity)
        with self._lock:
            self._admission.check(ts)
            self._write(equity_event(equity, peak_equity, ts))
            out = self._core.equity(equity, peak_equity, ts, teach=self._teach())
            return self._run(out).records[-1]

    def set_portfolio_mode(
        self,
        mode: str | None,
        reason: str = "",
        timestamp: datetime | str | None = None,
    ) -> PortfolioConstraintEnvelope:
        """Set (or with ``None`` clear) the mode override, naming a mode the policy declares;
        the stricter of it and the drawdown mode applies. Every subscriber gets the new envelope before this returns."""
        ts = optional_timestamp(timestamp)
        check_reason(reason)
        check_mode(mode)
        with self._lock:
            self._core.check_mode(mode)
            self._admission.check(ts)
            self._write(mode_event(mode, reason, ts))
            out = self._run(self._core.set_mode(mode, reason, ts, teach=self._teach()))
            assert out.broadcast is not None
            return out.broadcast

    def constraints(self) -> PortfolioConstraintEnvelope:
        """The current envelope (without pushing it)."""
        with self._lock:
            return self._core.envelope()

    def broadcast_constraints(self) -> PortfolioConstraintEnvelope:
        """Push the current envelope to every subscriber; returns it."""
        with self._lock:
            env = self._core.envelope()
            self._broadcast(env)
            return env

    def _broadcast(self, env: PortfolioConstraintEnvelope) -> None:
        self._subscribers.send(env)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register an instrument workflow; it gets the current envelope at once and
        every broadcast after. Returns a function that unsubscribes it."""
        with self._lock:
            token = self._subscribers.add(callback)
            self._subscribers.send(self._core.envelope(), only=callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.remove(token)

        return unsubscribe

    # --- audit ---------------------------------------------------------------------------
    def get_portfolio_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of everything: equity, mode, aggregates, reservations."""
        with self._lock:
            return self._core.portfolio_state()

    # --- events --------------------------------------------------------------------------
    def apply(self, event: Mapping[str, Any]) -> Record | None:
        """Apply one event dict (see :mod:`.events`); returns the decision record for an
        ``intent`` and ``None`` for every other event."""
        return apply_event(self, event)

    def apply_all(self, events: Iterable[Mapping[str, Any]]) -> list[Record]:
        """Apply events in order; returns the decision records."""
        return [rec for event in events if (rec := apply_event(self, event)) is not None]


def _intent_id_of(raw: Any) -> str:
    iid = raw.get("intent_id") if isinstance(raw, Mapping) else None
    return iid if isinstance(iid, str) else ""


__all__ = ["JournalSink", "PortfolioController", "RecordSink", "Subscriber"]
