"""A Temporal run continued from an older release's snapshot (issue 17, "Safe upgrades").

A workflow continued as new by an older release carries that release's snapshot format in
its input; the new release's worker restores it through the migrations. Here a real run's
carry has its snapshot replaced by the format-1 fixture (the oldest, so every step runs),
a run is started from it on a real dev server, and it reports the state format 1's release
reported and keeps deciding.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from policy_engine.temporal import PortfolioClient
from policy_engine.temporal import protocol as p

from support.control import control_plane

SNAPSHOTS = Path(__file__).resolve().parent / "fixtures" / "snapshots"


def _subset(old: Any, new: Any) -> bool:
    """Whether ``new`` equals ``old`` on every field ``old`` has."""
    if isinstance(old, dict) and isinstance(new, dict):
        # From format 10 on a bucket equal to a fresh one (all zeros) is no longer listed.
        return all(
            _subset(v, new[k]) if k in new else isinstance(v, dict) and not any(v.values())
            for k, v in old.items()
        )
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return all(_subset(a, b) for a, b in zip(old, new, strict=True))
    return bool(old == new)


def test_a_run_continued_from_a_format_1_snapshot_restores_and_decides(
    temporal_address: str,
) -> None:
    old = json.loads((SNAPSHOTS / "format-1.json").read_text())
    reported = json.loads((SNAPSHOTS / "format-1.state.json").read_text())

    async def scenario() -> None:
        name = f"old-{uuid.uuid4().hex[:8]}"
        async with control_plane(temporal_address, name, policy=old["policy"]["source"]) as first:
            carry: dict[str, Any] = await first.calls.query(p.CARRY)
            carry["snapshot"] = p.pack(old)  # what the older release carried over
            client = await Client.connect(temporal_address)
            later = PortfolioClient(client, f"{name}-continued", task_queue=first.task_queue)
            start = p.ControlStart(
                portfolio=later.portfolio, policy_path="policy.yaml", carry=carry
            )
            await client.start_workflow(
                p.WORKFLOW_TYPE, start, id=later.workflow_id, task_queue=later.task_queue
            )
            try:
                state = await later.get_portfolio_state()
                assert _subset(reported, state), state
                decision = await later.request_allocation(
                    {
                        "intent_id": "b1",
                        "strategy": "SCALPER",
                        "symbol": "SOL-USD",
                        "side": "long",
                        "requested_risk_abs": 100,
                        "timestamp": "2026-01-05T09:01:00+00:00",
                    }
                )
                assert decision.approved
                after = (await later.get_portfolio_state())["totals"]
                assert after["heat"] == reported["totals"]["heat"] + decision.approved_risk_abs
            finally:
                await client.get_workflow_handle(later.workflow_id).terminate("test over")

    asyncio.run(scenario())
