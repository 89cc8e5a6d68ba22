"""The activity through which instrument workflows ask the authority for risk.

A workflow cannot call another workflow's Update, so
:class:`~.instrument.InstrumentWorkflow` runs this activity, which calls
``request_allocation`` with a :class:`~.client.PortfolioClient` on the worker's
own Temporal client (injected). The Update id comes from the intent's id and
content, so an activity retry never makes a second decision.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.client import Client

from .client import PortfolioClient
from .instrument import REQUEST_ACTIVITY


class AllocationActivities:
    """Activities bound to one Temporal client (register ``request_allocation``)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn(name=REQUEST_ACTIVITY)
    async def request_allocation(self, portfolio: str, intent: dict[str, Any]) -> dict[str, Any]:
        """The AllocationDecision of ``intent`` from ``portfolio``'s control workflow."""
        caller = PortfolioClient(self._client, portfolio, self._task_queue)
        decision = await caller.request_allocation(intent)
        return decision.model_dump(mode="json")


__all__ = ["AllocationActivities"]
