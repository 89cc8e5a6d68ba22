"""Record the workflow histories tests/test_temporal_replay.py replays (run to re-record).

    python tests/support/record_histories.py

Starts its own dev server and worker, runs one scenario through the control
workflow with three registered instrument workflows (approvals, a clip,
rejections, a full fill, closes and a cancel that change the envelope, an
override, an equity drop, a reload, proposals from an instrument workflow,
a continue-as-new after 12 events, then fills signalled by the execution
ledger workflow), and writes every run's history as JSON
to tests/fixtures/temporal/. Re-record only on purpose: a fixture that no
longer replays means the workflow's commands changed for histories already
in flight (see tests/fixtures/temporal/README.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import HistoryEvent  # noqa: E402
from temporalio.client import Client  # noqa: E402

from policy_engine.temporal import PortfolioClient, SymbolSpec, create_worker  # noqa: E402
from policy_engine.temporal.devserver import dev_server  # noqa: E402

from support.control import PORTFOLIO_POLICY, intent, stamp  # noqa: E402

FIXTURES = HERE.parent / "fixtures" / "temporal"
PORTFOLIO = "replay-fixture"
QUEUE = "replay-fixture"


async def scenario(address: str) -> dict[str, tuple[str, str]]:
    client = await Client.connect(address)
    caller = PortfolioClient(client, PORTFOLIO, QUEUE)
    async with create_worker(client, QUEUE):
        await caller.start(PORTFOLIO_POLICY, equity=100_000, events_per_run=12)
        first_run = (await client.get_workflow_handle(caller.workflow_id).describe()).run_id
        symbols = [
            await client.start_workflow(
                "SymbolWorkflow",
                SymbolSpec(PORTFOLIO, symbol, "BREAKOUT"),
                id=f"{PORTFOLIO}-{symbol}",
                task_queue=QUEUE,
            )
            for symbol in ("BTC-USD", "DOGE-USD", "LINK-USD")
        ]
        for handle in symbols:
            await handle.execute_update("ready", result_type=dict)
        await caller.request_allocation(intent("a1", "BREAKOUT", "BTC-USD", 500, at=1))
        fill = {"intent_id": "a1", "fill_id": "f1", "filled_risk_abs": 500, "timestamp": stamp(2)}
        await caller.on_fill_update(fill)  # fully filled: the envelope does not move
        await caller.request_allocation(intent("a2", "SCALPER", "ETH-USD", 800, at=3))
        await caller.request_allocation(intent("a3", "MOMENTUM", "SOL-USD", 1500, at=4))
        await caller.request_allocation(intent("a4", "MOMENTUM", "AVAX-USD", 300, at=5))
        await caller.close_position("a1", stamp(6))  # releases: broadcast
        await caller.cancel_reservation("a2", stamp(7))  # releases: broadcast
        await caller.close_position("a4", stamp(8))  # a4 was rejected: nothing to release
        await caller.set_portfolio_mode("defensive", "judge: volatility", stamp(9))
        await caller.update_equity(94_000, stamp(10))
        await caller.reload(PORTFOLIO_POLICY.replace("version: 1", "version: 2"))
        await symbols[0].execute_update("propose", {"side": "long", "risk": 200}, result_type=dict)
        await symbols[1].execute_update("propose", {"side": "flat", "risk": 100}, result_type=dict)
        # The execution ledger signals a fill of a3, whose reservation expired when the
        # proposals (stamped with workflow time) moved the clock: absorbed as an orphan
        # position (the first event of the run after continue-as-new); then a fill for no
        # trade (refused, not an event).
        ledger = await client.start_workflow(
            "ExecutionLedgerWorkflow", PORTFOLIO, id=f"{PORTFOLIO}-ledger", task_queue=QUEUE
        )
        fill3 = {"intent_id": "a3", "fill_id": "f3", "filled_risk_abs": 100, "timestamp": stamp(11)}
        await ledger.signal("execution", fill3)
        ghost = {"intent_id": "zz", "fill_id": "g", "filled_risk_abs": 5, "timestamp": stamp(11)}
        await ledger.signal("execution", ghost)
        while sum((await caller.ledger())["counts"].values()) < 2:
            await asyncio.sleep(0.05)
        await caller.close_position("a3", stamp(11))
        await caller.set_portfolio_mode(None, "judge: clear", stamp(12))
        for handle in symbols:
            await handle.signal("finish")
            await handle.result()
        histories: dict[str, tuple[str, str]] = {}  # file -> (workflow id, history JSON)
        run, n = first_run, 1
        while run:
            handle = client.get_workflow_handle(caller.workflow_id, run_id=run)
            history = await handle.fetch_history()
            histories[f"control-run{n}.json"] = (caller.workflow_id, history.to_json())
            run = _continued_to(history.events)
            n += 1
        sym = await symbols[0].fetch_history()
        histories["symbol.json"] = (symbols[0].id, sym.to_json())
        await ledger.signal("finish")
        await ledger.result()
        histories["ledger.json"] = (ledger.id, (await ledger.fetch_history()).to_json())
        await client.get_workflow_handle(caller.workflow_id).terminate("recorded")
        return histories


def _continued_to(events: Sequence[HistoryEvent]) -> str:
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return str(
                event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            )
    return ""


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with dev_server() as address:
        histories = asyncio.run(scenario(address))
    for old in FIXTURES.glob("*.json"):
        old.unlink()
    ids = {}
    for name, (workflow_id, text) in histories.items():
        data = json.loads(text)
        (FIXTURES / name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        ids[name] = workflow_id
        print(f"wrote {FIXTURES / name} ({len(data['events'])} events)")
    (FIXTURES / "workflow-ids.json").write_text(json.dumps(ids, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
