"""The execution ledger's side: fills and releases signalled to the portfolio's authority.

Seed 004's execution ledger *signals* the control workflow with actual fills and
releases (a workflow can signal another workflow, not call its Updates). The
control workflow takes three signals, :data:`~.protocol.LEDGER_FILL`,
:data:`~.protocol.LEDGER_CANCEL` and :data:`~.protocol.LEDGER_CLOSE`, whose payloads
are those of the Updates of the same meaning (``on_fill_update``,
``cancel_reservation``, ``close_position``) and which run the very same steps
under the same lock: one total order with every Update. A signal has no answer,
so what the core refuses (a malformed or unknown fill, a duplicate fill id, a
cancel with nothing left to release) is logged and kept for the ``ledger`` query
(counts by outcome and the last refusals, both kept across continue-as-new), and
never fails the workflow; ``policy worker --metrics-port`` exports the counts
(``policy_engine_ledger_signals_total``). A fill signalled twice is counted once
(its fill id), so the ledger may re-send after a doubt.

:class:`Ledger` is the control workflow's collaborator that judges and counts them
(the workflow declares the three signals and the query and hands each to it);
:func:`report` is what a ledger workflow calls; :class:`ExecutionLedgerWorkflow`
is the example: it keeps its own book of executions and forwards each to the
authority.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from ..control.events import EventError, Record
from . import protocol as p
from .instrument import history_full

LEDGER_REFUSALS_KEPT = 100  # the last refusals the `ledger` query shows


Step = Callable[[dict[str, Any]], Awaitable[Record]]


class Ledger:
    """What the control workflow took from the execution ledger's signals. ``steps`` are
    the workflow's steps for ``fill``, ``cancel`` and ``close`` (its Update handlers: the
    signals run exactly what the Updates run); ``carried`` is what a previous run kept
    (:meth:`carry`)."""

    def __init__(self, steps: Mapping[str, Step], carried: Mapping[str, Any] | None = None) -> None:
        self._steps = dict(steps)
        carried = carried or {}
        self._counts: dict[str, int] = dict(carried.get("counts", {}))
        self._refused: deque[dict[str, Any]] = deque(
            carried.get("refused", []), maxlen=LEDGER_REFUSALS_KEPT
        )

    async def take(self, kind: str, payload: Any) -> None:
        """Run one signal's step; whatever the core refuses is counted, never raised."""
        # A signal handler that raises would fail the workflow task (or the workflow):
        # everything the core refuses is an outcome here, not an exception.
        try:
            if not isinstance(payload, dict):
                raise ValueError(f"a {kind} signal carries an object, not {type(payload).__name__}")
            record = await self._steps[kind](payload)
            status = str(record.get("status", "ok"))
            accepted = record.get("seq") is not None
        except (ApplicationError, EventError, ValueError, TypeError) as exc:
            status, accepted, record = "invalid", False, {"message": str(exc)}
        except Exception as exc:  # no payload may wedge the authority
            # Anything else is a defect, but a signal that raised would fail every retry
            # of the workflow task and stop the portfolio: it is counted and logged instead
            # (deterministically: the same history takes the same path on replay).
            status, accepted = "error", False
            record = {"message": f"{type(exc).__name__}: {exc}"}
            workflow.logger.error("ledger %s raised %s", kind, record["message"])
        key = f"{kind}:{status}"
        self._counts[key] = self._counts.get(key, 0) + 1
        if not accepted:
            iid = payload.get("intent_id") if isinstance(payload, dict) else None
            iid = iid if isinstance(iid, str) else None  # an id only when it is one
            refusal = {"kind": kind, "status": status, "intent_id": iid}
            message = record.get("message") or f"{kind} of {iid}: {status}, nothing changed"
            refusal["message"] = str(message)
            self._refused.append(refusal)
            workflow.logger.warning(
                "ledger %s for %s refused (%s): %s", kind, iid, status, refusal["message"]
            )

    def report(self) -> dict[str, Any]:
        """Counts by ``kind:status`` and the last refusals (kind, status, intent id,
        message), both kept across continue-as-new (the counts only grow)."""
        return {"counts": dict(sorted(self._counts.items())), "refused": list(self._refused)}

    def carry(self) -> dict[str, Any]:
        """What the next run starts from."""
        return {"counts": self._counts, "refused": list(self._refused)}


# --- what a ledger workflow calls ---------------------------------------------------------
SIGNALS = {"fill": p.LEDGER_FILL, "cancel": p.LEDGER_CANCEL, "close": p.LEDGER_CLOSE}


async def report(portfolio: str, kind: str, payload: Any) -> None:
    """From inside a workflow: signal ``portfolio``'s authority a ``fill`` (the
    ``on_fill_update`` payload), a ``cancel`` (``intent_id``, ``timestamp``) or a ``close``
    (``intent_id``, ``timestamp``, optional ``risk_abs`` and ``realized_pnl``). Stamp them
    with the execution's time; an event without one is stamped with the authority's."""
    if kind not in SIGNALS:
        raise ValueError(f"a ledger reports a fill, a cancel or a close, not {kind!r}")
    handle = workflow.get_external_workflow_handle(p.workflow_id(portfolio))
    await handle.signal(SIGNALS[kind], payload)


LEDGER_BOOK_KEPT = 1_000  # the executions a ledger run keeps (and carries) for its query


@workflow.defn(name="ExecutionLedgerWorkflow")
class ExecutionLedgerWorkflow:
    """The example execution ledger of one portfolio: the broker side signals it every
    execution (``execution``: an ``on_fill_update`` payload), cancel (``order_cancelled``)
    and close (``position_closed``); it keeps them in order and forwards each to the
    portfolio's authority. ``finish`` ends it; the ``executions`` query lists the last
    :data:`LEDGER_BOOK_KEPT`. Its history stays bounded: past ``max_history`` events (or
    when Temporal suggests it) it continues as new with the count and the last entries."""

    @workflow.init
    def __init__(
        self, portfolio: str, carry: dict[str, Any] | None = None, max_history: int = 10_000
    ) -> None:
        self.portfolio = portfolio
        self.book: deque[dict[str, Any]] = deque(maxlen=LEDGER_BOOK_KEPT)
        self.count = 0
        self.finished = False
        if carry is not None:
            self.book.extend(carry["book"])
            self.count = int(carry["count"])

    @workflow.run
    async def run(
        self, portfolio: str, carry: dict[str, Any] | None = None, max_history: int = 10_000
    ) -> int:
        await workflow.wait_condition(lambda: self.finished or history_full(max_history))
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not self.finished:
            more = {"book": list(self.book), "count": self.count}
            workflow.continue_as_new(args=[portfolio, more, max_history])
        return self.count

    @workflow.signal(name="execution")
    async def execution(self, fill: Any) -> None:
        await self._forward("fill", fill)

    @workflow.signal(name="order_cancelled")
    async def order_cancelled(self, request: Any) -> None:
        await self._forward("cancel", request)

    @workflow.signal(name="position_closed")
    async def position_closed(self, request: Any) -> None:
        await self._forward("close", request)

    async def _forward(self, kind: str, payload: Any) -> None:
        # Kept as received (the authority judges it), forwarded in the order received.
        self.book.append({"kind": kind, "payload": payload})
        self.count += 1
        await report(self.portfolio, kind, payload)

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.finished = True

    @workflow.query(name="executions")
    def executions(self) -> list[dict[str, Any]]:
        return list(self.book)


__all__ = [
    "LEDGER_BOOK_KEPT",
    "LEDGER_REFUSALS_KEPT",
    "SIGNALS",
    "ExecutionLedgerWorkflow",
    "Ledger",
    "report",
]
