"""Envelope broadcast: a risk-off reaches every registered instrument workflow first.

Seed 004: "a portfolio risk-off command can propagate to all active symbol
workflows within one policy loop cycle". Twenty example instrument workflows
register with the control workflow; one client sets risk_off while another
asks for an entry at the same moment. The history proves the order (every
envelope signal delivered before the next decision completes), the instrument
workflows hold risk_off, and from then on entries are refused (by the envelope,
without asking) and exits allowed (by the authority).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateStage

from policy_engine.control.events import IntentEvent, parse_intent
from policy_engine.temporal import PortfolioClient, SymbolSpec, SymbolWorkflow, create_worker
from policy_engine.temporal import protocol as p

from support.control import (
    PORTFOLIO_POLICY,
    STRATEGIES,
    SYMBOLS,
    control_plane,
    eventually,
    intent,
    stamp,
)

N = 20


def test_risk_off_reaches_every_instrument_workflow_before_the_next_decision(
    temporal_address: str,
) -> None:
    portfolio = "broadcast"

    async def scenario() -> None:
        async with control_plane(temporal_address, portfolio) as caller:
            client = caller.client
            symbols = await _symbols(caller, portfolio, N)
            held = await asyncio.gather(
                *(h.execute_update("ready", result_type=dict) for h in symbols)
            )
            assert all(x["envelope"]["portfolio_mode"] == "normal" for x in held)
            assert sorted(await caller.subscribers()) == sorted(h.id for h in symbols)
            pushed = await caller.broadcast_constraints()  # on demand, as the controller does
            assert pushed == await caller.constraints()

            # The judge sets risk_off; a trader asks for an entry the moment it is accepted.
            control = client.get_workflow_handle(caller.workflow_id)
            judge = await control.start_update(
                p.SET_PORTFOLIO_MODE,
                {"mode": "risk_off", "reason": "judge: flatten", "timestamp": None},
                id="judge-risk-off",
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=dict,
            )
            entry = intent("late-entry", "SCALPER", "BTC-USD", 100)
            trader = PortfolioClient(
                await Client.connect(temporal_address), portfolio, caller.task_queue
            )
            decision = await trader.request_allocation(entry)
            envelope = await judge.result()
            assert envelope["portfolio_mode"] == "risk_off" and envelope["force_flatten_only"]
            assert decision.decision_code == "rejected_risk_off"

            # History: all N envelope signals were delivered before that decision completed.
            delivered, decided = await _signals_after(control, "judge-risk-off", entry)
            assert len(delivered) == N
            assert max(delivered) < decided

            # Every instrument workflow holds risk_off, newer than anything before it.
            for handle in symbols:
                held = await handle.query("envelope")
                assert held["envelope"]["portfolio_mode"] == "risk_off"

            # From now on: entries refused by the envelope, exits allowed by the authority.
            outcomes = await asyncio.gather(*(_entry_then_exit(h) for h in symbols))
            for refused, allowed in outcomes:
                assert refused["asked"] is False and "flatten-only" in refused["reason"]
                assert allowed["asked"] is True
                assert allowed["decision"]["approved"] is True
                assert allowed["decision"]["rule_id"] == "risk-reducing-allowed"

            await asyncio.gather(*(h.signal(SymbolWorkflow.finish) for h in symbols))
            results = await asyncio.gather(*(h.result() for h in symbols))
            assert [r["proposals"] for r in results] == [2] * N

            async def all_unregistered() -> bool:
                return await caller.subscribers() == []

            await eventually(all_unregistered, "every instrument workflow to unregister")

    asyncio.run(scenario())


async def _symbols(caller: PortfolioClient, portfolio: str, count: int) -> list[Any]:
    """``count`` example instrument workflows of ``portfolio``, started."""
    handles: list[Any] = await asyncio.gather(
        *(
            caller.client.start_workflow(
                SymbolWorkflow.run,
                SymbolSpec(portfolio, SYMBOLS[n % 6], STRATEGIES[n % 3]),
                id=f"{portfolio}-symbol-{n}",
                task_queue=caller.task_queue,
            )
            for n in range(count)
        )
    )
    return handles


async def _entry_then_exit(handle: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    refused = await handle.execute_update(SymbolWorkflow.propose, {"side": "long", "risk": 100})
    allowed = await handle.execute_update(SymbolWorkflow.propose, {"side": "flat", "risk": 100})
    return refused, allowed


async def _signals_after(
    control: Any, update_id: str, entry: dict[str, Any]
) -> tuple[list[int], int]:
    """The envelope signals delivered after the Update ``update_id`` was accepted, and the
    event id of the completed decision of ``entry``."""
    events = [e async for e in control.fetch_history_events()]
    accepted = _index(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, update_id)
    decided = _index(
        events,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        p.intent_update_id(IntentEvent(parse_intent(entry)).journal()),
    )
    delivered = [
        e.event_id
        for e in events[accepted:]
        if e.event_type == EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED
    ]
    return delivered, events[decided].event_id


def _index(events: list[Any], kind: int, update_id: str) -> int:
    for n, e in enumerate(events):
        if e.event_type != kind:
            continue
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            meta = e.workflow_execution_update_accepted_event_attributes.accepted_request.meta
        else:
            meta = e.workflow_execution_update_completed_event_attributes.meta
        if meta.update_id == update_id:
            return n
    raise AssertionError(f"no {kind} event for update {update_id}")


def test_risk_off_reaches_a_hundred_instruments_while_fills_coalesce(
    temporal_address: str,
) -> None:
    """100 registered instruments (issue 17): lifecycle events change the envelope without
    waiting for them (coalesced, delivered beside the decisions, latest wins), and a
    risk_off is held by all 100 before the next decision completes."""
    portfolio, count = "broadcast-100", 100

    async def scenario() -> None:
        async with control_plane(temporal_address, portfolio) as caller:
            client = caller.client
            symbols = await _symbols(caller, portfolio, count)
            await asyncio.gather(*(h.execute_update("ready", result_type=dict) for h in symbols))
            assert len(await caller.subscribers()) == count
            for k in range(4):  # headroom changes hands: envelopes for the coalesced delivery
                iid = f"move-{k}"
                assert (
                    await caller.request_allocation(intent(iid, "BREAKOUT", "BTC-USD", 300, at=k))
                ).approved
                await caller.close_position(iid, stamp(k))
            await caller.set_portfolio_mode("risk_off", "judge", None, request_id="risk-off-100")
            entry = intent("after-100", "SCALPER", "ETH-USD", 100, at=9)
            assert (await caller.request_allocation(entry)).decision_code == "rejected_risk_off"

            control = client.get_workflow_handle(caller.workflow_id)
            events = [e async for e in control.fetch_history_events()]
            assert not [
                e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]
            mode_id = f"{p.SET_PORTFOLIO_MODE}:risk-off-100"
            delivered, decided = await _signals_after(control, mode_id, entry)
            before = [n for n in delivered if n < decided]
            assert len(before) >= count  # every instrument, before that decision
            held = await asyncio.gather(*(h.query("envelope") for h in symbols))
            assert all(x["envelope"]["portfolio_mode"] == "risk_off" for x in held)
            await asyncio.gather(*(h.signal(SymbolWorkflow.finish) for h in symbols))
            await asyncio.gather(*(h.result() for h in symbols))

    asyncio.run(scenario())


def test_the_authority_and_the_instruments_run_on_separate_task_queues(
    temporal_address: str,
) -> None:
    """A worker hosting only the authority and one hosting only the instrument side (their
    workflows and the allocation activity), each on its own task queue."""
    portfolio = "split-queues"

    async def scenario() -> None:
        client = await Client.connect(temporal_address)
        caller = PortfolioClient(client, portfolio, "tq-split-authority")
        instruments = create_worker(
            client, "tq-split-instruments", hosts="instruments", authority_queue=caller.task_queue
        )
        async with create_worker(client, caller.task_queue, hosts="authority"), instruments:
            assert await caller.start(PORTFOLIO_POLICY, equity=100_000)
            handle = await client.start_workflow(
                SymbolWorkflow.run,
                SymbolSpec(portfolio, "BTC-USD", "SCALPER"),
                id=f"{portfolio}-btc",
                task_queue="tq-split-instruments",
            )
            held = await handle.execute_update("ready", result_type=dict)
            assert held["envelope"]["portfolio_mode"] == "normal"
            asked = await handle.execute_update(
                "propose", {"side": "long", "risk": 100}, result_type=dict
            )
            assert asked["asked"] is True and asked["decision"]["approved"] is True
            await caller.set_portfolio_mode("risk_off", "judge")
            now: dict[str, Any] = await handle.query("envelope")
            assert now["envelope"]["portfolio_mode"] == "risk_off"
            await handle.signal(SymbolWorkflow.finish)
            await handle.result()
            await client.get_workflow_handle(caller.workflow_id).terminate("test over")

    asyncio.run(scenario())
