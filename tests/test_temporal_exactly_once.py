"""Exactly once at every edge of the shared authority, on a real dev server (issue 17).

- A fill re-sent after its trade closed (a ledger signal, or an Update retried after a
  continue-as-new) is a duplicate, never a phantom position.
- A mutating call retried with the same id after a continue-as-new returns its first
  outcome, never a second application (a partial close counted twice).
- A retry of an intent whose trade is live gets its original decision however many
  decisions came since; one decided too long ago raises ``RetryTooLate``, never a
  decision that says "rejected".
- A terminated portfolio is never restarted empty: ``resume`` restores its state,
  ``new_portfolio`` discards it on purpose.
- 20 concurrent callers on one client: no error, never more in flight than its bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from policy_engine.temporal import PortfolioClient
from policy_engine.temporal import protocol as p
from policy_engine.temporal.calls import DEFAULT_CONCURRENCY
from policy_engine.temporal.errors import PortfolioEnded, RetryTooLate

from support.control import PORTFOLIO_POLICY, control_plane, eventually, intent, stamp


def _fill(iid: str, fid: str, risk: float, at: float) -> dict[str, Any]:
    return {"intent_id": iid, "fill_id": fid, "filled_risk_abs": risk, "timestamp": stamp(at)}


async def _run(caller: PortfolioClient) -> int:
    run: int = (await caller.journal())["run"]
    return run


async def _next_run(caller: PortfolioClient, after: int) -> None:
    """Wait until the workflow has continued as new past run ``after``."""

    async def moved() -> bool:
        return await _run(caller) > after

    await eventually(moved, f"a continue-as-new after run {after}", timeout=60)


async def _totals(caller: PortfolioClient) -> dict[str, Any]:
    totals: dict[str, Any] = (await caller.get_portfolio_state())["totals"]
    return totals


def test_a_fill_re_sent_after_its_trade_closed_is_not_a_phantom_position(
    temporal_address: str,
) -> None:
    async def scenario() -> None:
        async with control_plane(temporal_address, "once-fill", events_per_run=3) as caller:
            handle = caller.client.get_workflow_handle(caller.workflow_id)
            # by the ledger's signals, within one run
            assert (
                await caller.request_allocation(intent("a1", "BREAKOUT", "BTC-USD", 300, at=0))
            ).approved
            await handle.signal(p.LEDGER_FILL, _fill("a1", "f1", 300, 1))
            # a close (an Update) is ordered after the signal the server received first
            assert (await caller.close_position("a1", stamp(2)))["status"] == "closed"
            await _next_run(caller, 1)  # the close was the run's third event
            await handle.signal(p.LEDGER_FILL, _fill("a1", "f1", 300, 3))

            async def counted() -> bool:
                counts = (await caller.ledger())["counts"]
                return bool(counts.get("fill:duplicate"))

            await eventually(counted, "the re-sent fill to be judged")
            totals = await _totals(caller)
            assert totals["active_trades"] == 0 and totals["heat"] == 0

            # by an Update retried with its id (fill:b2:f1) after a continue-as-new
            assert (
                await caller.request_allocation(intent("b2", "BREAKOUT", "BTC-USD", 300, at=4))
            ).approved
            first = await caller.on_fill_update(_fill("b2", "f1", 300, 5))
            assert first["status"] == "committed"
            before = await _run(caller)
            assert (await caller.close_position("b2", stamp(6)))["status"] == "closed"
            await _next_run(caller, before)
            again = await caller.on_fill_update(_fill("b2", "f1", 300, 5))
            assert again == first  # its first outcome, not a second application
            totals = await _totals(caller)
            assert totals["active_trades"] == 0 and totals["heat"] == 0
            # a NEW fill id after the close is real exposure: a late orphan
            late = await caller.on_fill_update(_fill("b2", "f2", 100, 7))
            assert late["status"] == "late" and (await _totals(caller))["heat"] == 100

    asyncio.run(scenario())


def test_a_partial_close_retried_across_continue_as_new_applies_once(
    temporal_address: str,
) -> None:
    async def scenario() -> None:
        async with control_plane(temporal_address, "once-close", events_per_run=3) as caller:
            assert (
                await caller.request_allocation(intent("c1", "BREAKOUT", "BTC-USD", 300, at=0))
            ).approved
            assert (await caller.on_fill_update(_fill("c1", "f1", 300, 1)))["status"] == (
                "committed"
            )
            before = await _run(caller)
            # the raw Update, as a retrying caller sends it: the same id twice
            handle = caller.client.get_workflow_handle(caller.workflow_id)
            request = {"intent_id": "c1", "timestamp": stamp(2), "risk_abs": 100}
            first = await handle.execute_update(
                p.CLOSE_POSITION, request, id="close:retry-1", result_type=dict
            )
            assert first["status"] == "reduced"
            await _next_run(caller, before)
            again = await handle.execute_update(
                p.CLOSE_POSITION, request, id="close:retry-1", result_type=dict
            )
            assert again == first
            assert (await _totals(caller))["active_risk"] == 200
            # the client's own key: request_id, or the content of a timestamped call
            before = await _run(caller)
            equity = await caller.update_equity(95_000, stamp(3), request_id="eq-1")
            for k in range(2):  # the run's second and third events: it continues as new
                await caller.update_equity(95_000, stamp(3.5 + k))
            await _next_run(caller, before)
            assert await caller.update_equity(90_000, stamp(4), request_id="eq-1") == equity
            assert (await caller.get_portfolio_state())["equity"] == 95_000

    asyncio.run(scenario())


def test_a_retry_of_a_live_trade_gets_its_decision_and_a_forgotten_one_retry_too_late(
    temporal_address: str,
) -> None:
    async def scenario() -> None:
        async with control_plane(
            temporal_address, "once-retry", events_per_run=2, decision_memory=3
        ) as caller:
            live = await caller.request_allocation(intent("L", "BREAKOUT", "BTC-USD", 300, at=0))
            ended = await caller.request_allocation(intent("E", "MOMENTUM", "ETH-USD", 200, at=1))
            assert live.approved and ended.approved
            assert (await caller.close_position("E", stamp(2)))["status"] == "closed"
            for k in range(6):  # decisions enough to push both out of a memory of 3
                await caller.request_allocation(intent(f"x{k}", "UNKNOWN", "BTC-USD", 10, at=3 + k))
            assert await _run(caller) > 2  # the retries below land in later runs
            retry = await caller.request_allocation(intent("L", "BREAKOUT", "BTC-USD", 300, at=0))
            assert retry.model_dump(mode="json") == live.model_dump(mode="json")
            with pytest.raises(RetryTooLate, match="decided too long ago"):
                await caller.request_allocation(intent("E", "MOMENTUM", "ETH-USD", 200, at=1))
            assert (await _totals(caller))["active_trades"] == 1  # only L

    asyncio.run(scenario())


def test_a_terminated_portfolio_is_resumed_or_discarded_never_restarted_empty(
    temporal_address: str,
) -> None:
    async def scenario() -> None:
        async with control_plane(temporal_address, "once-resume", events_per_run=4) as caller:
            for k in range(3):
                decision = await caller.request_allocation(
                    intent(f"t{k}", "BREAKOUT", "BTC-USD", 300, at=k)
                )
                assert decision.approved
            held = await caller.snapshot()
            handle = caller.client.get_workflow_handle(caller.workflow_id)
            await handle.terminate("operator")
            with pytest.raises(PortfolioEnded, match="--resume"):
                await caller.start(PORTFOLIO_POLICY, equity=100_000)
            assert await caller.start(PORTFOLIO_POLICY, equity=1, resume=True)
            assert await caller.snapshot() == held
            retry = await caller.request_allocation(intent("t0", "BREAKOUT", "BTC-USD", 300, at=0))
            assert retry.approved and (await _totals(caller))["heat"] == 900  # not twice

            await handle.terminate("operator")
            assert await caller.start(PORTFOLIO_POLICY, equity=50_000, new_portfolio=True)
            state = await caller.get_portfolio_state()
            assert state["totals"]["heat"] == 0 and state["equity"] == 50_000

    asyncio.run(scenario())


def test_twenty_concurrent_callers_queue_on_one_client_without_error(
    temporal_address: str,
) -> None:
    async def scenario() -> None:
        async with control_plane(temporal_address, "once-twenty") as caller:

            async def one(k: int) -> str:
                decision = await caller.request_allocation(
                    intent(f"q{k}", "UNKNOWN", "BTC-USD", 10, at=k)
                )
                await caller.update_equity(100_000 - k, stamp(k))
                return decision.decision_code

            codes = await asyncio.gather(*(one(k) for k in range(20)))
            assert len(codes) == 20
            assert 1 < caller.calls.peak_in_flight <= DEFAULT_CONCURRENCY

    asyncio.run(scenario())
