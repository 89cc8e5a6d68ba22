"""The pure control core runs inside Temporal's default workflow sandbox, unchanged.

A real dev server (started from the installed `temporal` binary), a real
worker with the default sandboxed runner, and the core re-imported inside the
sandbox: the records it produces there are exactly the records it produces in
this process, and so is its snapshot. A policy in a time zone needs one
restriction lifted (`zoneinfo.ZoneInfo`'s, see support/workflows.py); under the
default restrictions such a policy is refused when it loads, with the reason.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from policy_engine.control.core import ControlCore
from policy_engine.control.events import canonical
from policy_engine.engine.policy import load_policy_text

from support.workflows import CoreInSandbox, core_restrictions

ROOT = Path(__file__).resolve().parent.parent


def _events(name: str = "events.jsonl") -> list[dict[str, Any]]:
    lines = (ROOT / "examples" / name).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


async def _run_in_workflow(
    address: str,
    text: str,
    events: list[dict[str, Any]],
    *,
    zones: bool = False,
) -> Any:
    client = await Client.connect(address)
    # The default restrictions; PyYAML passed through, and with `zones` the restriction on
    # zoneinfo lifted (see support/workflows.py).
    runner = SandboxedWorkflowRunner(restrictions=core_restrictions(zones=zones))
    async with Worker(
        client, task_queue="core-in-sandbox", workflows=[CoreInSandbox], workflow_runner=runner
    ):
        return await client.execute_workflow(
            CoreInSandbox.run,
            args=[text, events],
            id="core-in-sandbox",
            task_queue="core-in-sandbox",
        )


@pytest.mark.parametrize(
    ("policy", "stream", "decisions"),
    [("portfolio.yaml", "events.jsonl", 22), ("day_trading.yaml", "day_trading.jsonl", 18)],
)
def test_the_core_gives_the_same_records_inside_the_workflow_sandbox(
    temporal_address: str, policy: str, stream: str, decisions: int
) -> None:
    """Also for a policy in a time zone (zoneinfo inside the sandbox), with inputs, scopes,
    windows, a latch and its reset, and a trading-day rollover."""
    text = (ROOT / "policies" / policy).read_text()
    events = _events(stream)
    zones = policy != "portfolio.yaml"  # the portfolio policy reads UTC: no zone database
    result = asyncio.run(_run_in_workflow(temporal_address, text, events, zones=zones))

    core = ControlCore(load_policy_text(text, "policy.yaml"))
    here: list[dict[str, Any]] = []
    for event in events:
        here.extend(core.apply(event).records)
    assert [canonical(r) for r in result["records"]] == [canonical(r) for r in here]
    assert result["snapshot"] == core.snapshot()
    assert sum(1 for r in here if r["kind"] == "decision") == decisions


def test_a_zoned_policy_under_the_default_restrictions_says_why_it_cannot_load(
    temporal_address: str,
) -> None:
    text = (ROOT / "policies" / "day_trading.yaml").read_text()
    result = asyncio.run(_run_in_workflow(temporal_address, text, [], zones=False))
    assert result["error"] == (
        "policy.yaml:11:11: PT308 `timezone`: time zone `America/New_York` cannot be used "
        "here: this interpreter wraps `zoneinfo` (in a Temporal workflow, lift the "
        "sandbox's `zoneinfo` restriction)"
    )
