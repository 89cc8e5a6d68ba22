"""PortfolioClient: the in-process controller's API, answered by the shared control workflow.

``await PortfolioClient.connect(address, portfolio=NAME, task_queue=QUEUE)`` and
then the controller's methods, each an awaited workflow Update or Query:
``request_allocation`` returns an :class:`AllocationDecision`, ``on_fill_update``,
``cancel_reservation``, ``close_position`` and ``update_equity`` return the
record, ``set_portfolio_mode`` and ``constraints`` the envelope, ``reload`` the
reload record (``ok: false`` with the reason when refused).

Input is validated here first, as the controller does: a malformed intent gets
``rejected_invalid_intent`` (its envelope read with a Query, nothing enters the
workflow's history), a malformed fill a record with status ``invalid``.

Retries are idempotent. Every mutating call has an idempotency key, its Update id:
intents and fills a deterministic one (``intent:<id>:<content hash>``,
``fill:<intent id>:<fill id>``); close, cancel, equity, mode, latch reset and reload
the caller's ``request_id`` if given, else one derived from the content when the
call carries a ``timestamp`` (the same call re-sent after a client crash is the same
call), else one random id per call. The workflow answers a repeated id with its
first outcome, in this run or after a continue-as-new (:mod:`.memory`); a retry of an
intent too old to be remembered raises :class:`RetryTooLate`. A call that gets no
answer is retried with the same id until its deadline (:mod:`.calls`); then it
raises :class:`ControlPlaneUnavailable`. At most ``concurrency`` Updates are in
flight per client; more callers queue. Errors are one-line exceptions, never gRPC
tracebacks. ``close()`` (or ``async with``) waits for the calls in flight.

Metrics: given a :class:`~policy_engine.control.metrics.ControlMetrics`, a client counts
every decision it receives (with its round trip) and every record; each caller process
exports its own counters, and ``policy worker --metrics-port`` the live state. Marks and
order requests are :class:`.marks.MarkCalls` and :class:`.orders.OrderCalls`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from ..control.events import (
    DEFAULT_MAX_SKEW,
    FillEvent,
    IntentEvent,
    Record,
    check_equity,
    check_exit_reason,
    check_mode,
    check_reason,
    close_amounts,
    optional_timestamp,
    parse_fill,
    parse_intent,
)
from ..control.metrics import ControlMetrics
from ..engine.contracts import AllocationDecision, PortfolioConstraintEnvelope, PortfolioIntent
from ..engine.policy import Policy, load_policy_text
from . import payloads
from . import protocol as p
from .calls import DEFAULT_CONCURRENCY, DEFAULT_DEADLINE, Calls
from .errors import (
    ControlPlaneError,
    ControlPlaneUnavailable,
    PortfolioEnded,
    PortfolioNotRunning,
    RequestRefused,
    RetryTooLate,
    reason_of,
    rpc_error,
)
from .marks import MarkCalls
from .orders import OrderCalls
from .starting import start_workflow


class PortfolioClient(MarkCalls, OrderCalls):
    """A caller of one portfolio's control workflow (see the module docstring).

    A mutating call retries with the same id for up to ``deadline`` seconds, each attempt
    waiting up to ``timeout`` seconds for the workflow to answer; at most ``concurrency``
    Updates are in flight at once (the rest queue).
    """

    def __init__(
        self,
        client: Client,
        portfolio: str,
        task_queue: str = p.DEFAULT_TASK_QUEUE,
        *,
        timeout: float = 10.0,
        deadline: float = DEFAULT_DEADLINE,
        concurrency: int = DEFAULT_CONCURRENCY,
        metrics: ControlMetrics | None = None,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.portfolio = portfolio
        self.task_queue = task_queue
        self.workflow_id = p.workflow_id(portfolio)
        self.calls = Calls(
            client,
            self.workflow_id,
            task_queue,
            timeout=timeout,
            deadline=deadline,
            concurrency=concurrency,
        )
        self._closed = False

    @classmethod
    async def connect(
        cls,
        address: str,
        *,
        portfolio: str,
        task_queue: str = p.DEFAULT_TASK_QUEUE,
        namespace: str = "default",
        timeout: float = 10.0,
        deadline: float = DEFAULT_DEADLINE,
        concurrency: int = DEFAULT_CONCURRENCY,
        metrics: ControlMetrics | None = None,
    ) -> PortfolioClient:
        """Connect to the Temporal server at ``address`` (``host:port``)."""
        try:
            client = await Client.connect(address, namespace=namespace)
        except Exception as exc:
            raise ControlPlaneUnavailable(
                f"cannot reach the Temporal server at {address}: {reason_of(exc)}"
            ) from None
        return cls(
            client,
            portfolio,
            task_queue,
            timeout=timeout,
            deadline=deadline,
            concurrency=concurrency,
            metrics=metrics,
        )

    async def close(self) -> None:
        """Wait for the calls in flight, then refuse new ones (idempotent). The connection
        closes when the last reference to ``client`` goes (the SDK has no explicit close)."""
        self._closed = True
        await self.calls.drain()

    async def __aenter__(self) -> PortfolioClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- the workflow --------------------------------------------------------------------
    async def start(
        self,
        policy: Policy | str,
        *,
        equity: float,
        peak_equity: float | None = None,
        events_per_run: int = p.DEFAULT_EVENTS_PER_RUN,
        decision_memory: int = p.DEFAULT_DECISION_MEMORY,
        max_skew: timedelta | None = DEFAULT_MAX_SKEW,
        task_timeout: float | None = None,
        resume: bool = False,
        new_portfolio: bool = False,
    ) -> bool:
        """Start the portfolio's control workflow unless it is running; ``True`` if this
        call started it. ``policy`` is a compiled policy or its YAML text. Event timestamps
        more than ``max_skew`` ahead of the workflow's clock are refused (``None``: no
        bound, for a simulation over future times).

        A portfolio whose last run was terminated, failed, was cancelled or timed out is
        never restarted implicitly (it would start empty: :class:`PortfolioEnded`). With
        ``resume`` it continues from the exact state its history holds (the closed run's
        state, read by a Query a worker answers by replaying that history: its book,
        subscribers and idempotency memory); with ``new_portfolio`` its book is
        discarded and it starts afresh with ``equity``."""
        if not 1 <= events_per_run <= p.MAX_EVENTS_PER_RUN:
            raise ValueError(
                f"events_per_run must be 1 to {p.MAX_EVENTS_PER_RUN} (Temporal allows 2,000 "
                f"Updates in one run), got {events_per_run}"
            )
        if resume and new_portfolio:
            raise ValueError("resume and new_portfolio exclude each other")
        self._open("start")
        if isinstance(policy, str):
            policy = load_policy_text(policy, "<policy>")
        if policy.source is None:
            raise ValueError("the policy has no text to hand to the workflow")
        if not resume:  # a resumed portfolio has its equity in the state it resumes
            check_equity(equity, peak_equity)
        start = p.ControlStart(
            portfolio=self.portfolio,
            policy_text=policy.source,
            policy_path=policy.path,
            policy_hash=policy.content_hash,
            equity=equity,
            peak_equity=peak_equity,
            events_per_run=events_per_run,
            decision_memory=decision_memory,
            max_skew_seconds=None if max_skew is None else max_skew.total_seconds(),
        )
        return await start_workflow(
            self.calls,
            start,
            policy,
            task_timeout=task_timeout,
            resume=resume,
            new_portfolio=new_portfolio,
        )

    async def running(self) -> bool:
        """Whether the portfolio's control workflow is running (a closed one answers
        queries but decides nothing)."""
        try:
            info = await self.calls.handle.describe(rpc_timeout=self.calls.timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise rpc_error(self.workflow_id, exc) from None
        return info.status == WorkflowExecutionStatus.RUNNING

    # --- allocation ----------------------------------------------------------------------
    async def request_allocation(
        self, intent: PortfolioIntent | Mapping[str, Any]
    ) -> AllocationDecision:
        """Decide ``intent`` and reserve what is approved; never raises for bad input (a
        malformed intent is rejected with ``rejected_invalid_intent``). Fields beyond the
        base contract are the policy's declared ``inputs``: the workflow judges them."""
        start = time.perf_counter_ns()
        try:
            parsed = parse_intent(intent)
        except ValueError as exc:
            result = await self._with_inputs(intent, str(exc))
        else:
            event = IntentEvent(parsed).journal()
            payload = {k: v for k, v in event.items() if k != "type"}
            result = await self._update(p.REQUEST_ALLOCATION, payload, p.intent_update_id(event))
        decision = AllocationDecision.model_validate(result)
        metrics = self.metrics
        if metrics is not None:
            with metrics.lock:
                metrics.decided(decision, time.perf_counter_ns() - start)
        return decision

    async def _with_inputs(self, intent: Any, problem: str) -> dict[str, Any]:
        """An intent the base contract refuses: if only its extra fields are the problem they
        may be inputs the policy declares, and the workflow (which holds the policy) checks
        them; otherwise, or when the workflow refuses them, ``rejected_invalid_intent``."""
        raw = payloads.plain(intent)
        base = (
            {k: v for k, v in raw.items() if k in payloads.BASE_FIELDS}
            if isinstance(raw, dict)
            else {}
        )
        if isinstance(raw, dict) and len(base) < len(raw):
            try:
                parse_intent(base)
            except ValueError:
                pass  # wrong without its extra fields too: say what the base contract says
            else:
                event: Record = {"type": "intent", **raw}
                try:
                    return await self._update(p.REQUEST_ALLOCATION, raw, p.intent_update_id(event))
                except RequestRefused as exc:  # the policy's inputs refused it
                    problem = str(exc)
        refusal: dict[str, Any] = await self._query(p.INVALID_INTENT_DECISION, raw, problem)
        return refusal

    def _counted(self, record: Record) -> Record:
        """``record``, counted by the metrics (if any)."""
        metrics = self.metrics
        if metrics is not None:
            with metrics.lock:
                metrics.lifecycle(record)
        return record

    # --- fills, cancels, closes ----------------------------------------------------------
    async def on_fill_update(self, fill: Mapping[str, Any] | Any) -> Record:
        """Commit one execution; returns the fill record (``status``: committed, duplicate,
        unknown, expired / cancelled / closed, or ``invalid`` when it did not validate:
        then nothing reached the workflow)."""
        try:
            parsed = parse_fill(fill)
        except ValueError as exc:
            raw = fill if isinstance(fill, Mapping) else {}
            iid = raw.get("intent_id")
            return self._counted(
                {
                    "kind": "fill",
                    "status": "invalid",
                    "intent_id": iid if isinstance(iid, str) else "",
                    "message": str(exc),
                }
            )
        payload = {k: v for k, v in FillEvent(parsed).journal().items() if k != "type"}
        return self._counted(
            await self._update(p.ON_FILL_UPDATE, payload, p.fill_update_id(parsed))
        )

    async def cancel_reservation(
        self,
        intent_id: str,
        timestamp: datetime | str | None = None,
        *,
        request_id: str | None = None,
    ) -> Record:
        """Release the unfilled remainder of ``intent_id``'s reservation."""
        request = payloads.request_target(intent_id, timestamp)
        key = p.request_update_id(p.CANCEL_RESERVATION, request, request_id)
        return self._counted(await self._update(p.CANCEL_RESERVATION, request, key))

    async def close_position(
        self,
        intent_id: str,
        timestamp: datetime | str | None = None,
        *,
        risk_abs: float | None = None,
        realized_pnl: float | None = None,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> Record:
        """End ``intent_id``'s trade: release its active and reserved risk and its slot; with
        ``risk_abs`` below its position, take only that much off (a partial close).
        ``realized_pnl`` (signed) feeds the day's P&L and loss streaks; ``reason`` is the exit
        reason (`stoploss`) windows and locks may filter on."""
        close_amounts(risk_abs, realized_pnl)  # refused here, without a round trip
        check_exit_reason(reason)
        request = payloads.request_target(intent_id, timestamp)
        request.update(risk_abs=risk_abs, realized_pnl=realized_pnl)
        if reason is not None:  # (absent otherwise: a request without one is as before)
            request["reason"] = reason
        key = p.request_update_id(p.CLOSE_POSITION, request, request_id)
        return self._counted(await self._update(p.CLOSE_POSITION, request, key))

    async def reset_latch(
        self,
        name: str,
        reason: str = "",
        timestamp: datetime | str | None = None,
        *,
        request_id: str | None = None,
    ) -> Record:
        """Clear latch ``name`` (journaled with ``reason``); a reset that would change
        nothing (not set, or its `when` still holds) is answered with ``status`` saying why
        and ``seq: null``. :class:`RequestRefused` when the policy declares no such latch."""
        check_reason(reason)
        ts = optional_timestamp(timestamp)
        request = {"name": name, "reason": reason, "timestamp": ts and ts.isoformat()}
        return await self._update(
            p.RESET_LATCH, request, p.request_update_id(p.RESET_LATCH, request, request_id)
        )

    # --- equity, modes, envelopes, policies ----------------------------------------------
    async def update_equity(
        self,
        equity: float,
        timestamp: datetime | str | None = None,
        *,
        peak_equity: float | None = None,
        request_id: str | None = None,
    ) -> Record:
        """Track equity, peak and drawdown; a drawdown tier change broadcasts the envelope."""
        check_equity(equity, peak_equity)
        ts = optional_timestamp(timestamp)
        request = {
            "equity": equity,
            "peak_equity": peak_equity,
            "timestamp": ts and ts.isoformat(),
        }
        key = p.request_update_id(p.UPDATE_EQUITY, request, request_id)
        return self._counted(await self._update(p.UPDATE_EQUITY, request, key))

    async def set_portfolio_mode(
        self,
        mode: str | None,
        reason: str = "",
        timestamp: datetime | str | None = None,
        *,
        request_id: str | None = None,
    ) -> PortfolioConstraintEnvelope:
        """Set (or with ``None`` clear) the override; every registered instrument workflow
        has the new envelope before this returns."""
        check_mode(mode)
        ts = optional_timestamp(timestamp)
        request = {"mode": mode, "reason": reason, "timestamp": ts and ts.isoformat()}
        key = p.request_update_id(p.SET_PORTFOLIO_MODE, request, request_id)
        env = await self._update(p.SET_PORTFOLIO_MODE, request, key)
        return PortfolioConstraintEnvelope.model_validate(env)

    async def reload(
        self, policy_text: str, path: str | None = None, *, request_id: str | None = None
    ) -> Record:
        """Put a new policy version in force, keeping the live state. Refused (``ok: false``
        and the reason; the old policy stays) when it does not load or its version is not
        higher than the one in force."""
        where = path or "<reload>"
        try:
            load_policy_text(policy_text, where)  # the diagnostics, without a round trip
            request = {"policy_text": policy_text, "path": where}
            key = p.request_update_id(
                p.RELOAD, request, request_id
            )  # no timestamp: random unless given
            return self._counted(await self._update(p.RELOAD, request, key))
        except (ValueError, RequestRefused) as exc:
            message = str(exc)
        except Exception as exc:  # PolicyError and its diagnostics
            if isinstance(exc, ControlPlaneError):
                raise
            message = f"reload refused: the policy does not load: {exc}"
        return self._counted({"kind": "reload", "ok": False, "path": where, "error": message})

    async def broadcast_constraints(self) -> PortfolioConstraintEnvelope:
        """Push the current envelope to every registered instrument workflow; returns it."""
        env = await self._update(p.BROADCAST_CONSTRAINTS, None)
        return PortfolioConstraintEnvelope.model_validate(env)

    async def constraints(self) -> PortfolioConstraintEnvelope:
        """The current envelope (a Query: nothing is pushed)."""
        env = await self._query(p.CONSTRAINTS)
        return PortfolioConstraintEnvelope.model_validate(env)

    async def get_portfolio_state(self) -> dict[str, Any]:
        """Equity, mode, aggregates and reservations, as the controller reports them."""
        state: dict[str, Any] = await self._query(p.GET_PORTFOLIO_STATE)
        return state

    async def snapshot(self) -> dict[str, Any]:
        """The core's exact snapshot."""
        snap: dict[str, Any] = await self._query(p.SNAPSHOT)
        return snap

    async def journal(self, run_id: str | None = None) -> dict[str, Any]:
        """The accepted events of the current run (or of ``run_id``), the snapshot it
        started from (``None`` for the first run) and the run's number."""
        handle = self.calls.handle
        if run_id is not None:
            handle = self.client.get_workflow_handle(self.workflow_id, run_id=run_id)
        journal: dict[str, Any] = await self._query(p.JOURNAL, handle=handle)
        return journal

    # --- instrument workflows ------------------------------------------------------------
    async def register(self, workflow_id: str) -> None:
        """Subscribe a workflow to envelope broadcasts (it gets the current one at once)."""
        await self._signal(p.REGISTER, workflow_id)

    async def unregister(self, workflow_id: str) -> None:
        await self._signal(p.UNREGISTER, workflow_id)

    async def subscribers(self) -> list[str]:
        subs: list[str] = await self._query(p.SUBSCRIBERS)
        return subs

    async def ledger(self) -> dict[str, Any]:
        """What this run took from the execution ledger's signals: counts by
        ``kind:status`` and the last refusals (see :mod:`.ledger`)."""
        seen: dict[str, Any] = await self._query(p.LEDGER)
        return seen

    # --- plumbing ------------------------------------------------------------------------
    async def _update(self, name: str, arg: Any, update_id: str | None = None) -> dict[str, Any]:
        """One Update (``arg`` ``None``: no argument) under ``update_id`` (``None``: one
        random id, reused by every retry of this call)."""
        self._open(name)
        return await self.calls.update(name, arg, update_id or f"{name}:{uuid.uuid4()}")

    async def _query(
        self, name: str, *args: Any, handle: WorkflowHandle[Any, Any] | None = None
    ) -> Any:
        self._open(name)
        return await self.calls.query(name, *args, handle=handle)

    async def _signal(self, name: str, arg: Any) -> None:
        self._open(name)
        await self.calls.signal(name, arg)

    def _open(self, name: str) -> None:
        """Every call after :meth:`close` is refused alike, reads too (one rule, one place)."""
        if self._closed:
            raise ControlPlaneError(f"{self.workflow_id}: {name}: the client is closed")


__all__ = [
    "ControlPlaneError",
    "ControlPlaneUnavailable",
    "PortfolioClient",
    "PortfolioEnded",
    "PortfolioNotRunning",
    "RequestRefused",
    "RetryTooLate",
    "reason_of",
]
