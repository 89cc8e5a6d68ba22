"""Helpers for the Temporal control-plane tests: a worker, intents, and in-process replay.

The truth the tests compare the workflow with is the pure core run in this
process over the workflow's own journal (its ``journal`` query): the same
events in the same order must give exactly the same decisions and state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from policy_engine.control.core import ControlCore
from policy_engine.control.events import IntentEvent, parse_intent, policy_from_event
from policy_engine.temporal import PortfolioClient, create_worker

ROOT = Path(__file__).resolve().parent.parent.parent
PORTFOLIO_POLICY = (ROOT / "policies" / "portfolio.yaml").read_text()
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def stamp(seconds: float) -> str:
    """An event timestamp ``seconds`` after T0."""
    return (T0 + timedelta(seconds=seconds)).isoformat()


def intent(
    intent_id: str,
    strategy: str,
    symbol: str,
    risk: float,
    *,
    at: float = 0.0,
    side: str = "long",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "intent_id": intent_id,
        "strategy": strategy,
        "symbol": symbol,
        "side": side,
        "requested_risk_abs": risk,
        "timestamp": stamp(at),
        **extra,
    }


@contextlib.asynccontextmanager
async def control_plane(
    address: str,
    portfolio: str,
    *,
    policy: str = PORTFOLIO_POLICY,
    equity: float = 100_000,
    **start: Any,
) -> AsyncIterator[PortfolioClient]:
    """A worker on its own task queue and the portfolio's workflow, started; yields a
    client. The workflow is terminated at the end (the dev server outlives the test)."""
    client = await Client.connect(address)
    caller = PortfolioClient(client, portfolio, task_queue=f"tq-{portfolio}")
    async with create_worker(client, caller.task_queue):
        assert await caller.start(policy, equity=equity, **start)
        try:
            yield caller
        finally:
            await client.get_workflow_handle(caller.workflow_id).terminate("test over")


def replay_journal(
    events: Iterable[Mapping[str, Any]], origin: Mapping[str, Any] | None = None
) -> tuple[ControlCore, dict[str, dict[str, Any]]]:
    """Run a journal through a fresh core in this process (from ``origin``, a snapshot,
    when the journal is a later run's): the core, and every intent's decision as JSON by
    intent id."""
    decisions: dict[str, dict[str, Any]] = {}
    it = iter(events)
    if origin is None:
        opening = next(it)
        assert opening["type"] == "policy"
        core = ControlCore(policy_from_event(opening), seq=1)
    else:
        core = ControlCore.restore(origin)
    for event in it:
        if event["type"] == "intent":
            # parsed with the policy's intent model: its declared inputs included
            intent = parse_intent(event, core.policy.intent_model)
            decision = core.apply(IntentEvent(intent), decide=True).decision
            assert decision is not None
            decisions[decision.intent_id] = decision.model_dump(mode="json")
        else:
            core.apply(event)
    return core, decisions


def over_allocations(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Replay a journal on portfolio.yaml and report every approval that left a limit
    exceeded: strategy max_trades, position count, heat, symbol or cohort cap."""
    it = iter(events)
    core = ControlCore(policy_from_event(next(it)), seq=1)
    max_trades = {"SCALPER": 2, "MOMENTUM": 1, "BREAKOUT": 3}
    problems: list[str] = []
    for n, event in enumerate(it, 1):
        if event["type"] != "intent":
            core.apply(event)
            continue
        decision = core.apply(IntentEvent(parse_intent(event)), decide=True).decision
        assert decision is not None
        if not decision.approved:
            continue
        state = core.state
        mult = {"normal": 1.0, "defensive": 0.5, "risk_off": 0.0}[core.mode_info().name]
        where = f"event {n} ({decision.intent_id})"
        if state.active_trades > 5:
            problems.append(f"{where}: {state.active_trades} live trades > 5")
        if state.heat > 0.06 * state.equity * mult + 1e-6:
            problems.append(f"{where}: portfolio heat {state.heat}")
        for name, bucket in state.strategies.items():
            if bucket.active_trades > max_trades[name]:
                problems.append(f"{where}: {name} has {bucket.active_trades} trades")
        for name, bucket in state.symbols.items():
            if bucket.heat > 1500 * mult + 1e-6:
                problems.append(f"{where}: symbol {name} heat {bucket.heat}")
        for name, bucket in state.cohorts.items():
            if bucket.heat > 2500 * mult + 1e-6:
                problems.append(f"{where}: cohort {name} heat {bucket.heat}")
    return problems


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0
) -> None:
    """Wait until ``check()`` holds (polled), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


STRATEGIES = ("SCALPER", "MOMENTUM", "BREAKOUT")
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "AVAX-USD", "LINK-USD", "DOGE-USD")


async def drive(caller: PortfolioClient, prefix: str, count: int) -> list[dict[str, Any]]:
    """One trading loop: ``count`` intents; an approved one is half filled, and every
    other one closed, so slots and headroom keep changing hands. Returns the decisions."""
    seed = sum(map(ord, prefix))
    decisions = []
    for k in range(count):
        iid = f"{prefix}-{k}"
        request = intent(
            iid,
            STRATEGIES[(seed + k) % 3],
            SYMBOLS[(seed + 2 * k) % 6],
            200 + 50 * ((seed + k) % 5),
            at=k,
        )
        decision = await caller.request_allocation(request)
        decisions.append(decision.model_dump(mode="json"))
        if decision.approved and decision.approved_risk_abs > 0:
            half = round(decision.approved_risk_abs / 2, 6)
            fill = {
                "intent_id": iid,
                "fill_id": "f1",
                "filled_risk_abs": half,
                "timestamp": stamp(k),
            }
            assert (await caller.on_fill_update(fill))["status"] == "committed"
            if k % 2:
                assert (await caller.close_position(iid, stamp(k)))["status"] == "closed"
    return decisions
