"""benchmarks/temporal.py's broadcast rows: Updates/s as instrument workflows register.

8 tasks each do request + close against one portfolio (every close moves the
headroom, so the envelope changes on every other Update), with 0, 8, 24 and 100
``SymbolWorkflow`` instances registered, and the same number of no-op Updates
against ``NoopWorkflow`` in the same run (Temporal's floor). Then the same with
24 subscribers and a continue-as-new every 100 events, and the latency of a
``risk_off`` that every one of 100 registered instruments holds before it returns.
Target (issue 17): 24 subscribers keep >= 0.8x the Updates/s of none.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

TASKS = 8
TARGET = 0.8  # Updates/s with 24 subscribers over Updates/s with none


async def fanout(conns: list[Any], text: str, reply: dict[str, Any], per_task: int) -> list[str]:
    from policy_engine.temporal import PortfolioClient, SymbolSpec

    queue = "bench-pass"
    updates = TASKS * per_task * 2

    async def noop_rate() -> float:
        name = f"fan-noop-{uuid.uuid4().hex[:8]}"
        await conns[0].start_workflow("NoopWorkflow", reply, id=name, task_queue=queue)
        handles = [c.get_workflow_handle(name) for c in conns[:TASKS]]

        async def task(k: int) -> None:
            for i in range(per_task * 2):
                await handles[k].execute_update("noop", {"i": f"{k}-{i}"}, result_type=dict)

        t0 = time.perf_counter()
        await asyncio.gather(*(task(k) for k in range(TASKS)))
        wall = time.perf_counter() - t0
        await handles[0].terminate("measured")
        return updates / wall

    async def ours(subs: int, per_run: int = 1500) -> tuple[float, float | None]:
        portfolio = f"fan{subs}-{per_run}-{uuid.uuid4().hex[:6]}"
        callers = [PortfolioClient(c, portfolio, queue) for c in conns[:TASKS]]
        await callers[0].start(text, equity=1e9, events_per_run=per_run)
        symbols = await asyncio.gather(
            *(
                conns[n % len(conns)].start_workflow(
                    "SymbolWorkflow",
                    SymbolSpec(portfolio, f"S{n}", "SCALPER"),
                    id=f"{portfolio}-s{n}",
                    task_queue=queue,
                )
                for n in range(subs)
            )
        )
        await asyncio.gather(*(h.execute_update("ready", result_type=dict) for h in symbols))

        async def task(k: int) -> None:
            caller = callers[k]
            for i in range(per_task):
                x = {
                    "intent_id": f"{portfolio}-{k}-{i}",
                    "strategy": "SCALPER",
                    "symbol": "BTC-USD",
                    "side": "long",
                    "requested_risk_abs": 10.0,
                    "timestamp": "2026-01-01T00:00:00+00:00",
                }
                await caller.request_allocation(x)
                await caller.close_position(x["intent_id"], x["timestamp"])

        t0 = time.perf_counter()
        await asyncio.gather(*(task(k) for k in range(TASKS)))
        rate = updates / (time.perf_counter() - t0)
        risk_off = None
        if subs == 100:
            t0 = time.perf_counter()
            await callers[0].set_portfolio_mode("risk_off", "bench")
            risk_off = time.perf_counter() - t0
            held = await asyncio.gather(*(h.query("envelope") for h in symbols))
            assert all(x["envelope"]["portfolio_mode"] == "risk_off" for x in held)
        for h in symbols:
            await h.terminate("measured")
        await conns[0].get_workflow_handle(callers[0].workflow_id).terminate("measured")
        return rate, risk_off

    floor = await noop_rate()
    rates: dict[str, float] = {}
    risk_off = 0.0
    for subs in (0, 8, 24, 100):
        rate, took = await ours(subs)
        rates[f"{subs}"] = rate
        risk_off = took if took is not None else risk_off
    rates["24, continue-as-new every 100 events"] = (await ours(24, per_run=100))[0]
    ratio = rates["24"] / rates["0"]
    lines = [
        "| subscribers (request + close, 8 tasks) | Updates/s | vs 0 subscribers | vs no-op |",
        "|---|---:|---:|---:|",
        f"| no-op Update (Temporal's floor) | {floor:,.0f} |  | 1.00x |",
    ]
    for label, rate in rates.items():
        lines.append(f"| {label} | {rate:,.0f} | {rate / rates['0']:.2f}x | {rate / floor:.2f}x |")
    verdict = "ok" if ratio >= TARGET else "MISSED"
    lines += [
        "",
        f"24 subscribers keep {ratio:.2f}x the Updates/s of none (target >= {TARGET}: {verdict}).",
        f"risk_off held by all 100 registered instruments when set_portfolio_mode returned: "
        f"{risk_off * 1e3:.1f} ms.",
    ]
    return lines


__all__ = ["TARGET", "fanout"]
