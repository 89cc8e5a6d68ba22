"""Which envelope-signal failures unregister an instrument workflow, and which keep it.

The broadcaster unregisters a subscriber only when its workflow is gone (closed or never
existed); any other failure keeps it and the envelope is sent again. A transient signal
failure cannot be produced on demand on a real dev server (the one non-gone cause it
reports, the per-workflow signal limit, needs the server's dynamic config changed for the
whole shared session), so the classification is tested as a pure function on the messages
the SDK builds, and the real server proves the other half: a subscriber whose workflow is
gone is unregistered while a live one keeps receiving every envelope.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.exceptions import ApplicationError

from policy_engine.temporal import SymbolSpec, SymbolWorkflow
from policy_engine.temporal.broadcast import gone

from support.control import STRATEGIES, SYMBOLS, control_plane

# The SDK's failure for a signal it could not deliver: "Unable to signal external workflow
# because " and the server's cause (sdk-core's signal-external state machine).
UNABLE = "Unable to signal external workflow because "


@pytest.mark.parametrize(
    "said",
    [
        UNABLE + "it was not found",  # closed (completed, terminated, failed) or never existed
        "workflow execution already completed",
        "Workflow Execution Already Finished",
    ],
)
def test_a_signal_to_a_closed_or_missing_workflow_means_it_is_gone(said: str) -> None:
    assert gone(ApplicationError(said, type="SignalExternalWorkflowExecutionFailed"))


@pytest.mark.parametrize(
    "said",
    [
        UNABLE + "The per-workflow signal limit was exceeded",  # it continues as new: room again
        "Timeout expired",
        "internal error: history service unavailable",
        "",
    ],
)
def test_any_other_signal_failure_keeps_the_subscriber(said: str) -> None:
    assert not gone(ApplicationError(said, type="SignalExternalWorkflowExecutionFailed"))
    assert not gone(asyncio.CancelledError(said))


def test_a_gone_subscriber_is_unregistered_while_a_live_one_keeps_receiving(
    temporal_address: str,
) -> None:
    portfolio = "subscribers-gone"

    async def scenario() -> None:
        async with control_plane(temporal_address, portfolio) as caller:
            live, dead = await asyncio.gather(
                *(
                    caller.client.start_workflow(
                        SymbolWorkflow.run,
                        SymbolSpec(portfolio, SYMBOLS[n], STRATEGIES[n]),
                        id=f"{portfolio}-symbol-{n}",
                        task_queue=caller.task_queue,
                    )
                    for n in range(2)
                )
            )
            await asyncio.gather(
                *(h.execute_update("ready", result_type=dict) for h in (live, dead))
            )
            assert sorted(await caller.subscribers()) == sorted([live.id, dead.id])

            # Terminated: its code never runs again, so it cannot unregister itself; only the
            # broadcaster's failed signal can. A workflow that never existed is the same case.
            await dead.terminate("instrument crashed")
            await caller.register(f"{portfolio}-never-started")

            # publish awaits every signal under the lock: once it returns, the failures are
            # classified and the gone subscribers unregistered.
            await caller.set_portfolio_mode("risk_off", "judge: flatten")
            assert await caller.subscribers() == [live.id]
            held = await live.query("envelope")
            assert held["envelope"]["portfolio_mode"] == "risk_off"

            # The live one keeps receiving every later envelope.
            await caller.set_portfolio_mode(None, "judge: resume")
            newer = await live.query("envelope")
            assert newer["envelope"]["portfolio_mode"] == "normal"
            assert newer["seq"] > held["seq"]
            assert await caller.subscribers() == [live.id]

    asyncio.run(scenario())
