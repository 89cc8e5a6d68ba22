"""The pure, deterministic control core: ``(state, event) -> (state, records)``.

:class:`ControlCore` is the portfolio authority with every side effect taken
out: no file or network I/O, no threads or locks, no wall clock, no logging,
no randomness, no iteration over hash-ordered sets. It is a composition: the
:class:`~.kernel.Kernel` (state, book, clock, event counter, and how a step starts
and ends) and the parts that apply events over it (:class:`~.allocation.Intents`,
:class:`~.lifecycle.Lifecycle`, :class:`~.latching.Latching`,
:class:`~.modes.Modes`). :meth:`ControlCore.apply` is the one dispatcher: each
typed event (:mod:`.events`) has a *refusal* (pure: what a live shell answers
without journaling, and the finding the step takes over) and a *step* (it applies
the event and returns :class:`Outputs`: the records it produced, the expiries it
caused first, the teaching lines to log when asked for, the envelope to broadcast
when the mode changed, an override was set or a policy loaded, and an intent's
decision). The shells decide what to do with them: the in-process
:class:`~.controller.PortfolioController` (lock, journal, sinks, subscribers,
logging) and the Temporal workflow, both through :mod:`.shell`, and
:func:`~.replay.replay`.

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
from typing import Any, cast

from ..engine.contracts import AllocationDecision, PortfolioConstraintEnvelope
from ..engine.policy import ModeInfo, Policy
from . import snapshot as snapshots
from .accounts import Accounts
from .allocation import DUPLICATE_INTENT_CODE, INVALID_INTENT_CODE, Intents
from .balances import BalanceEvent
from .book import Book
from .days import Days
from .events import (
    CancelEvent,
    CloseEvent,
    EquityEvent,
    Event,
    EventError,
    FillEvent,
    IntentEvent,
    InvalidFillEvent,
    InvalidIntentEvent,
    MarkEvent,
    ModeEvent,
    PolicyEvent,
    Record,
    ResetLatchEvent,
    TickEvent,
    parse_event,
)
from .groups import Groups
from .kernel import NOTHING, Kernel, Log, Options, Outputs, Ruling
from .latching import Latching
from .lifecycle import Lifecycle
from .marks import Marks
from .modes import Modes
from .orders import CancelGroupEvent, GroupEvent, RequestCancelEvent, RequestModifyEvent
from .requests import Requests
from .state import PortfolioState
from .windows import Windows

# Every combination of the step options (teach, records, decision_record, decide), built
# once: a NamedTuple per event costs more.
OPTIONS: dict[tuple[bool, bool, bool, bool], Options] = {
    (t, r, d, c): Options(t, r, d, c)
    for t in (False, True)
    for r in (False, True)
    for d in (False, True)
    for c in (False, True)
}


Refusal = Callable[[Any, str | None, bool], Ruling]
StepFn = Callable[[Any, Ruling | None, Options], Outputs]


class ControlCore:
    """The portfolio authority as a pure state machine over one :class:`Policy`.

    ``seq`` numbers events: every event applied takes the next number (an opening
    policy load counts as event 0, so the first event after it is 1).
    """

    def __init__(self, policy: Policy, *, seq: int = 1) -> None:
        self._k = Kernel(policy, seq=seq)
        self._parts()

    def _parts(self) -> None:
        k = self._k
        self._intents = intents = Intents(k)
        self._lifecycle = life = Lifecycle(k)
        self._latching = latching = Latching(k)
        self._modes = modes = Modes(k)
        marks = Marks(k)
        requests = Requests(k)
        groups = Groups(k, intents)
        accounts = Accounts(k)
        # The one dispatch table: an event type, its refusal and its step. A new event type
        # is one line here (and its part's two methods).
        self._table: dict[type, tuple[Refusal, StepFn]] = {
            IntentEvent: (intents.refusal, intents.step),
            FillEvent: (life.fill_refusal, life.fill),
            CancelEvent: (life.cancel_refusal, life.cancel),
            CloseEvent: (life.close_refusal, life.close),
            EquityEvent: (modes.timed_refusal, modes.equity),
            ModeEvent: (modes.mode_refusal, modes.mode),
            TickEvent: (modes.timed_refusal, modes.tick),
            PolicyEvent: (modes.policy_refusal, modes.use_policy),
            ResetLatchEvent: (latching.refusal, latching.step),
            MarkEvent: (marks.refusal, marks.step),
            RequestCancelEvent: (requests.refusal, requests.cancel),
            RequestModifyEvent: (requests.refusal, requests.modify),
            GroupEvent: (groups.refusal, groups.step),
            CancelGroupEvent: (groups.cancel_refusal, groups.cancel),
            BalanceEvent: (accounts.refusal, accounts.step),
            InvalidIntentEvent: (intents.invalid_refusal, intents.invalid_step),
            InvalidFillEvent: (life.invalid_fill_refusal, life.invalid_fill),
        }

    # --- reading -------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._k.policy

    @property
    def state(self) -> PortfolioState:
        """The live aggregates the policy reads."""
        return self._k.state

    @property
    def book(self) -> Book:
        """The trades and the logical clock."""
        return self._k.book

    @property
    def windows(self) -> Windows:
        """The rolling windows on event time."""
        return self._k.windows

    @property
    def days(self) -> Days:
        """The trading day the event clock is in."""
        return self._k.days

    @property
    def seq(self) -> int:
        """The number the next event takes."""
        return self._k.seq

    @property
    def clock(self) -> datetime | None:
        return self._k.book.clock

    def envelope(self) -> PortfolioConstraintEnvelope:
        """The current envelope (memoised until the state or the policy changes)."""
        return self._k.envelope()

    def mode_info(self) -> ModeInfo:
        return self._k.mode_info()

    def check_mode(self, mode: str | None) -> None:
        """EventError unless ``mode`` is None or a mode the policy in force declares."""
        self._k.check_mode(mode)

    def portfolio_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of everything: equity, mode, aggregates, reservations."""
        return self._k.portfolio_state()

    def latch_status(self, name: str) -> str:
        """``reset``, ``not_set`` or ``still_holds``; EventError for an undeclared latch."""
        return self._latching.latch_status(name)

    def reload_refusal(self, policy: Policy) -> str | None:
        """Why a live shell must not put ``policy`` in force (None: it may; ``unchanged``:
        the same content again)."""
        return self._modes.reload_refusal(policy)

    def refused_reload(self, path: str, error: str) -> Outputs:
        """The record (``ok: false``) and the error line of a reload refused for ``error``
        (a file that does not load, say); the policy in force stays."""
        return self._modes.refused_reload(path, error)

    def invalid_decision(self, raw: Any, message: str) -> AllocationDecision:
        """The ``rejected_invalid_intent`` decision for ``raw`` (input that failed
        validation), without applying an event: no number taken, nothing changes."""
        decision = self.refusal(InvalidIntentEvent(raw, message)).refused
        assert decision is not None and decision.decision is not None
        return decision.decision

    # --- snapshots -----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The exact snapshot of this core (see :mod:`.snapshot`)."""
        return snapshots.take(self._k)

    def checkpoint(self) -> dict[str, Any]:
        """:meth:`snapshot` for a journal's checkpoint line, taken in O(1) work per trade
        (its rows are built later, possibly on another thread, by
        :func:`.lines.checkpoint_body`: see :func:`.snapshot.capture`)."""
        return snapshots.capture(self._k)

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> ControlCore:
        """The core a :meth:`snapshot` was taken from, exactly."""
        core = cls.__new__(cls)
        core._k = snapshots.restore(dict(data), Kernel)
        core._parts()
        return core

    # --- events --------------------------------------------------------------------------
    def parse(self, event: Mapping[str, Any], read: Callable[[str], bytes] | None = None) -> Event:
        """The typed event of an event dict, for the policy in force (its intent model)."""
        return parse_event(event, self._k.policy.intent_model, read)

    def entry(self, kind: type) -> tuple[Refusal, StepFn]:
        """The refusal and the step the one table holds for events of type ``kind``
        (KeyError: not an event type), for a shell that runs them in turn (:mod:`.shell`)
        without a dispatch per call (:data:`OPTIONS` holds the step's options)."""
        return self._table[kind]

    def refusal(self, event: Event, ahead: str | None = None, *, teach: bool = False) -> Ruling:
        """What a live shell answers without journaling, or what the step needs to know.
        Pure: nothing is numbered, nothing changes. ``ahead`` is the shell's admission
        message (a timestamp too far ahead of its clock): an intent or a fill is answered
        with it, any other event raises EventError with it."""
        return self._table[type(event)][0](event, ahead, teach)

    def apply(
        self,
        event: Event | Mapping[str, Any],
        *,
        teach: bool = False,
        read: Callable[[str], bytes] | None = None,
        records: bool = True,
        decide: bool = False,
        decision_record: bool = True,
        ruling: Ruling | None = None,
    ) -> Outputs:
        """Apply one event (typed, or an event dict parsed once here: see :mod:`.events`).
        An intent's decision record is the last record (``decision_record``), its
        AllocationDecision in ``Outputs.decision`` with ``decide``. ``read`` resolves a
        policy event that carries no text. Without ``records``, fills, cancels and closes
        build no record (a replay of decisions). ``ruling`` is this event's
        :meth:`refusal`, made by a live shell that let it through (its finding is reused)."""
        entry = self._table.get(type(event))
        if entry is None:  # not a typed event: an event dict (a journal's line), parsed once
            if event.__class__ is not dict and not isinstance(event, Mapping):
                raise EventError(f"not an event: {type(event).__name__}")
            event = parse_event(event, self._k.policy.intent_model, read)
            entry = self._table[type(event)]
        return entry[1](event, ruling, OPTIONS[teach, records, decision_record, decide])

    def replayer(
        self, *, records: bool = True, read: Callable[[str], bytes] | None = None
    ) -> Callable[[Event | Mapping[str, Any]], Outputs]:
        """:meth:`apply` for a stream of event dicts (a replay, a recovery): each parsed
        once and stepped, the options fixed here rather than per event."""
        table, k, options = self._table, self._k, OPTIONS[False, records, True, False]

        def step(event: Event | Mapping[str, Any]) -> Outputs:
            if event.__class__ is not dict:  # (a typed event, or not an event at all)
                return self.apply(event, read=read, records=records)
            typed = parse_event(cast(Mapping[str, Any], event), k.policy.intent_model, read)
            return table[type(typed)][1](typed, None, options)

        return step

    def skip(self) -> int:
        """Count an event without applying it (a what-if replay keeps its own policy)."""
        return self._k.skip()


__all__ = [
    "DUPLICATE_INTENT_CODE",
    "INVALID_INTENT_CODE",
    "NOTHING",
    "OPTIONS",
    "ControlCore",
    "EventError",
    "Log",
    "Outputs",
    "Record",
    "Ruling",
]
