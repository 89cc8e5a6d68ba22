"""The pure control core runs inside Temporal's default workflow sandbox, unchanged.

A real dev server (started from the installed `temporal` binary), a real
worker with the default sandboxed runner, and the core re-imported inside the
sandbox: the records it produces there are exactly the records it produces in
this process, and so is its snapshot.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from policy_engine.control.core import ControlCore
from policy_engine.control.events import canonical
from policy_engine.engine.policy import load_policy_text

from support.workflows import CoreInSandbox

ROOT = Path(__file__).resolve().parent.parent


def _events() -> list[dict[str, Any]]:
    lines = (ROOT / "examples" / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


async def _run_in_workflow(address: str, text: str, events: list[dict[str, Any]]) -> Any:
    client = await Client.connect(address)
    # The default restrictions; only PyYAML is passed through (see support/workflows.py).
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("yaml", "_yaml")
    )
    async with Worker(
        client, task_queue="core-in-sandbox", workflows=[CoreInSandbox], workflow_runner=runner
    ):
        return await client.execute_workflow(
            CoreInSandbox.run,
            args=[text, events],
            id="core-in-sandbox",
            task_queue="core-in-sandbox",
        )


def test_the_core_gives_the_same_records_inside_the_workflow_sandbox(
    temporal_address: str,
) -> None:
    text = (ROOT / "policies" / "portfolio.yaml").read_text()
    events = _events()
    result = asyncio.run(_run_in_workflow(temporal_address, text, events))

    core = ControlCore(load_policy_text(text, "policy.yaml"))
    here: list[dict[str, Any]] = []
    for event in events:
        here.extend(core.apply(event).records)
    assert [canonical(r) for r in result["records"]] == [canonical(r) for r in here]
    assert result["snapshot"] == core.snapshot()
    assert sum(1 for r in here if r["kind"] == "decision") == 22
