"""A minimal workflow that runs the pure control core inside Temporal's default sandbox.

It proves the core needs nothing the sandbox forbids: the worker that runs it
passes through only PyYAML (whose C loader builds nodes from classes it
imported itself), so every ``policy_engine`` module is re-imported and run
under the sandbox's restrictions (no file, clock or network access).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio import workflow
from temporalio.worker.workflow_sandbox import SandboxRestrictions

with workflow.unsafe.imports_passed_through():
    import yaml  # noqa: F401  (passed through, see the module docstring)

from policy_engine.control.core import ControlCore
from policy_engine.diagnostics import PolicyError
from policy_engine.engine.policy import load_policy_text


def core_restrictions(*, zones: bool) -> SandboxRestrictions:
    """The default sandbox restrictions with PyYAML passed through; with ``zones``, also
    without the restriction on `zoneinfo.ZoneInfo` (its `clear_cache`, `from_file`,
    `reset_tzpath`, none of which the core calls), which otherwise wraps every zone in a
    proxy that `datetime` refuses: a policy with a `timezone` other than UTC needs it."""
    restrictions = SandboxRestrictions.default
    if zones:
        members = restrictions.invalid_module_members
        children = {k: v for k, v in members.children.items() if k != "zoneinfo"}
        restrictions = dataclasses.replace(
            restrictions,
            invalid_module_members=dataclasses.replace(members, children=children),
        )
    return restrictions.with_passthrough_modules("yaml", "_yaml")


@workflow.defn(sandboxed=True)
class CoreInSandbox:
    """Load a policy from its text and apply events; returns every record and the snapshot
    (or, for a policy that does not load, the error)."""

    @workflow.run
    async def run(self, policy_text: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            core = ControlCore(load_policy_text(policy_text, "policy.yaml"))
        except PolicyError as exc:  # a policy the sandbox cannot load says why
            return {"error": str(exc)}
        records: list[dict[str, Any]] = []
        for event in events:
            records.extend(core.apply(event).records)
        return {"records": records, "snapshot": core.snapshot()}
