"""A closed PortfolioClient refuses every call with one clear line and sends nothing.

``async with PortfolioClient(...)`` closes it on exit (a normal exit or an exception);
``close()`` is idempotent; the portfolio and its other clients are untouched.
"""

from __future__ import annotations

import asyncio

import pytest

from policy_engine.temporal import ControlPlaneError, PortfolioClient

from support.control import PORTFOLIO_POLICY, control_plane, intent

CLOSED = "portfolio-control/closing: .*: the client is closed"


def test_a_closed_client_refuses_every_call_and_the_portfolio_is_untouched(
    temporal_address: str,
) -> None:
    async def scenario() -> None:
        async with control_plane(temporal_address, "closing") as caller:
            async with PortfolioClient(caller.client, "closing", caller.task_queue) as trader:
                kept = await trader.request_allocation(intent("kept", "SCALPER", "BTC-USD", 100))
                assert kept.approved
            before = await caller.snapshot()

            late = intent("late", "SCALPER", "ETH-USD", 100)
            with pytest.raises(ControlPlaneError, match=CLOSED):
                await trader.request_allocation(late)
            with pytest.raises(ControlPlaneError, match=CLOSED):  # malformed: read, refused
                await trader.request_allocation({**late, "requested_risk_abs": "lots"})
            with pytest.raises(ControlPlaneError, match=CLOSED):
                await trader.set_portfolio_mode("risk_off", "judge")
            with pytest.raises(ControlPlaneError, match=CLOSED):
                await trader.constraints()
            with pytest.raises(ControlPlaneError, match=CLOSED):
                await trader.register("closing-symbol")
            with pytest.raises(ControlPlaneError, match=CLOSED):
                await trader.start(PORTFOLIO_POLICY, equity=1, new_portfolio=True)
            await trader.close()  # a second close does nothing

            # Nothing reached the workflow: its state is what it was, and the other client
            # (sharing the connection) still decides.
            assert await caller.snapshot() == before
            assert await caller.subscribers() == []
            assert (await caller.constraints()).portfolio_mode == "normal"
            assert (await caller.request_allocation(late)).approved

    asyncio.run(scenario())


def test_async_with_closes_the_client_when_its_block_raises(temporal_address: str) -> None:
    async def scenario() -> None:
        async with control_plane(temporal_address, "closing-raise") as caller:
            trader = PortfolioClient(caller.client, "closing-raise", caller.task_queue)
            with pytest.raises(RuntimeError, match="strategy crashed"):
                async with trader:
                    assert (await trader.constraints()).portfolio_mode == "normal"
                    raise RuntimeError("strategy crashed")
            with pytest.raises(ControlPlaneError, match="the client is closed"):
                await trader.get_portfolio_state()

    asyncio.run(scenario())
