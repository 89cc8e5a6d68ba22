"""Temporal's own floor for benchmarks/temporal.py: a workflow whose Update does nothing.

``NoopWorkflow.noop`` takes the intent ``request_allocation`` takes and returns a
decision recorded from a real run, so both Updates carry the same payloads and the
difference between them is the authority's own work.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow


@workflow.defn(name="NoopWorkflow")
class NoopWorkflow:
    @workflow.init
    def __init__(self, reply: dict[str, Any]) -> None:
        self._reply = reply

    @workflow.run
    async def run(self, reply: dict[str, Any]) -> None:
        await workflow.wait_condition(lambda: False)  # until terminated

    @workflow.update(name="noop")
    async def noop(self, intent: dict[str, Any]) -> dict[str, Any]:
        return self._reply
