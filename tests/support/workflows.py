"""A minimal workflow that runs the pure control core inside Temporal's default sandbox.

It proves the core needs nothing the sandbox forbids: the worker that runs it
passes through only PyYAML (whose C loader builds nodes from classes it
imported itself), so every ``policy_engine`` module is re-imported and run
under the sandbox's restrictions (no file, clock or network access).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import yaml  # noqa: F401  (passed through, see the module docstring)

from policy_engine.control.core import ControlCore
from policy_engine.engine.policy import load_policy_text


@workflow.defn(sandboxed=True)
class CoreInSandbox:
    """Load a policy from its text and apply events; returns every record."""

    @workflow.run
    async def run(self, policy_text: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        core = ControlCore(load_policy_text(policy_text, "policy.yaml"))
        records: list[dict[str, Any]] = []
        for event in events:
            records.extend(core.apply(event).records)
        return {"records": records, "snapshot": core.snapshot()}
