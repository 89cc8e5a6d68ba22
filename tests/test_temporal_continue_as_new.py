"""Continue-as-new keeps the authority's state exactly.

With a threshold of 5 events per run, a stream of intents, fills, cancels,
closes, an equity drop and an override crosses many runs. The test follows the
chain of runs and proves, at every boundary, that the next run starts from
exactly the state the previous run's journal replays to; at the end the
workflow's snapshot equals the in-process core's, the registered instrument
workflows still get broadcasts, and a retry of a decision made two runs ago
gets the original decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType

from policy_engine.control.book import ENDED_MEMORY, SEEN_MEMORY
from policy_engine.control.controller import PortfolioController
from policy_engine.control.core import ControlCore
from policy_engine.control.events import PolicyEvent
from policy_engine.engine.policy import load_policy_text
from policy_engine.temporal import SymbolSpec, SymbolWorkflow
from policy_engine.temporal import protocol as p

from support.control import (
    PORTFOLIO_POLICY,
    control_plane,
    intent,
    replay_journal,
    stamp,
)


def _stream() -> list[dict[str, Any]]:
    """Events in journal form; intents and fills are sent as such, the rest by method."""
    events: list[dict[str, Any]] = []
    for k in range(8):
        strategy = ("SCALPER", "MOMENTUM", "BREAKOUT")[k % 3]
        symbol = ("BTC-USD", "ETH-USD", "AVAX-USD", "LINK-USD")[k % 4]
        events.append({"type": "intent", **intent(f"c{k}", strategy, symbol, 300 + 100 * k, at=k)})
        if k % 2 == 0:
            events.append(
                {
                    "type": "fill",
                    "intent_id": f"c{k}",
                    "fill_id": "f1",
                    "filled_risk_abs": 150,
                    "timestamp": stamp(k),
                }
            )
        if k == 3:
            events.append({"type": "cancel", "intent_id": "c1", "timestamp": stamp(k)})
        if k == 4:
            events.append({"type": "equity", "equity": 93_000, "timestamp": stamp(k)})
        if k == 5:
            events.append(
                {"type": "mode", "mode": "defensive", "reason": "judge", "timestamp": stamp(k)}
            )
        if k == 6:
            events.append({"type": "close", "intent_id": "c0", "timestamp": stamp(k)})
    return events


def test_continue_as_new_under_a_tiny_threshold_keeps_state_exactly(temporal_address: str) -> None:
    portfolio = "can"
    stream = _stream()

    async def scenario() -> None:
        async with control_plane(
            temporal_address, portfolio, events_per_run=5, decision_memory=50
        ) as caller:
            client = caller.client
            control = client.get_workflow_handle(caller.workflow_id)
            first_run = (await control.describe()).run_id
            symbols = [
                await client.start_workflow(
                    SymbolWorkflow.run,
                    SymbolSpec(portfolio, symbol, "SCALPER"),
                    id=f"{portfolio}-{symbol}",
                    task_queue=caller.task_queue,
                )
                for symbol in ("BTC-USD", "ETH-USD", "SOL-USD")
            ]
            for handle in symbols:
                await handle.execute_update("ready", result_type=dict)
            registered = await caller.subscribers()  # in the order the signals arrived
            assert sorted(registered) == sorted(h.id for h in symbols)
            decisions: dict[str, dict[str, Any]] = {}
            for event in stream:
                await _send(caller, event, decisions)

            # Follow the runs: each starts from the state the previous journal replays to.
            # A run continues as new once it has 5 accepted events, its handlers finished
            # and the coalesced envelope is delivered: an Update arriving meanwhile still
            # lands in it, so a run may hold a few more than 5.
            runs = await _runs(client, caller.workflow_id, first_run)
            assert len(runs) >= 3
            journals = [await caller.journal(run_id) for run_id in runs]
            assert [j["run"] for j in journals] == list(range(1, len(runs) + 1))
            counted = [sum(e["type"] != "policy" for e in j["events"]) for j in journals]
            assert all(n >= 5 for n in counted[1:-1]) and counted[0] >= 5 + 1  # + the opening
            core, replayed = replay_journal(journals[0]["events"])
            for journal in journals[1:]:
                assert journal["origin"] == core.snapshot()
                core, more = replay_journal(journal["events"], journal["origin"])
                replayed.update(more)
            assert replayed == decisions

            # The whole stream through the in-process controller gives the same state: the
            # two shells admit, refuse and apply alike (the fill for the rejected c6 is
            # refused by both, and numbered by neither).
            mirror = PortfolioController(
                load_policy_text(PORTFOLIO_POLICY, "<policy>"), 100_000, clock=None
            )
            mirror.apply_all(stream)
            assert await caller.snapshot() == mirror.core.snapshot() == core.snapshot()
            state = await caller.get_portfolio_state()
            assert state["mode"] == "defensive" and state["mode_override"] == "defensive"
            assert [t["expires"] is not None for t in state["trades"]].count(True) >= 1

            # Subscribers survived every run: a broadcast still reaches all three.
            assert await caller.subscribers() == registered
            await caller.set_portfolio_mode("risk_off", "judge", stamp(20))
            for handle in symbols:
                assert (await handle.query("envelope"))["envelope"]["portfolio_mode"] == "risk_off"

            # A retry of an intent decided runs ago: the original decision, not a new one.
            old = next(e for e in stream if e["type"] == "intent")
            payload = {k: v for k, v in old.items() if k != "type"}
            again = await control.execute_update(
                p.REQUEST_ALLOCATION, payload, id="a-late-retry", result_type=dict
            )
            assert again == decisions[old["intent_id"]]
            for handle in symbols:
                await handle.signal(SymbolWorkflow.finish)
                await handle.result()

    asyncio.run(scenario())


async def _send(caller: Any, event: dict[str, Any], decisions: dict[str, Any]) -> None:
    body = {k: v for k, v in event.items() if k != "type"}
    kind = event["type"]
    if kind == "intent":
        decisions[event["intent_id"]] = (await caller.request_allocation(body)).model_dump(
            mode="json"
        )
    elif kind == "fill":
        await caller.on_fill_update(body)  # "unknown" for a rejected intent, as in process
    elif kind == "cancel":
        await caller.cancel_reservation(event["intent_id"], event["timestamp"])
    elif kind == "close":
        await caller.close_position(event["intent_id"], event["timestamp"])
    elif kind == "equity":
        await caller.update_equity(event["equity"], event["timestamp"])
    else:
        await caller.set_portfolio_mode(event["mode"], event["reason"], event["timestamp"])


async def _runs(client: Any, workflow_id: str, first: str) -> list[str]:
    """The chain of run ids, following each run's continued-as-new event."""
    runs = [first]
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=runs[-1])
        following = None
        async for e in handle.fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                following = (
                    e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                )
        if following is None:
            return runs
        runs.append(following)


def test_a_large_carried_snapshot_travels_compressed() -> None:
    """The core remembers up to 8,192 ended trades (with their fill ids) and the last 16,384
    intent ids decided: a carried snapshot with both windows full (here of different ids,
    the worst case) is compressed to stay far below Temporal's 2 MB payload limit, and unpacks exactly."""
    core = ControlCore(load_policy_text(PORTFOLIO_POLICY, "<policy>"))
    book = core.book
    # UUID-shaped ids (deterministic), which compress worst: 16 bytes of entropy each.
    ids = [str(uuid.UUID(bytes=hashlib.sha256(b"%d" % n).digest()[:16])) for n in range(40_000)]
    for iid in ids[:ENDED_MEMORY]:  # each remembers its one fill id (UUID-shaped too)
        fills = (str(uuid.UUID(bytes=hashlib.sha256(iid.encode()).digest()[:16])),)
        book.ended[iid] = (
            "closed",
            "BREAKOUT",
            "BTC-USD",
            "L1",
            None,
            "long",
            None,
            None,
            fills,
            None,
            0,
            0,
        )
    for iid in ids[ENDED_MEMORY:]:
        book.decided(iid)
    assert len(book.seen) == len(book.seen_order) == SEEN_MEMORY
    snapshot = core.snapshot()
    packed = p.pack(snapshot)
    assert "zlib" in packed and len(json.dumps(packed)) < 1_200_000
    assert p.unpack(packed) == snapshot
    small = p.pack(PolicyEvent(core.policy).journal())
    assert "json" in small and p.unpack(small) == PolicyEvent(core.policy).journal()
