"""The execution ledger signals fills and releases to the authority (seed 004's shape).

An ExecutionLedgerWorkflow, signalled by the broker side, forwards executions,
cancels and closes to the control workflow as signals. They run the steps of the
Updates of the same meaning in the same total order: a fill signalled twice counts
once, what the core refuses is an outcome of the `ledger` query and never fails the
workflow, and the in-process replay of the workflow's journal gives its state.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from temporalio.client import WorkflowExecutionStatus

from policy_engine.control.events import canonical
from policy_engine.control.metrics import ControlMetrics
from policy_engine.temporal import ExecutionLedgerWorkflow
from policy_engine.temporal.worker import live_reader

from support.control import control_plane, eventually, intent, replay_journal, stamp


def test_ledger_signals_fill_cancel_and_close_in_one_order_with_the_updates(
    temporal_address: str,
) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any]:
        # A run every 4 accepted events: the signals cross continue-as-new.
        async with control_plane(temporal_address, "ledger", events_per_run=4) as caller:
            for iid, risk in (("i1", 400), ("i2", 300), ("i3", 200)):
                decision = await caller.request_allocation(
                    intent(iid, "BREAKOUT", "ETH-USD", risk, at=1)
                )
                assert decision.approved_risk_abs == risk
            ledger = await caller.client.start_workflow(
                ExecutionLedgerWorkflow.run,
                "ledger",
                id="execution-ledger/ledger",
                task_queue=caller.task_queue,
            )

            def fill(iid: str, fid: str, risk: Any, at: float) -> dict[str, Any]:
                return {
                    "intent_id": iid,
                    "fill_id": fid,
                    "filled_risk_abs": risk,
                    "timestamp": stamp(at),
                }

            broker: list[tuple[str, Any]] = [
                ("execution", fill("i1", "f1", 400, 2)),
                ("execution", fill("i1", "f1", 400, 3)),  # the same fill again: counted once
                ("execution", fill("i3", "f3", 150, 3)),
                ("order_cancelled", {"intent_id": "i2", "timestamp": stamp(4)}),
                ("order_cancelled", {"intent_id": "i2", "timestamp": stamp(5)}),  # nothing left
                ("execution", fill("i1", "bad", -5, 6)),  # malformed
                ("execution", fill("ghost", "g1", 10, 6)),  # no such trade
                (
                    "position_closed",
                    {"intent_id": "i1", "timestamp": stamp(7), "realized_pnl": -40},
                ),
                ("position_closed", "not an object"),
                # hostile shapes: each refused, none may stop the authority
                ("execution", {}),
                ("execution", {"intent_id": 5, "fill_id": [], "filled_risk_abs": "1"}),
                ("execution", fill("i3", "huge", 1e308, 9)),
                ("order_cancelled", {"intent_id": "i3", "timestamp": "yesterday"}),
                ("position_closed", {"intent_id": "i3", "timestamp": stamp(9), "risk_abs": "x"}),
                ("position_closed", {"intent_id": ["i3"], "timestamp": {"a": 1}}),
                ("order_cancelled", None),
            ]
            for name, payload in broker:
                await ledger.signal(name, payload)

            async def settled() -> bool:
                seen = await caller.ledger()
                return bool(sum(seen["counts"].values()) == len(broker))

            await eventually(settled, "the ledger's signals to reach the authority")
            handle = caller.client.get_workflow_handle(caller.workflow_id)
            outcome = await caller.ledger()
            state = await caller.get_portfolio_state()
            journal = await caller.journal()
            # What `policy worker --metrics-port` serves: the counts, read from another thread.
            registry = CollectorRegistry()
            ControlMetrics(registry).watch(live_reader(caller, asyncio.get_running_loop()))
            text = await asyncio.to_thread(generate_latest, registry)
            # A regular Update after the signals sees their effect: one order for both.
            record = await caller.close_position("i3", stamp(8))
            assert record["status"] == "closed"
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            await ledger.signal("finish")
            forwarded = await ledger.result()
            assert forwarded == len(broker)
            return outcome, state, journal, text.decode()

    outcome, state, journal, exposition = asyncio.run(scenario())
    assert journal["run"] >= 2  # the counts below were carried across runs
    assert 'policy_engine_ledger_signals_total{kind="fill",status="committed"} 2.0' in exposition
    assert 'policy_engine_ledger_signals_total{kind="close",status="invalid"} 3.0' in exposition
    counts = outcome["counts"]
    assert counts == {
        "fill:committed": 2,
        "fill:duplicate": 1,
        "fill:invalid": 4,  # a negative risk, an empty object, wrong types, 1e308
        "fill:unknown": 1,
        "cancel:cancelled": 2,  # the second: already cancelled, nothing changed
        "cancel:invalid": 2,  # a time that is not one, not an object
        "close:closed": 1,
        "close:invalid": 3,  # not an object, a risk that is not a number, wrong types
    }
    refused = {(r["kind"], r["status"], r["intent_id"]) for r in outcome["refused"]}
    assert ("fill", "duplicate", "i1") in refused
    assert ("fill", "invalid", "i1") in refused
    assert ("close", "invalid", None) in refused
    assert ("cancel", "cancelled", "i2") in refused
    assert ("fill", "unknown", "ghost") in refused
    assert len(outcome["refused"]) == 12  # every signal above but the 4 accepted
    # i1 filled then closed, i2 cancelled before any fill, i3 filled 150 of 200 (50 reserved)
    assert state["totals"]["active_risk"] == 150
    assert state["totals"]["reserved_risk"] == 50
    assert state["totals"]["active_trades"] == 1
    # Only what the core accepted is journaled; the last run's journal, replayed from the
    # snapshot it started with, is the workflow's state.
    core, _decisions = replay_journal(journal["events"], journal["origin"])
    replayed = core.portfolio_state()
    assert canonical(replayed["totals"]) == canonical(state["totals"])
    assert canonical(replayed["trades"]) == canonical(state["trades"])
