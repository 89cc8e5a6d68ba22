"""Starting a portfolio's control workflow without ever reusing a portfolio implicitly.

The workflow id of a portfolio is fixed (``portfolio-control/<name>``), and Temporal
lets a new run reuse the id of a closed one. A portfolio whose last run was
terminated, failed, cancelled or timed out held a book (live risk, reservations,
an idempotency memory): starting it afresh would forget all of it, approve a re-sent
intent a second time, and read as success. So :func:`start_workflow`:

- starts a portfolio that never ran, or whose last run completed normally;
- leaves a running one alone (``False``);
- refuses a closed one with :class:`~.errors.PortfolioEnded`, unless told
  ``resume`` (continue from the exact state its history holds: the closed run's
  state, read with the ``carry`` Query, which a worker answers by replaying that
  run's history, then started as if it had continued as new) or ``new_portfolio``
  (the old book is discarded on purpose).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ..engine.policy import Policy
from . import protocol as p
from .calls import Calls
from .errors import ControlPlaneError, PortfolioEnded, PortfolioNotRunning, rpc_error

# A run that ended on its own (it never does today, but a future version may): its state
# was handed on or deliberately finished, so a fresh start reuses nothing by accident.
_ENDED_NORMALLY = {WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW}


async def start_workflow(
    calls: Calls,
    start: p.ControlStart,
    policy: Policy,
    *,
    task_timeout: float | None,
    resume: bool,
    new_portfolio: bool,
) -> bool:
    """Start ``start.portfolio``'s workflow as the module docstring says; ``True`` if this
    call started a run."""
    wid = calls.workflow_id
    try:
        info = await calls.handle.describe(rpc_timeout=calls.timeout)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise rpc_error(wid, exc) from None
        if resume:
            raise PortfolioNotRunning(f"{wid} has no history to resume from") from None
        return await _start(calls, start, policy, task_timeout)
    status = info.status
    if status == WorkflowExecutionStatus.RUNNING:
        return False
    said = "ended" if status is None else status.name.lower()
    if resume:
        closed = calls.client.get_workflow_handle(wid, run_id=info.run_id)
        try:
            carry: dict[str, Any] = await calls.query(p.CARRY, handle=closed)
        except ControlPlaneError as exc:  # no worker replays it: say so, start nothing
            raise PortfolioEnded(
                f"{wid}: cannot read the state its last run ended with ({exc}); a worker "
                "replays that run to answer: run the version that recorded it (a worker "
                "whose decision logic differs fails the replay), or --new-portfolio"
            ) from None
        resumed = dataclasses.replace(start, carry=carry)
        return await _start(calls, resumed, policy, task_timeout)
    if new_portfolio or status in _ENDED_NORMALLY:
        return await _start(calls, start, policy, task_timeout)
    raise PortfolioEnded(
        f"{wid}: its last run {said}, holding a book: start it with --resume to continue "
        "from the state its history holds, or --new-portfolio to discard that book"
    )


async def _start(
    calls: Calls, start: p.ControlStart, policy: Policy, task_timeout: float | None
) -> bool:
    try:
        await calls.client.start_workflow(
            p.WORKFLOW_TYPE,
            start,
            id=calls.workflow_id,
            task_queue=calls.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            task_timeout=None if task_timeout is None else timedelta(seconds=task_timeout),
            memo={"policy": dict(policy.ref.model_dump()), "portfolio": start.portfolio},
        )
    except WorkflowAlreadyStartedError:
        return False
    except RPCError as exc:
        raise rpc_error(calls.workflow_id, exc) from None
    return True


__all__ = ["start_workflow"]
