"""Instrument and ledger workflows continue as new: their histories stay bounded (issue 17).

Every envelope signal and every execution is history; a symbol or ledger workflow
that lives for months would grow without bound. Past ``max_history`` events (or
when Temporal suggests it) each continues as new with its state: the symbol
workflow stays subscribed (the authority knows it by workflow id) and holds the
newest envelope, the ledger keeps its count and its last executions.
"""

from __future__ import annotations

import asyncio

from policy_engine.temporal import SymbolSpec, SymbolWorkflow
from policy_engine.temporal.ledger import ExecutionLedgerWorkflow

from support.control import control_plane, eventually, intent, stamp


def test_a_symbol_workflow_continues_as_new_and_stays_subscribed(temporal_address: str) -> None:
    portfolio = "bounded-symbol"

    async def scenario() -> None:
        async with control_plane(temporal_address, portfolio) as caller:
            spec = SymbolSpec(portfolio, "BTC-USD", "SCALPER", max_history=40)
            handle = await caller.client.start_workflow(
                SymbolWorkflow.run, spec, id=f"{portfolio}-btc", task_queue=caller.task_queue
            )
            first = (await handle.describe()).run_id
            await handle.execute_update("ready", result_type=dict)
            for k in range(12):  # envelope changes: each a signal in its history
                await caller.set_portfolio_mode("defensive" if k % 2 else None, "flip", stamp(k))

            async def continued() -> bool:
                return (await handle.describe()).run_id != first

            await eventually(continued, "the symbol workflow to continue as new", timeout=60)
            assert await caller.subscribers() == [handle.id]
            await caller.set_portfolio_mode("risk_off", "judge", stamp(20))

            async def holds_risk_off() -> bool:
                held = await handle.query("envelope")
                return bool(held) and held["envelope"]["portfolio_mode"] == "risk_off"

            await eventually(holds_risk_off, "the new run to hold risk_off")
            await handle.signal(SymbolWorkflow.finish)
            result = await handle.result()
            assert result["symbol"] == "BTC-USD"
            assert await caller.subscribers() == []

    asyncio.run(scenario())


def test_the_ledger_continues_as_new_with_its_count_and_last_executions(
    temporal_address: str,
) -> None:
    portfolio = "bounded-ledger"

    async def scenario() -> None:
        async with control_plane(temporal_address, portfolio) as caller:
            assert (
                await caller.request_allocation(intent("L1", "BREAKOUT", "ETH-USD", 300))
            ).approved
            ledger = await caller.client.start_workflow(
                "ExecutionLedgerWorkflow",
                args=[portfolio, None, 30],
                id=f"execution-ledger/{portfolio}",
                task_queue=caller.task_queue,
            )
            first = (await ledger.describe()).run_id
            for k in range(12):
                fill = {"intent_id": "L1", "fill_id": f"f{k}", "filled_risk_abs": 10}
                await ledger.signal("execution", {**fill, "timestamp": stamp(k)})

            async def continued() -> bool:
                return (await ledger.describe()).run_id != first

            await eventually(continued, "the ledger to continue as new", timeout=60)

            async def all_forwarded() -> bool:
                counts = (await caller.ledger())["counts"]
                return bool(counts.get("fill:committed", 0) == 12)

            await eventually(all_forwarded, "every execution to reach the authority")
            book = await ledger.query(ExecutionLedgerWorkflow.executions)
            assert [e["payload"]["fill_id"] for e in book] == [f"f{k}" for k in range(12)]
            await ledger.signal(ExecutionLedgerWorkflow.finish)
            assert await ledger.result() == 12

    asyncio.run(scenario())
