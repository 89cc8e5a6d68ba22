"""Metrics of the shared control plane: what callers count, what ``policy worker`` serves.

A :class:`PortfolioClient` given :class:`ControlMetrics` counts each decision it
receives (with the round trip) and each lifecycle record; ``policy worker
--metrics-port`` serves the workflow's live state, read with a Query at every
scrape, follows a reload, and still answers (``policy_engine_live_up 0``) when
the workflow is gone.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client

from policy_engine.control.metrics import ControlMetrics
from policy_engine.temporal import PortfolioClient

from support.control import PORTFOLIO_POLICY, control_plane, eventually, intent, stamp

ROOT = Path(__file__).resolve().parent.parent
POLICY_CLI = str(Path(sys.executable).parent / "policy")


def test_a_client_counts_the_decisions_and_records_it_receives(temporal_address: str) -> None:
    registry = CollectorRegistry()

    async def scenario() -> None:
        async with control_plane(temporal_address, "client-metrics") as caller:
            caller.metrics = ControlMetrics(registry)
            a = await caller.request_allocation(intent("m1", "SCALPER", "BTC-USD", 400))
            b = await caller.request_allocation(intent("m2", "SCALPER", "ETH-USD", 400, at=1))
            assert a.approved and b.approved
            bad = await caller.request_allocation({"intent_id": "m3", "strategy": "SCALPER"})
            assert bad.decision_code == "rejected_invalid_intent"
            fill = {
                "intent_id": "m1",
                "fill_id": "f1",
                "filled_risk_abs": 150,
                "timestamp": stamp(2),
            }
            assert (await caller.on_fill_update(fill))["status"] == "committed"
            assert (await caller.close_position("m1", stamp(3)))["status"] == "closed"
            # a later close of the ended trade is a no-op (the same call again, same time
            # and content, would be a retry answered with the first record)
            assert (await caller.close_position("m1", stamp(4)))["status"] == "closed"

    asyncio.run(scenario())
    value = registry.get_sample_value
    assert value("policy_engine_decisions_total", _labels("approved_full", "none")) == 2
    assert value("policy_engine_decisions_total", _labels("rejected_invalid_intent", "none")) == 1
    assert value("policy_engine_decision_seconds_count") == 3
    assert value("policy_engine_fills_total", {"status": "committed"}) == 1
    assert value("policy_engine_filled_risk_total", {"status": "committed"}) == 150
    assert value("policy_engine_closes_total", {"status": "closed"}) == 2
    assert value("policy_engine_released_risk_total", {"reason": "closed"}) == 250
    assert value("policy_engine_closed_risk_total") == 150


def _labels(code: str, rule: str) -> dict[str, str]:
    return {"code": code, "rule": rule, "mode": "normal"}


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_worker_serves_the_live_state_follows_a_reload_and_survives_the_workflow(
    temporal_address: str, tmp_path: Path
) -> None:
    portfolio, queue = "worker-metrics", "tq-worker-metrics"
    policy_file = tmp_path / "portfolio.yaml"
    policy_file.write_text(PORTFOLIO_POLICY)
    worker = subprocess.Popen(
        [
            *(POLICY_CLI, "worker", str(policy_file), "--address", temporal_address),
            *("--portfolio", portfolio, "--task-queue", queue, "--equity", "100000"),
            *("--metrics-port", "0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        lines = [worker.stdout.readline() for _ in range(2)]
        assert "workflow started" in lines[0], (lines, worker.stderr and worker.stderr.read())
        url = lines[1].split()[-1]
        assert lines[1].startswith("metrics on http://127.0.0.1:") and url.endswith("/metrics")

        async def scenario() -> None:
            caller = PortfolioClient(await Client.connect(temporal_address), portfolio, queue)
            d = await caller.request_allocation(intent("w1", "SCALPER", "BTC-USD", 700))
            assert d.approved
            seen = await asyncio.to_thread(_scrape, url)
            portfolio_scope = (("bucket", "portfolio"), ("scope", "portfolio"))
            assert seen[("policy_engine_live_up", ())] == 1
            assert seen[("policy_engine_reserved_risk", portfolio_scope)] == 700
            assert seen[("policy_engine_equity", ())] == 100_000
            assert seen[("policy_engine_mode", (("mode", "normal"),))] == 1
            caps = {k: v for k, v in seen.items() if k[0] == "policy_engine_heat_cap"}
            cap = ("policy_engine_heat_cap", (("bucket", "portfolio"), ("rule", "portfolio-heat")))
            assert caps[(cap[0], (*cap[1], ("scope", "portfolio")))] == 6_000  # 6% of equity
            info = [k for k in seen if k[0] == "policy_engine_policy_info"]
            assert ("version", "1") in info[0][1]

            v2 = PORTFOLIO_POLICY.replace("version: 1", "version: 2")
            assert (await caller.reload(v2))["ok"] is True
            seen = await asyncio.to_thread(_scrape, url)
            info = [k for k in seen if k[0] == "policy_engine_policy_info"]
            assert ("version", "2") in info[0][1]

            # A workflow that cannot be queried (here: deleted) leaves the counters served.
            await caller.client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(
                    namespace="default",
                    workflow_execution=WorkflowExecution(workflow_id=caller.workflow_id),
                )
            )

            async def unreadable() -> bool:
                seen = await asyncio.to_thread(_scrape, url)
                return seen[("policy_engine_live_up", ())] == 0

            await eventually(unreadable, "a scrape that cannot read the deleted workflow")
            seen = await asyncio.to_thread(_scrape, url)
            assert not [k for k in seen if k[0] == "policy_engine_reserved_risk"]

        asyncio.run(scenario())
    finally:
        worker.terminate()
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "worker stopped" in out, err


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_the_worker_refuses_a_port_that_is_not_one(port: str) -> None:
    result = subprocess.run(
        [
            *(POLICY_CLI, "worker", str(ROOT / "policies" / "portfolio.yaml")),
            *("--portfolio", "p", "--metrics-port", port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--metrics-port" in result.stderr
