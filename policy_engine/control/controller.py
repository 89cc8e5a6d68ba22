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
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Unpack

from ..engine.contracts import AllocationDecision, PortfolioConstraintEnvelope, PortfolioIntent
from ..engine.policy import Policy, load_policy
from .admission import Admission, wall_clock
from .core import ControlCore, Outputs
from .durable import DurableSection
from .events import (
    DEFAULT_MAX_SKEW,
    CancelEvent,
    Clock,
    CloseEvent,
    EquityEvent,
    Event,
    FillEvent,
    FillUpdate,
    IntentEvent,
    InvalidFillEvent,
    InvalidIntentEvent,
    MarkEvent,
    ModeEvent,
    PolicyEvent,
    Record,
    ResetLatchEvent,
    TickEvent,
    check_intent_id,
    check_mode,
    check_reason,
    check_time,
    optional_timestamp,
    parse_event,
    parse_fill,
    parse_intent,
    parse_timestamp,
)
from .journal import CHECKPOINT_EVERY, Durability, JournalSink, JournalWriter, journal_sink
from .recovery import RecoverOptions, Recovery, recovered
from .reloading import Reloads, read_file
from .shell import Shell
from .state import PortfolioState
from .subscribers import Subscriber, Subscribers
from .watcher import PolicyWatcher

if TYPE_CHECKING:
    from .metrics import ControlMetrics

logger = logging.getLogger("policy_engine")
_enabled = logger.isEnabledFor
INFO = logging.INFO
_now_ns = time.perf_counter_ns
_new = tuple.__new__

RecordSink = Callable[[Record], None] | list[Record] | None


class PortfolioController:
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
        opening = EquityEvent.of(equity, peak_equity, None)  # checked before the journal opens
        # A file is appended to and locked; a non-empty one is refused (see `recover`).
        sink = journal_sink(journal, durability, checkpoint_every)
        self._core = resume or ControlCore(policy)
        self._admission = Admission(clock, max_skew)
        self._lock = threading.RLock()
        self._subscribers = Subscribers()
        self._sink = records.append if isinstance(records, list) else records
        self._build = self._sink is not None  # decision records are built for a sink only
        self._decided = None if metrics is None else metrics.decided  # bound once: a hot path
        if metrics is not None:  # it reads the state when scraped and sees every record
            self._sink = metrics.attach(self._core, self._lock, self._sink)
        self._journal = sink
        if isinstance(sink, JournalWriter):
            sink.bind(self._core.checkpoint)  # checkpoint lines hold this core's exact snapshot
        # Durability `event`: a thread syncs (sharing the sync with the threads deciding
        # with it) after it leaves the lock, before it returns (.durable: group commit).
        self._locked: AbstractContextManager[Any] = self._lock
        if isinstance(sink, JournalWriter) and sink.group():
            self._locked = DurableSection(self._lock, sink)
        # admit -> refuse -> journal -> apply, as the Temporal workflow does (.shell)
        # (no admission clock, as in a simulation: no timestamp to read per event)
        self._shell = Shell(self._core, sink, None if clock is None else self._admission.ahead)
        self._reloads = Reloads(self._core, self._lock, self._submit, self._run)
        self.recovery: Recovery | None = None
        if resume is not None:
            return  # a core rebuilt from this journal by `recover`: nothing to open with
        with self._locked:
            if sink is not None:  # the core opens with the policy in force: event 0
                sink.write(PolicyEvent(policy).journal())
            self._submit(opening)

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

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._core.policy

    @staticmethod
    def _teach() -> bool:
        return _enabled(INFO)

    def _submit(self, event: Event) -> Outputs:
        """Take one event through the shell under the lock (a journal write that fails
        raises before the core sees the event: nothing is decided unrecorded) and hand the
        outputs on."""
        with self._locked:
            out = self._shell.submit(event, teach=_enabled(INFO), decision_record=self._build)[0]
            if (out.records and self._sink is not None) or out.logs or out.broadcast is not None:
                self._run(out)  # (nothing to hand on: a decision without a record, say)
            return out

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
        for w in list(self._reloads.watchers):
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
        event: IntentEvent | InvalidIntentEvent
        try:
            event = _new(IntentEvent, (parse_intent(intent, model),))  # (no Python __new__)
        except Exception as exc:  # never raise into the trading loop
            event = InvalidIntentEvent(intent, str(exc))
        with self._locked:
            if core.policy.intent_model is not model:  # a reload declared other inputs
                return self._request(intent, want)
            # (as _submit does, inline: a hot path; ``want``: the record is built regardless)
            out = self._shell.submit(
                event, teach=_enabled(INFO), decision_record=want or self._build
            )[0]
            if (out.records and self._sink is not None) or out.logs or out.broadcast is not None:
                self._run(out)  # (nothing to hand on: a decision without a record, say)
            decision = out.decision
            assert decision is not None
            if self._decided is not None:
                self._decided(decision, _now_ns() - start)
            return decision, out.records[-1] if want else None

    # --- fills, cancels, closes ----------------------------------------------------------
    def on_fill_update(self, fill: FillUpdate | Mapping[str, Any]) -> Record:
        """Commit one execution; returns the fill record (never raises for bad input).

        ``status``: ``committed``, ``late`` (after the trade was cancelled, expired or
        closed: absorbed as an orphan position, flagged), ``duplicate`` (fill id seen),
        ``unknown`` (no such trade) or ``invalid``; the last three change nothing and are
        not journaled.
        """
        event: FillEvent | InvalidFillEvent
        try:  # (a FillUpdate too: it may have been built without validation)
            event = FillEvent(parse_fill(fill))
        except Exception as exc:
            event = InvalidFillEvent(fill, str(exc))
        return self._submit(event).records[-1]

    def cancel_reservation(self, intent_id: str, timestamp: datetime | str | None = None) -> Record:
        """Release the unfilled remainder of ``intent_id``'s reservation (a no-op, not
        journaled, when there is none: ``status`` says why)."""
        check_intent_id(intent_id)
        ts = None if timestamp is None else parse_timestamp(timestamp)  # (optional_timestamp)
        return self._submit(_new(CancelEvent, (intent_id, ts))).records[-1]

    def close_position(
        self,
        intent_id: str,
        timestamp: datetime | str | None = None,
        *,
        risk_abs: float | None = None,
        realized_pnl: float | None = None,
        reason: str | None = None,
    ) -> Record:
        """End ``intent_id``'s trade: release its active and reserved risk and its slot; with
        ``risk_abs`` below its position, a partial close that takes only that much off.
        ``realized_pnl`` (signed) feeds the day's P&L and loss streaks; ``reason`` (an exit
        reason, `stoploss`) is what windows and locks may filter on. A no-op, not
        journaled, when there is nothing to close (``status`` says why: ``invalid`` for a
        ``risk_abs`` above the position)."""
        check_intent_id(intent_id)
        ts = optional_timestamp(timestamp)
        event = CloseEvent.of(intent_id, ts, risk_abs, realized_pnl, reason)
        return self._submit(event).records[-1]

    def request_cancel(self, intent_id: str, timestamp: datetime | str, **fields: Any) -> Record:
        """A decided cancel (`applies_to: [cancel]` rules; approved: as
        :meth:`cancel_reservation`): the record, ``cancelled`` or ``rejected`` with its rule.
        ``fields``: amounts the rules read. About no live order: answered, not journaled."""
        return self._order_request("request_cancel", intent_id, timestamp, fields)

    def request_modify(
        self, intent_id: str, requested_risk_abs: float, timestamp: datetime | str, **fields: Any
    ) -> Record:
        """A decided change of ``intent_id``'s total risk (modify rules; intent rules too when it
        grows: :mod:`.requests`): the record, ``modified`` or ``rejected``."""
        fields = {**fields, "requested_risk_abs": requested_risk_abs}
        return self._order_request("request_modify", intent_id, timestamp, fields)

    def request_group(
        self, group_id: str, intents: Iterable[PortfolioIntent | Mapping[str, Any]]
    ) -> Record:
        """Decide an order group (a bracket, an order list) all or none (:mod:`.groups`);
        the ``group`` record (``approved``, the failing ``member`` and ``rule_id``), each
        member's decision record to the sink before it. EventError: a malformed group."""
        items = [i.model_dump() if isinstance(i, PortfolioIntent) else i for i in intents]
        event = {"type": "group", "group_id": group_id, "intents": items}
        with self._locked:  # the policy in force (its intent model) parses it
            return self._submit(self._core.parse(event)).records[-1]

    def cancel_group(self, group_id: str, timestamp: datetime | str | None = None) -> Record:
        """Release the remainder of every live member of ``group_id`` (not decided)."""
        event = {"type": "cancel_group", "group_id": group_id, "timestamp": timestamp}
        return self._submit(self._core.parse(event)).records[-1]

    def update_balance(
        self,
        currency: str,
        free: float,
        locked: float = 0.0,
        timestamp: datetime | str | None = None,
    ) -> Record:
        """``currency``'s balance before this portfolio's reservations (it locks those itself:
        :mod:`.balances`); the record (an undeclared currency: answered, not journaled)."""
        event = {"type": "balance", "currency": currency, "free": free, "locked": locked}
        event["timestamp"] = timestamp
        return self._submit(self._core.parse(event)).records[-1]

    def _order_request(
        self, kind: str, intent_id: str, timestamp: datetime | str, fields: Mapping[str, Any]
    ) -> Record:
        event = {**fields, "type": kind, "intent_id": intent_id, "timestamp": timestamp}
        with self._locked:  # the policy in force (its intent model) parses it
            return self._submit(self._core.parse(event)).records[-1]

    def reset_latch(
        self, name: str, reason: str = "", timestamp: datetime | str | None = None
    ) -> Record:
        """Clear latch ``name`` (journaled with ``reason``). A no-op, not journaled, when it
        is not set or its `when` still holds (``status`` says which); EventError when the
        policy declares no such latch."""
        ts = optional_timestamp(timestamp)
        check_reason(reason)
        return self._submit(ResetLatchEvent(name, reason, ts)).records[-1]

    def mark(self, symbol: str, price: float, timestamp: datetime | str) -> Record:
        """``symbol``'s last price revalues its priced positions (``unrealized_pnl``); the
        record says how many. EventError for a malformed symbol, price or timestamp."""
        ts = check_time(parse_timestamp(timestamp))
        return self._submit(MarkEvent.of(symbol, price, ts)).records[-1]

    def advance_time(self, timestamp: datetime | str) -> list[Record]:
        """Move the logical clock (a ``tick``); returns the expiry records it caused."""
        ts = check_time(parse_timestamp(timestamp))
        return list(self._submit(TickEvent(ts)).records)

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
        return self._submit(EquityEvent.of(equity, peak_equity, ts)).records[-1]

    def set_portfolio_mode(
        self,
        mode: str | None,
        reason: str = "",
        timestamp: datetime | str | None = None,
    ) -> PortfolioConstraintEnvelope:
        """Set (or with ``None`` clear) the mode override, naming a mode the policy declares;
        the stricter of it and the drawdown mode applies. Every subscriber gets the new
        envelope before this returns."""
        ts = optional_timestamp(timestamp)
        check_reason(reason)
        check_mode(mode)
        out = self._submit(ModeEvent(mode, reason, ts))
        assert out.broadcast is not None
        return out.broadcast

    def constraints(self) -> PortfolioConstraintEnvelope:
        """The current envelope (without pushing it)."""
        with self._locked:
            return self._core.envelope()

    def broadcast_constraints(self) -> PortfolioConstraintEnvelope:
        """Push the current envelope to every subscriber; returns it."""
        with self._locked:
            env = self._core.envelope()
            self._broadcast(env)
            return env

    def _broadcast(self, env: PortfolioConstraintEnvelope) -> None:
        self._subscribers.send(env)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register an instrument workflow; it gets the current envelope at once and
        every broadcast after. Returns a function that unsubscribes it."""
        with self._locked:
            token = self._subscribers.add(callback)
            self._subscribers.send(self._core.envelope(), only=callback)

        def unsubscribe() -> None:
            with self._locked:
                self._subscribers.remove(token)

        return unsubscribe

    # --- audit ---------------------------------------------------------------------------
    def get_portfolio_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of everything: equity, mode, aggregates, reservations."""
        with self._locked:
            return self._core.portfolio_state()

    # --- reloads --------------------------------------------------------------------------
    def reload(self, path: str | os.PathLike[str] | None = None) -> Record:
        """Swap in a new policy version atomically, keeping the live state.

        Refused, with the old policy kept in force and a record with ``ok: false`` and the
        reason: a file that fails to load (or does not match its declared `integrity`),
        changed content whose `version` did not go up, or a policy that does not declare
        the mode an override in force names. The same content again changes nothing.
        """
        return self._reloads.reload(path)

    def use_policy(self, policy: Policy) -> Record:
        """Put a compiled policy in force (what ``reload`` does after loading), under the
        same rules as ``reload``."""
        return self._reloads.use_policy(policy)

    def watch(
        self, path: str | os.PathLike[str] | None = None, interval: float = 1.0
    ) -> PolicyWatcher:
        """Start a polling watcher that reloads the policy file when it changes; it stops
        with :meth:`close`."""
        return self._reloads.watch(self, path, interval)

    def attach(self, watcher: PolicyWatcher) -> None:
        """Stop ``watcher`` when this controller closes (a started watcher attaches itself)."""
        self._reloads.attach(watcher)

    def detach(self, watcher: PolicyWatcher) -> None:
        self._reloads.detach(watcher)

    # --- events --------------------------------------------------------------------------
    def apply(self, event: Mapping[str, Any]) -> Record | None:
        """Apply one event dict (see :mod:`.events`), parsed once and taken exactly as the
        same call made in code; returns the decision record for an ``intent`` and ``None``
        for every other event (its records, refused ones too, go to the record sink)."""
        if event.get("type") == "intent":
            return self.decide(event)[1]  # parsed there, for the policy in force
        typed = parse_event(event, self._core.policy.intent_model, read=read_file)
        if isinstance(typed, PolicyEvent):
            self.use_policy(typed.policy)
            return None
        if isinstance(typed, CancelEvent | CloseEvent):
            check_intent_id(typed.intent_id)  # what the methods check beyond the core
        elif isinstance(typed, ModeEvent):
            check_reason(typed.reason)
        self._submit(typed)
        return None

    def apply_all(self, events: Iterable[Mapping[str, Any]]) -> list[Record]:
        """Apply events in order; returns the decision records."""
        return [rec for event in events if (rec := self.apply(event)) is not None]


__all__ = ["JournalSink", "PortfolioController", "RecordSink", "Subscriber"]
