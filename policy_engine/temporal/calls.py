"""How a client talks to one control workflow: bounded concurrency, retries to a deadline.

:class:`Calls` is the transport under :class:`~.client.PortfolioClient`:

- Concurrency: Temporal admits at most 10 in-flight Updates per workflow (the server's
  ``limit.workflowExecution.maxInFlightUpdates``) and answers more with
  ``RESOURCE_EXHAUSTED``. A client keeps at most ``concurrency`` (default
  :data:`DEFAULT_CONCURRENCY`) of its own Updates in flight and queues the rest in
  order, so one process with many callers never trips the limit. Several processes
  share the 10: their excess is retried like any refusal below. One workflow decides
  one portfolio in one total order (a few hundred decisions a second, see
  benchmarks/README.md); to scale out, run one workflow per portfolio or sub-book.
- Retries: an Update that gets no answer (the RPC timed out, the update was aborted
  because a worker died holding it, the server is briefly unavailable or busy) is
  retried with the SAME Update id until ``deadline`` seconds (default 30) have passed
  since it got its slot: the workflow answers a repeated id with its first outcome,
  so a retry never applies twice. Then :class:`~.errors.ControlPlaneUnavailable` says
  what happened, how often, and for how long.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from .errors import (
    UNAVAILABLE,
    ControlPlaneError,
    ControlPlaneUnavailable,
    RequestRefused,
    RetryTooLate,
    failure_message,
    reason_of,
    rpc_error,
)

DEFAULT_CONCURRENCY = 8  # below the server's 10 in-flight Updates per workflow
DEFAULT_DEADLINE = 30.0  # seconds a mutating call keeps retrying with the same id
_FIRST_BACKOFF, _LAST_BACKOFF = 0.1, 2.0


class Calls:
    """Updates, Queries and Signals to one workflow (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        workflow_id: str,
        task_queue: str,
        *,
        timeout: float,
        deadline: float = DEFAULT_DEADLINE,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self.task_queue = task_queue
        self.timeout = timedelta(seconds=timeout)
        self.deadline = deadline
        self.concurrency = max(1, concurrency)
        self._slots = asyncio.Semaphore(self.concurrency)
        self.in_flight = 0
        self.peak_in_flight = 0  # the most Updates this client ever had in flight
        # No run id: every call follows the workflow across continue-as-new.
        self.handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)

    async def update(self, name: str, arg: Any, update_id: str) -> dict[str, Any]:
        """One Update (``arg`` ``None``: no argument), retried with the same id until an
        answer comes back or the deadline passes."""
        args = [] if arg is None else [arg]
        async with self._slots:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return await self._until_answered(name, args, update_id)
            finally:
                self.in_flight -= 1

    async def _until_answered(self, name: str, args: list[Any], update_id: str) -> dict[str, Any]:
        end = time.monotonic() + self.deadline
        attempts, backoff, what = 0, _FIRST_BACKOFF, "no answer"
        while True:
            attempts += 1
            left = end - time.monotonic()
            wait = timedelta(seconds=max(1.0, min(self.timeout.total_seconds(), left)))
            try:
                result: dict[str, Any] = await self.handle.execute_update(
                    name, args=args, id=update_id, result_type=dict, rpc_timeout=wait
                )
                return result
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                _reraise_cancellation()
                what = f"no answer within {wait.total_seconds():g} s (no worker took the task)"
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError) and cause.type == "RetryTooLate":
                    raise RetryTooLate(f"{self.workflow_id}: {failure_message(exc)}") from None
                raise RequestRefused(failure_message(exc)) from None
            except RPCError as exc:
                if exc.status not in UNAVAILABLE:
                    raise rpc_error(self.workflow_id, exc) from None
                what = _unanswered(exc)
            left = end - time.monotonic()
            if left <= 0:
                raise ControlPlaneUnavailable(
                    f"{self.workflow_id}: {name} got no answer in {self.deadline:g} s "
                    f"({attempts} attempts with Update id {update_id}; last: {what}); is the "
                    f"Temporal server up and a `policy worker` running on task queue "
                    f"{self.task_queue!r}? Retrying with the same id is safe"
                )
            await asyncio.sleep(min(backoff, left))  # the client's retry pause, not a test's
            backoff = min(backoff * 2, _LAST_BACKOFF)

    async def drain(self) -> None:
        """Wait until no Update of this client is in flight or queued."""
        for _ in range(self.concurrency):
            await self._slots.acquire()
        for _ in range(self.concurrency):
            self._slots.release()

    async def query(
        self, name: str, *args: Any, handle: WorkflowHandle[Any, Any] | None = None
    ) -> Any:
        try:
            return await (handle or self.handle).query(
                name, args=list(args), rpc_timeout=self.timeout
            )
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
            raise ControlPlaneError(f"{self.workflow_id}: {name}: {exc}") from None
        except RPCError as exc:
            raise rpc_error(self.workflow_id, exc) from None

    async def signal(self, name: str, arg: Any) -> None:
        try:
            await self.handle.signal(name, arg, rpc_timeout=self.timeout)
        except RPCError as exc:
            raise rpc_error(self.workflow_id, exc) from None


def _unanswered(exc: RPCError) -> str:
    """What an RPC failure worth a retry means, in a few words."""
    reason = reason_of(exc)
    if "aborted" in reason:
        return f"the update was aborted ({reason}): a worker stopped while holding it"
    if "exhausted" in reason.lower() or exc.status.name == "RESOURCE_EXHAUSTED":
        return f"the workflow is busy ({reason}): too many Updates in flight"
    return f"the Temporal server did not answer ({reason})"


def _reraise_cancellation() -> None:
    """The SDK reports our own cancellation as an RPC timeout: do not retry that."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_DEADLINE", "Calls"]
