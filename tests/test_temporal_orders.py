"""Decided order requests on the shared authority (issue 23): a modify that grows against a
cap, a throttled modify and a decided cancel through PortfolioClient and the control workflow,
across a continue-as-new, decide exactly as the in-process controller decides them; the
workflow's journal replays in this process to the workflow's own state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from policy_engine import PortfolioController, load_policy_text
from policy_engine.control.events import canonical
from policy_engine.temporal import RequestRefused

from support.control import control_plane, eventually, replay_journal

POLICY = """\
api_version: policy-engine/v1
name: orders
version: 1
windows:
  modifies_1s: {count: modify_requests, per: portfolio, over: 1s}
rules:
  - id: heat-cap
    limit: 1000 - portfolio.heat
    on_exceed: clip
  - id: modify-rate
    applies_to: [modify]
    require: portfolio.modifies_1s < 2
  - id: keep-btc
    applies_to: [cancel]
    require: intent.symbol != "BTC-USD"
"""


def _intent(iid: str, at: str, risk: float, symbol: str = "ETH-USD") -> dict[str, Any]:
    return {
        "intent_id": iid,
        "strategy": "S",
        "symbol": symbol,
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": at,
    }


T = "2026-01-05T09:00:"
CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("intent", (_intent("a", T + "00Z", 600),)),
    ("intent", (_intent("b", T + "00Z", 300, "BTC-USD"),)),
    ("modify", ("a", 900, T + "01Z")),  # clipped to 700: grows less
    ("modify", ("a", 650, T + "01.5Z")),  # shrinks
    ("modify", ("a", 700, T + "01.7Z")),  # the third in a second: throttled
    ("cancel", ("b", T + "02Z")),  # a BTC cancel: refused by its rule
    ("cancel", ("a", T + "03Z")),
    ("modify", ("a", 100, T + "04Z")),  # nothing live: answered, not an event
]


def _summary(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (
        rec["status"],
        rec.get("decision_code"),
        rec.get("rule_id"),
        rec.get("approved_risk_abs"),
    )


def test_modifies_and_cancels_decide_alike_on_the_workflow(temporal_address: str) -> None:
    async def scenario() -> tuple[list[tuple[Any, ...]], dict[str, Any], dict[str, Any]]:
        seen: list[tuple[Any, ...]] = []
        async with control_plane(
            temporal_address, "orders", policy=POLICY, events_per_run=4
        ) as caller:
            for kind, args in CALLS:
                if kind == "intent":
                    seen.append(((await caller.request_allocation(args[0])).decision_code,))
                elif kind == "modify":
                    seen.append(_summary(await caller.request_modify(*args)))
                else:
                    seen.append(_summary(await caller.request_cancel(*args)))
            again = await caller.request_cancel("b", T + "02Z")  # a retry: its first answer
            assert _summary(again) == seen[5]
            try:
                await caller.request_modify("a", 10, T + "05Z", symbol="X")
            except RequestRefused as exc:
                assert "cannot be restated" in str(exc)
            else:
                raise AssertionError("a modify restating the symbol must be refused")

            async def continued() -> bool:
                return int((await caller.journal())["run"]) >= 2

            await eventually(continued, "a continue-as-new")
            return seen, await caller.journal(), await caller.snapshot()

    seen, journal, snapshot = asyncio.run(scenario())
    ctl = PortfolioController(load_policy_text(POLICY), equity=100_000, clock=None)
    local: list[tuple[Any, ...]] = []
    for kind, args in CALLS:
        if kind == "intent":
            local.append((ctl.request_allocation(args[0]).decision_code,))
        elif kind == "modify":
            local.append(_summary(ctl.request_modify(*args)))
        else:
            local.append(_summary(ctl.request_cancel(*args)))
    assert seen == local
    assert [s[0] for s in seen[2:]] == [
        "modified",
        "modified",
        "rejected",
        "rejected",
        "cancelled",
        "cancelled",
    ]
    core, _decisions = replay_journal(journal["events"], journal["origin"])
    assert canonical(core.snapshot()) == canonical(snapshot)


GROUP_POLICY = """\
api_version: policy-engine/v1
name: groups
version: 1
rules:
  - id: exits
    allow: intent.risk_reducing
  - id: group-risk
    require: group.risk <= 800
  - id: heat-cap
    limit: 1000 - portfolio.heat
    on_exceed: clip
"""


def _bracket(prefix: str, risk: float, at: str) -> list[dict[str, Any]]:
    leg = {"side": "short", "reduce_only": True, "requested_risk_abs": 0}
    return [
        _intent(f"{prefix}-entry", at, risk),
        {**_intent(f"{prefix}-sl", at, 0), **leg},
        {**_intent(f"{prefix}-tp", at, 0), **leg},
    ]


GROUPS: list[tuple[str, list[dict[str, Any]]]] = [
    ("b1", _bracket("b1", 600, T + "00Z")),
    ("b2", _bracket("b2", 500, T + "01Z")),  # the heat cap would clip its entry: none
    ("b3", _bracket("b3", 900, T + "02Z")),  # over the group's risk: none
    ("b4", [_intent("b4-a", T + "03Z", 200), _intent("b4-b", T + "03Z", 200)]),
]


def _group_summary(rec: dict[str, Any]) -> tuple[Any, ...]:
    members = tuple((d["intent_id"], d["decision_code"]) for d in rec.get("decisions", []))
    return (rec["approved"], rec["decision_code"], rec["member"], rec["rule_id"], members)


def test_order_groups_decide_alike_on_the_workflow(temporal_address: str) -> None:
    async def scenario() -> tuple[list[tuple[Any, ...]], dict[str, Any], dict[str, Any]]:
        seen = []
        async with control_plane(
            temporal_address, "groups", policy=GROUP_POLICY, events_per_run=3
        ) as caller:
            for group_id, members in GROUPS:
                seen.append(_group_summary(await caller.request_group(group_id, members)))
            retry = await caller.request_group(*GROUPS[0])  # the same content: its first answer
            assert _group_summary(retry) == seen[0]
            released = await caller.cancel_group("b1", T + "04Z")
            assert released["members"] == ["b1-entry"] and released["released_risk_abs"] == 600

            async def continued() -> bool:
                return int((await caller.journal())["run"]) >= 2

            await eventually(continued, "a continue-as-new")
            return seen, await caller.journal(), await caller.snapshot()

    seen, journal, snapshot = asyncio.run(scenario())
    records: list[dict[str, Any]] = []
    ctl = PortfolioController(
        load_policy_text(GROUP_POLICY), equity=100_000, clock=None, records=records
    )
    local = []
    for group_id, members in GROUPS:
        records.clear()
        rec = ctl.request_group(group_id, members)
        decisions = [r for r in records if r["kind"] == "decision"]
        local.append(_group_summary({**rec, "decisions": decisions}))
    assert seen == local
    assert [s[:4] for s in seen] == [
        (True, "approved_full", None, None),
        (False, "rejected_group", "b2-entry", "heat-cap"),
        (False, "rejected_group", "b3-entry", "group-risk"),
        (True, "approved_full", None, None),
    ]
    assert seen[2][4][0] == ("b3-entry", "rejected_group_risk")  # the member keeps its code
    core, _decisions = replay_journal(journal["events"], journal["origin"])
    assert canonical(core.snapshot()) == canonical(snapshot)


BALANCE_POLICY = """\
api_version: policy-engine/v1
name: balances
version: 1
currencies: [USD]
rules:
  - id: free-balance
    when: has(intent.requested_notional_abs)
    require: intent.requested_notional_abs <= balance.quote.free
"""


def _buy(iid: str, notional: float, at: str) -> dict[str, Any]:
    return {**_intent(iid, at, 100), "requested_notional_abs": notional, "quote_currency": "USD"}


def test_a_balance_cap_decides_alike_on_the_workflow(temporal_address: str) -> None:
    """Balances, the locks of live reservations, an order list against the cumulative free
    balance and a modify that resizes a lock, across a continue-as-new."""
    steps: list[tuple[str, tuple[Any, ...]]] = [
        ("balance", ("USD", 1_000_000, 0, T + "00Z")),
        ("balance", ("EUR", 5, 0, T + "00Z")),  # undeclared: answered, not an event
        ("intent", (_buy("a", 500_000, T + "01Z"),)),
        ("intent", (_buy("b", 600_000, T + "02Z"),)),
        ("group", ("list", [_buy("l1", 200_000, T + "03Z"), _buy("l2", 400_000, T + "03Z")])),
        ("modify", ("a", 50, T + "04Z")),  # half the notional: 250,000 locked
        ("group", ("list-2", [_buy("m1", 200_000, T + "05Z"), _buy("m2", 400_000, T + "05Z")])),
    ]

    def summary(kind: str, out: Any) -> Any:
        if kind == "intent":
            return out.decision_code
        if kind == "group":
            return (out["approved"], out["member"], out["rule_id"])
        return out["status"]

    async def scenario() -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
        seen = []
        async with control_plane(
            temporal_address, "balances", policy=BALANCE_POLICY, events_per_run=3
        ) as caller:
            calls: dict[str, Callable[..., Awaitable[Any]]] = {
                "balance": caller.update_balance,
                "intent": caller.request_allocation,
                "group": caller.request_group,
                "modify": caller.request_modify,
            }
            for kind, args in steps:
                seen.append(summary(kind, await calls[kind](*args)))
            state = await caller.snapshot()
            assert state["balances"] == {"USD": [1_000_000_000_000, 0]}

            async def continued() -> bool:
                return int((await caller.journal())["run"]) >= 2

            await eventually(continued, "a continue-as-new")
            return seen, await caller.journal(), await caller.snapshot()

    seen, journal, snapshot = asyncio.run(scenario())
    ctl = PortfolioController(load_policy_text(BALANCE_POLICY), equity=100_000, clock=None)
    local_calls: dict[str, Callable[..., Any]] = {
        "balance": ctl.update_balance,
        "intent": ctl.request_allocation,
        "group": ctl.request_group,
        "modify": ctl.request_modify,
    }
    local = [summary(kind, local_calls[kind](*args)) for kind, args in steps]
    assert seen == local
    assert seen == [
        "recorded",
        "undeclared",
        "approved_full",
        "rejected_free_balance",
        (False, "l2", "free-balance"),
        "modified",
        (True, None, None),
    ]
    core, _decisions = replay_journal(journal["events"], journal["origin"])
    assert canonical(core.snapshot()) == canonical(snapshot)
    assert core.state.balance("USD", "free") == ctl.state.balance("USD", "free") == 150_000
