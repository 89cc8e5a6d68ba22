"""``policy worker --resume`` / ``--new-portfolio`` as real processes on a real server.

A portfolio whose workflow was terminated while it held live risk is never started
empty by a plain ``policy worker``: it exits 2 with one line naming both options.
``--resume`` brings back the exact state (a re-sent intent gets its first decision and
is not reserved twice); ``--new-portfolio`` discards the book and starts at ``--equity``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from typing import Any

from temporalio.client import Client

from policy_engine.temporal import PortfolioClient

from support.control import intent
from support.processes import POLICY, POLICY_CLI, ready_line, worker

NAME, QUEUE = "cli-resume", "tq-cli-resume"
FLAGS = ("--task-queue", QUEUE)
PLAIN = ("--equity", "100000", *FLAGS)  # no --resume, no --new-portfolio


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM: the worker stops cleanly (exit 0) and says so."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.endswith("worker stopped\n")


async def _totals(caller: PortfolioClient) -> dict[str, Any]:
    totals: dict[str, Any] = (await caller.get_portfolio_state())["totals"]
    return totals


def test_a_terminated_portfolio_is_refused_then_resumed_or_discarded_through_the_cli(
    temporal_address: str, reaper: list[subprocess.Popen[str]]
) -> None:
    first_intent = intent("cli-t0", "BREAKOUT", "BTC-USD", 300, at=0)

    async def serve_then_terminate() -> tuple[dict[str, Any], dict[str, Any]]:
        proc = worker(temporal_address, NAME, *PLAIN)
        reaper.append(proc)
        assert "workflow started" in await ready_line(proc)
        caller = PortfolioClient(await Client.connect(temporal_address), NAME, QUEUE)
        decision = await caller.request_allocation(first_intent)
        assert decision.approved
        assert (
            await caller.request_allocation(intent("cli-t1", "SCALPER", "ETH-USD", 200))
        ).approved
        held = await caller.snapshot()
        assert (await _totals(caller))["heat"] == 500  # live risk
        await caller.client.get_workflow_handle(caller.workflow_id).terminate("operator")
        _stop(proc)
        return held, decision.model_dump()

    held, first = asyncio.run(serve_then_terminate())

    # A plain start would forget the book: refused, one line naming both ways on.
    refused = subprocess.run(
        [POLICY_CLI, "worker", POLICY, "--address", temporal_address, "--portfolio", NAME, *PLAIN],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith(
        f"error: portfolio-control/{NAME}: its last run terminated"
    )
    assert "--resume" in refused.stderr and "--new-portfolio" in refused.stderr

    async def resume() -> None:
        proc = worker(temporal_address, NAME, "--resume", *FLAGS)  # its equity is in the state
        reaper.append(proc)
        assert "workflow started" in await ready_line(proc)
        caller = PortfolioClient(await Client.connect(temporal_address), NAME, QUEUE)
        assert await caller.snapshot() == held
        retry = await caller.request_allocation(first_intent)  # re-sent after the crash
        assert retry.model_dump() == first
        assert (await _totals(caller))["heat"] == 500  # reserved once, not twice
        await caller.client.get_workflow_handle(caller.workflow_id).terminate("operator")
        _stop(proc)

    asyncio.run(resume())

    async def discard() -> None:
        proc = worker(temporal_address, NAME, "--new-portfolio", "--equity", "50000", *FLAGS)
        reaper.append(proc)
        assert "workflow started" in await ready_line(proc)
        caller = PortfolioClient(await Client.connect(temporal_address), NAME, QUEUE)
        state = await caller.get_portfolio_state()
        assert state["equity"] == 50_000 and state["totals"]["heat"] == 0
        assert state["totals"]["active_trades"] == 0
        await caller.client.get_workflow_handle(caller.workflow_id).terminate("test over")
        _stop(proc)

    asyncio.run(discard())
