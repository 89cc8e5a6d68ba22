"""PortfolioControlWorkflow: the one durable authority over a portfolio's risk, on Temporal.

One workflow per portfolio (id ``portfolio-control/<name>``) holds a pure
:class:`~policy_engine.control.core.ControlCore`. History replaces the journal,
Updates replace the controller's lock, signals to instrument workflows replace
its subscriber callbacks:

- Every mutating handler runs under one workflow-level :class:`asyncio.Lock`
  (handlers otherwise interleave at awaits), so the accepted events form one
  total order and a broadcast is delivered before the next decision is made.
- Each handler turns its input into the event's journal form
  (:mod:`policy_engine.control.events`), applies it, and appends it to the run's
  journal (the ``journal`` query): the in-process ``replay`` of those events makes
  exactly the decisions the workflow made.
- Validators refuse malformed input before it enters history; the core sees only
  what parses. Time is the events' own timestamps; a call without one is stamped
  with ``workflow.now()``, never the wall clock.
- Idempotency: clients use deterministic Update ids (Temporal deduplicates
  within a run), and the workflow's :class:`~.memory.Answers` remembers recent
  decisions (every live trade's too) and the first outcome of every other mutating
  Update id, across continue-as-new: a retry gets its first answer, never a second
  application; a retry of an intent decided too long ago fails with ``RetryTooLate``.
- Broadcast: registered instrument workflows get the envelope on every mode
  change, override and reload, and after fills, cancels, closes and expiries
  when it changed.
- Reservations expire while idle: a timer runs to the next reservation deadline
  (the remaining event time, measured from when the timer is set) and then
  ticks the core to that deadline.
- History stays bounded: after ``events_per_run`` accepted events (or when
  Temporal suggests it) the workflow waits for its handlers and continues as
  new with the core's exact snapshot, its subscribers, the last envelope pushed
  and its decision memory.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import NondeterminismError

from ..control.admission import Admission
from ..control.allocation import DUPLICATE_INTENT_CODE as DUPLICATE
from ..control.core import ControlCore, Outputs
from ..control.events import (
    CancelEvent,
    EquityEvent,
    Event,
    EventError,
    FillEvent,
    IntentEvent,
    ModeEvent,
    PolicyEvent,
    Record,
    ResetLatchEvent,
    TickEvent,
    parse_fill,
    parse_intent,
)
from ..control.shell import Handled, Shell
from ..engine.contracts import PortfolioConstraintEnvelope
from ..engine.policy import Policy, load_policy_text
from . import logic, payloads
from . import protocol as p
from .broadcast import Broadcaster
from .ledger import Ledger
from .marks import MarkUpdates
from .memory import Answers, once
from .orders import OrderUpdates

_SHORTEST_WAIT = timedelta(milliseconds=1)  # a timer of zero is not a timer


@workflow.defn(name=p.WORKFLOW_TYPE)
class PortfolioControlWorkflow(MarkUpdates, OrderUpdates):
    """The shared portfolio authority (see the module docstring)."""

    @workflow.init
    def __init__(self, start: p.ControlStart) -> None:
        self._start = start
        self._lock = asyncio.Lock()
        # Event time comes from the callers; workflow.now() (deterministic) bounds how far ahead.
        skew = start.max_skew_seconds
        self._admission = Admission(None if skew is None else _now, timedelta(seconds=skew or 0))
        self._journal: list[Record] = []  # the events accepted in this run, in order
        self._run_events = 0
        self.answers = Answers(start.decision_memory)
        self._subscribers = Broadcaster(start.portfolio)
        self._origin: dict[str, Any] | None = None  # the snapshot this run started from
        steps = (self.on_fill_update, self.cancel_reservation, self.close_position)
        self._ledger = Ledger(
            dict(zip(("fill", "cancel", "close"), steps, strict=True)),  # type: ignore[arg-type]
            (start.carry or {}).get("ledger"),  # its counters and refusals across runs
        )
        carry = start.carry
        if carry is None:
            policy = payloads.policy(start.policy_text, start.policy_path, start.policy_hash)
            self._core = ControlCore(policy)
            self._runs = 1
            try:
                opening = EquityEvent.of(start.equity, start.peak_equity, None)
                self._core.apply(opening)
            except EventError as exc:
                raise ApplicationError(str(exc), type="EventError", non_retryable=True) from None
            # The opening (event 0 and the equity) is journaled, not counted for the run.
            self._journal += [PolicyEvent(policy).journal(), opening.journal()]
        else:
            snapshot = p.unpack(carry["snapshot"])
            self._core = ControlCore.restore(snapshot)
            self._origin = snapshot
            self._runs = int(carry["runs"]) + 1
            self._subscribers = Broadcaster.restore(start.portfolio, carry)
            self.answers = Answers.restore(start.decision_memory, carry["memory"])
        # admit -> refuse -> journal -> apply, as the in-process controller does
        self._shell = Shell(self._core, self, self._admission.ahead)

    # --- the run: idle expiry, then continue-as-new ------------------------------------
    @workflow.run
    async def run(self, start: p.ControlStart) -> None:
        # Record which decision logic made this run; a replay by other logic fails loudly.
        if workflow.patched(logic.GUARD) and not workflow.patched(
            logic.PREFIX + logic.fingerprint()
        ):
            raise NondeterminismError(
                "this worker's decision logic differs from the one that recorded this run's "
                "history (its decisions would differ on replay): deploy decision changes by "
                "draining the portfolio or as a policy reload (docs/operations.md)"
            )
        # Lifecycle envelope changes are delivered beside the decisions, never in their way.
        delivery = asyncio.create_task(self._subscribers.deliver())
        while not self._due():
            await self._expire_when_idle()
        # Handlers still queued on the lock finish in this run; new ones go to the next, and
        # so does a coalesced envelope not sent yet (Broadcaster.ready says why).
        ready = self._subscribers.ready(workflow.patched(p.CARRY_PENDING_ENVELOPE))
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and ready())
        delivery.cancel()
        workflow.continue_as_new(self._carry())

    def _due(self) -> bool:
        """Time to continue as new: enough events in this run, or Temporal suggests it."""
        return (
            self._run_events >= self._start.events_per_run
            or workflow.info().is_continue_as_new_suggested()
        )

    async def _expire_when_idle(self) -> None:
        """Wait for the next reservation deadline and tick the core to it, unless an event,
        an earlier deadline or continue-as-new comes first."""
        book = self._core.book
        deadline = book.next_deadline()
        if deadline is None:
            await workflow.wait_condition(lambda: self._due() or book.next_deadline() is not None)
            return
        clock = book.clock or deadline
        try:
            await workflow.wait_condition(
                lambda: self._due() or _before(book.next_deadline(), deadline),
                timeout=max(deadline - clock, _SHORTEST_WAIT),
            )
            return
        except TimeoutError:
            pass
        async with self._lock:
            due, now = book.next_deadline(), book.clock
            if due is not None and due <= deadline and (now is None or now < deadline):
                self._take(TickEvent(deadline), admit=False)  # the workflow's own timer
                await self._publish(None, changed=True)

    def _carry(self) -> p.ControlStart:
        start = self._start
        return p.ControlStart(
            portfolio=start.portfolio,
            policy_path=start.policy_path,
            events_per_run=start.events_per_run,
            decision_memory=start.decision_memory,
            max_skew_seconds=start.max_skew_seconds,
            carry={
                "snapshot": p.pack(self._core.snapshot()),
                **self._subscribers.carry(),
                "memory": self.answers.carry(),
                "runs": self._runs,
                "ledger": self._ledger.carry(),
            },
        )

    # --- plumbing ------------------------------------------------------------------------
    def _take(self, event: Event, *, decide: bool = False, admit: bool = True) -> Handled:
        """Admit, refuse, journal and apply one event (:mod:`policy_engine.control.shell`),
        logging its outputs; what may not be taken at all fails the Update, not the task."""
        try:
            handled = self._shell.submit(
                event, teach=_teach(), decide=decide, decision_record=False, admit=admit
            )
        except EventError as exc:  # validators catch most of these first
            raise ApplicationError(str(exc), type="EventError", non_retryable=True) from None
        self._log(handled[0])
        return handled

    def write(self, event: Record) -> None:
        """The shell's journal: this run's accepted events, counted for continue-as-new."""
        self._journal.append(event)
        self._run_events += 1

    @staticmethod
    def _log(out: Outputs) -> Outputs:
        for level, text in out.logs:
            workflow.logger.log(level, text)
        return out

    def _declared(self, mode: str | None) -> None:
        """An override must name a mode the policy in force declares."""
        try:
            self._core.check_mode(mode)
        except EventError as exc:
            raise ApplicationError(str(exc), type="EventError", non_retryable=True) from None

    async def _publish(self, forced: PortfolioConstraintEnvelope | None, changed: bool) -> None:
        """Push ``forced`` (a mode change, override, reload) to every subscriber before the
        next decision; or (``changed``: a lifecycle event) hand the current envelope to the
        coalesced delivery beside the decisions (:mod:`.broadcast`)."""
        seq = self._core.seq - 1
        if forced is not None:
            await self._subscribers.publish(forced.model_dump(mode="json"), seq)
        elif changed and self._subscribers.subscribers:
            env = self._core.envelope().model_dump(mode="json")
            if workflow.patched(p.COALESCED_BROADCAST):
                self._subscribers.changed(env, seq)
            elif env != self._subscribers.pushed:  # a history recorded before the patch
                await self._subscribers.publish(env, seq)

    # --- allocation ----------------------------------------------------------------------
    @workflow.update(name=p.REQUEST_ALLOCATION)
    async def request_allocation(self, intent: dict[str, Any]) -> dict[str, Any]:
        """Decide an intent and reserve what is approved; returns the AllocationDecision.
        A retry of a decided intent (same id, same content) gets the original decision."""
        async with self._lock:
            # The policy in force decides which fields an intent may carry (its `inputs`); a
            # reload since the validator ran may have changed them: refused, not an event.
            try:
                parsed = parse_intent(intent, self._core.policy.intent_model)
            except ValueError as exc:
                return self._core.invalid_decision(intent, str(exc)).model_dump(mode="json")
            event = IntentEvent(parsed)
            seen = p.digest(event.journal())
            known = self.answers.decision(parsed.intent_id)
            if known is not None and known[0] == seen:
                return known[1]
            out, accepted = self._take(event, decide=True)
            assert out.decision is not None
            if known is None and out.decision.decision_code == DUPLICATE:
                # Decided before, forgotten, its trade ended: a retry too late to answer (or a
                # reused id). Nothing is reserved; the caller must not read it as a rejection.
                raise ApplicationError(
                    f"intent {parsed.intent_id} was decided too long ago for its decision to "
                    "be remembered (a retry too late, or a reused intent id): nothing changed",
                    type="RetryTooLate",
                    non_retryable=True,
                )
            result = out.decision.model_dump(mode="json")
            if accepted:  # a reused id, a timestamp too far ahead: not an event
                self.answers.decided(parsed.intent_id, seen, result, self._live)
            return result

    @request_allocation.validator
    def _check_intent(self, intent: dict[str, Any]) -> None:
        # A malformed intent is refused before it enters history.
        parse_intent(intent, self._core.policy.intent_model)

    def _live(self, intent_id: str) -> bool:
        return self._core.book.get(intent_id) is not None

    # --- fills, cancels, closes ----------------------------------------------------------
    @workflow.update(name=p.ON_FILL_UPDATE)
    @once
    async def on_fill_update(self, fill: dict[str, Any]) -> Record:
        """Commit one execution; returns the fill record (a repeated fill id is a no-op)."""
        parsed = parse_fill(fill)
        async with self._lock:  # duplicate, unknown or too far ahead: answered, not an event
            return await self._lifecycle(FillEvent(parsed))

    @on_fill_update.validator
    def _check_fill(self, fill: dict[str, Any]) -> None:
        parse_fill(fill)

    @workflow.update(name=p.CANCEL_RESERVATION)
    @once
    async def cancel_reservation(self, request: dict[str, Any]) -> Record:
        """Release the unfilled remainder of a reservation; returns the cancel record."""
        intent_id, ts = payloads.target(request)
        async with self._lock:  # no live remainder: answered, not an event
            return await self._lifecycle(CancelEvent(intent_id, ts or _now()))

    @cancel_reservation.validator
    def _check_cancel(self, request: dict[str, Any]) -> None:
        payloads.target(request)

    @workflow.update(name=p.CLOSE_POSITION)
    @once
    async def close_position(self, request: dict[str, Any]) -> Record:
        """End a trade, releasing its risk and its slot (with ``risk_abs`` below its position,
        take only that much off; ``realized_pnl`` feeds the day's P&L); returns the record."""
        event = payloads.close(request)
        async with self._lock:  # no live trade, or more than its position: not an event
            return await self._lifecycle(event._replace(timestamp=event.timestamp or _now()))

    @close_position.validator
    def _check_close(self, request: dict[str, Any]) -> None:
        payloads.close(request)

    @workflow.update(name=p.RESET_LATCH)
    @once
    async def reset_latch(self, request: dict[str, Any]) -> Record:
        """Clear a latch the policy declares (journaled with the reason); a reset that would
        change nothing (not set, or its `when` still holds) is answered, not an event."""
        name, reason, ts = payloads.latch(request)
        async with self._lock:  # a reload since the validator ran may have dropped the latch
            return await self._lifecycle(ResetLatchEvent(name, reason, ts or _now()))

    @reset_latch.validator
    def _check_reset(self, request: dict[str, Any]) -> None:
        self._core.latch_status(payloads.latch(request)[0])  # EventError: no such latch

    async def _lifecycle(self, event: Event) -> Record:
        out, accepted = self._take(event)
        if accepted:
            await self._publish(out.broadcast, changed=True)
        return out.records[-1]

    # --- equity, modes, policies ---------------------------------------------------------
    @workflow.update(name=p.UPDATE_EQUITY)
    @once
    async def update_equity(self, request: dict[str, Any]) -> Record:
        """Track equity and drawdown; a tier change broadcasts. Returns the equity record."""
        equity, peak, ts = payloads.equity(request)
        async with self._lock:
            out = self._take(EquityEvent(equity, peak, ts or _now()))[0]
            await self._publish(out.broadcast, changed=False)
            return out.records[-1]

    @update_equity.validator
    def _check_equity(self, request: dict[str, Any]) -> None:
        payloads.equity(request)

    @workflow.update(name=p.SET_PORTFOLIO_MODE)
    @once
    async def set_portfolio_mode(self, request: dict[str, Any]) -> dict[str, Any]:
        """Set (or with ``mode: null`` clear) the override; every registered instrument
        workflow has the new envelope before this returns. Returns the envelope."""
        mode, reason, ts = payloads.mode(request)
        async with self._lock:
            out = self._take(ModeEvent(mode, reason, ts or _now()))[0]
            assert out.broadcast is not None  # a mode event always broadcasts
            await self._publish(out.broadcast, changed=False)
            return out.broadcast.model_dump(mode="json")

    @set_portfolio_mode.validator
    def _check_mode(self, request: dict[str, Any]) -> None:
        self._declared(payloads.mode(request)[0])

    @workflow.update(name=p.RELOAD)
    @once
    async def reload(self, request: dict[str, Any]) -> Record:
        """Put a new policy version in force, keeping the live state; refused (nothing
        changes) when it does not load, its content changed without a higher version, or
        an override in force names a mode it does not declare. The same content again
        changes nothing (``unchanged``). Returns the record."""
        async with self._lock:
            try:
                policy = self._reloadable(request)
            except ValueError as exc:  # another reload got in first
                raise ApplicationError(str(exc), type="ReloadRefused", non_retryable=True) from None
            out, accepted = self._take(PolicyEvent(policy))  # the same content: `unchanged`
            if accepted:
                await self._publish(out.broadcast, changed=False)
            return out.records[-1]

    @reload.validator
    def _check_reload(self, request: dict[str, Any]) -> None:
        self._reloadable(request)

    def _reloadable(self, request: dict[str, Any]) -> Policy:
        text, path = request.get("policy_text"), request.get("path") or "<reload>"
        if not isinstance(text, str):
            raise ValueError("reload: `policy_text` must be the policy's YAML text")
        try:
            policy = load_policy_text(text, str(path))
        except Exception as exc:  # PolicyError carries every diagnostic
            raise ValueError(f"reload refused: the policy does not load: {exc}") from None
        refusal = self._core.reload_refusal(policy)
        if refusal is not None and refusal != "unchanged":
            raise ValueError(f"reload refused: {refusal}")
        return policy

    # --- instrument workflows ------------------------------------------------------------
    @workflow.update(name=p.BROADCAST_CONSTRAINTS)
    async def broadcast_constraints(self) -> dict[str, Any]:
        """Push the current envelope to every registered instrument workflow (delivered
        before this returns); returns it. Not an event: the core does not change, so a
        retry pushes the current envelope again (idempotent without the memory)."""
        async with self._lock:
            env = self._core.envelope().model_dump(mode="json")
            await self._subscribers.publish(env, self._core.seq - 1)
            return env

    @workflow.signal(name=p.REGISTER)
    async def register(self, workflow_id: str) -> None:
        """Subscribe an instrument workflow; it gets the current envelope at once."""
        async with self._lock:
            env = self._core.envelope().model_dump(mode="json")
            await self._subscribers.register(workflow_id, env, self._core.seq - 1)

    @workflow.signal(name=p.UNREGISTER)
    async def unregister(self, workflow_id: str) -> None:
        async with self._lock:
            self._subscribers.unregister(workflow_id)

    # --- the execution ledger's signals (.ledger) -----------------------------------------
    # The payloads are typed Any on purpose: the SDK drops a signal whose argument does not
    # decode to the annotated type, silently for the sender; the ledger judges and counts it.
    @workflow.signal(name=p.LEDGER_FILL)
    async def ledger_fill(self, fill: Any) -> None:
        """An execution (the ``on_fill_update`` payload); a repeated fill id is a no-op."""
        await self._ledger.take("fill", fill)

    @workflow.signal(name=p.LEDGER_CANCEL)
    async def ledger_cancel(self, request: Any) -> None:
        """The unfilled remainder released (the ``cancel_reservation`` payload)."""
        await self._ledger.take("cancel", request)

    @workflow.signal(name=p.LEDGER_CLOSE)
    async def ledger_close(self, request: Any) -> None:
        """A position closed, or reduced by ``risk_abs`` (the ``close_position`` payload)."""
        await self._ledger.take("close", request)

    @workflow.query(name=p.LEDGER)
    def ledger(self) -> dict[str, Any]:
        """What the workflow took from the ledger's signals (:meth:`.Ledger.report`)."""
        return self._ledger.report()

    # --- queries -------------------------------------------------------------------------
    @workflow.query(name=p.GET_PORTFOLIO_STATE)
    def get_portfolio_state(self) -> dict[str, Any]:
        """Equity, mode, aggregates, reservations (as the in-process controller gives them)."""
        return self._core.portfolio_state()

    @workflow.query(name=p.CONSTRAINTS)
    def constraints(self) -> dict[str, Any]:
        return self._core.envelope().model_dump(mode="json")

    @workflow.query(name=p.SNAPSHOT)
    def snapshot(self) -> dict[str, Any]:
        """The core's exact snapshot."""
        return self._core.snapshot()

    @workflow.query(name=p.JOURNAL)
    def journal(self) -> dict[str, Any]:
        """This run's accepted events in order, the snapshot it started from (``None`` for
        the first run, whose journal opens with the policy) and its number."""
        return {"run": self._runs, "origin": self._origin, "events": list(self._journal)}

    @workflow.query(name=p.CARRY)
    def carry(self) -> dict[str, Any] | None:
        """What a continue-as-new now would carry: the state a closed run resumes from."""
        return self._carry().carry

    @workflow.query(name=p.SUBSCRIBERS)
    def subscribers(self) -> list[str]:
        return list(self._subscribers.subscribers)

    @workflow.query(name=p.INVALID_INTENT_DECISION)
    def invalid_intent_decision(self, raw: Any, message: str) -> dict[str, Any]:
        """The ``rejected_invalid_intent`` decision for input that failed validation."""
        return self._core.invalid_decision(raw, message).model_dump(mode="json")


def _now() -> datetime:
    return workflow.now()


def _teach() -> bool:
    return workflow.logger.isEnabledFor(logging.INFO)


def _before(deadline: datetime | None, than: datetime) -> bool:
    return deadline is not None and deadline < than


__all__ = ["PortfolioControlWorkflow"]
