"""Balances per currency (issue 23, item 5): `balance` events, `balance.<CCY>.free/locked`
and `balance.quote.*`, reservations that lock their notional until filled, released or
closed (exactly, through modifies and groups too), snapshots and replay, the schemas, and
the checker's names. On the workflow: tests/test_temporal_orders.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine import PortfolioController, load_policy_text
from policy_engine.analysis.check import check_bytes
from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError, canonical
from policy_engine.control.replay import replay

from support.events import intent
from support.loading import problems

ROOT = Path(__file__).resolve().parent.parent
POLICY = """\
api_version: policy-engine/v1
name: balances
version: 1
currencies: [USD, AUD]
rules:
  - id: free-balance
    when: has(intent.requested_notional_abs)
    require: intent.requested_notional_abs <= balance.quote.free
  - id: usd-floor
    require: balance.USD.locked <= 900000
    when_missing: approve
"""


def at(second: int) -> str:
    return f"2026-01-05T09:00:{second:02}+00:00"


def buy(iid: str, notional: float, second: int = 1, **kw: Any) -> dict[str, Any]:
    return intent(iid, at(second), requested_notional_abs=notional, quote_currency="USD", **kw)


def controller(**kw: Any) -> PortfolioController:
    return PortfolioController(load_policy_text(POLICY), equity=100_000, clock=None, **kw)


def test_a_reservation_locks_its_notional_until_filled_released_or_closed() -> None:
    ctl = controller()
    assert ctl.request_allocation(buy("early", 10, second=0)).decision_code == "rejected_eval_error"
    record = ctl.update_balance("USD", 1_000_000, 0, at(0))
    assert (record["status"], record["free_after_locks"]) == ("recorded", 1_000_000.0)
    assert ctl.request_allocation(buy("a", 500_000, requested_risk_abs=100)).approved
    assert (ctl.state.balance("USD", "free"), ctl.state.balance("USD", "locked")) == (
        500_000,
        500_000,
    )
    assert ctl.request_allocation(buy("b", 600_000)).decision_code == "rejected_free_balance"
    ctl.on_fill_update(
        {"intent_id": "a", "fill_id": "f", "filled_risk_abs": 25, "timestamp": at(2)}
    )
    assert ctl.state.balance("USD", "free") == 625_000  # a quarter filled: the account reports it
    assert ctl.request_modify("a", 50, at(3))["status"] == "modified"  # 250,000 of notional left
    assert ctl.state.balance("USD", "free") == 875_000  # 25 of 50 unfilled: half of 250,000
    # a modify restating its notional is checked against its own currency's balance
    too_rich = ctl.request_modify("a", 50, at(3), requested_notional_abs=2_000_000)
    assert (too_rich["status"], too_rich["rule_id"]) == ("rejected", "free-balance")
    assert ctl.state.balance("USD", "free") == 875_000  # as it was
    ctl.cancel_reservation("a", at(4))
    assert ctl.state.balance("USD", "free") == 1_000_000
    ctl.request_allocation(buy("c", 300_000, second=5))
    ctl.close_position("c", at(6))
    assert ctl.state.balances.locks == {}


def test_an_order_list_is_checked_against_the_cumulative_free_balance() -> None:
    ctl = controller()
    ctl.update_balance("USD", 1_000_000, 0, at(0))
    listed = ctl.request_group("list", [buy("l1", 500_000), buy("l2", 600_000)])
    assert (listed["approved"], listed["member"], listed["rule_id"]) == (
        False,
        "l2",
        "free-balance",
    )
    assert ctl.state.balances.locks == {}  # nothing of the list stays locked
    assert ctl.request_group("fits", [buy("f1", 400_000), buy("f2", 600_000)])["approved"]
    assert ctl.state.balance("USD", "free") == 0


def test_a_clipped_intent_locks_its_approved_share_and_locked_is_read_too() -> None:
    policy = POLICY + "  - id: cap\n    limit: 50\n    on_exceed: clip\n"
    ctl = PortfolioController(load_policy_text(policy), equity=1, clock=None)
    ctl.update_balance("USD", 2_000_000, 100_000, at(0))
    assert (
        ctl.request_allocation(buy("a", 1_000_000, requested_risk_abs=100)).approved_risk_abs == 50
    )
    assert (ctl.state.balance("USD", "free"), ctl.state.balance("USD", "locked")) == (
        1_500_000,
        600_000,
    )
    ctl.request_allocation(buy("b", 700_000, requested_risk_abs=50))  # locks 700,000: 1.3 M
    refused = ctl.request_allocation(buy("c", 1, requested_risk_abs=50))
    assert (refused.decision_code, refused.rule_id) == ("rejected_usd_floor", "usd-floor")


def test_balances_replay_and_snapshot_exactly_and_undeclared_ones_are_not_events() -> None:
    journal: list[dict[str, Any]] = []
    ctl = controller(journal=journal)
    ctl.update_balance("USD", 1_000_000.5, 10, at(0))
    assert ctl.update_balance("EUR", 5, 0, at(0))["status"] == "undeclared"
    ctl.request_allocation(buy("a", 300_000.25))
    ctl.request_group("g", [buy("g1", 100_000), buy("g2", 100_000)])
    assert [e["type"] for e in journal].count("balance") == 1
    snap = ctl.core.snapshot()
    assert snap["balances"] == {"USD": [1_000_000_500_000, 10_000_000]}
    restored = ControlCore.restore(snap)
    assert restored.snapshot() == snap
    assert restored.state.balances.locks == ctl.state.balances.locks
    core = ControlCore(load_policy_text(POLICY))
    for event in journal[1:]:
        core.apply(event)
    assert canonical(core.snapshot()) == canonical(snap)
    assert [r["decision_code"] for r in replay(journal)] == ["approved_full"] * 3


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["intent", "fill", "cancel", "close", "modify"]),
            st.integers(0, 5),
            st.integers(1, 400),
        ),
        max_size=30,
    )
)
def test_the_tracked_locks_equal_the_locks_of_the_live_trades(
    steps: list[tuple[str, int, int]],
) -> None:
    """Whatever the lifecycle does, the incremental locks equal what the live trades lock."""
    ctl = controller()
    ctl.update_balance("USD", 10**9, 0, at(0))
    for n, (kind, k, amount) in enumerate(steps):
        iid, ts = f"t{k}", at(1 + n % 50)
        if kind == "intent":
            ctl.request_allocation(
                buy(f"{iid}-{n}", amount * 997, second=1 + n % 50, requested_risk_abs=amount)
            )
            continue
        live = [t.intent_id for t in ctl.core.book.live()]
        if not live:
            continue
        target = live[k % len(live)]
        if kind == "fill":
            ctl.on_fill_update(
                {
                    "intent_id": target,
                    "fill_id": f"f{n}",
                    "filled_risk_abs": amount / 7,
                    "timestamp": ts,
                }
            )
        elif kind == "cancel":
            ctl.cancel_reservation(target, ts)
        elif kind == "close":
            ctl.close_position(target, ts)
        else:
            ctl.request_modify(target, amount, ts)
    book = ctl.core.book
    expected: dict[str, int] = {}
    for t in book.live():
        if t.currency is not None and book.locked(t):
            expected[t.currency] = expected.get(t.currency, 0) + book.locked(t)
    assert ctl.state.balances.locks == expected


def test_bad_balances_are_refused_and_names_are_checked() -> None:
    ctl = controller()
    for bad in (
        {"currency": "usd", "free": 1},
        {"currency": "USD", "free": -1},
        {"currency": "USD"},
    ):
        with pytest.raises(EventError):
            ctl.apply({"type": "balance", **bad})
    assert problems("currencies: [USD]\nrules: [{id: r, require: balance.EUR.free > 0}]\n") == [
        "t.yaml:5:26: PT301 unknown name `balance.EUR` (did you mean `balance.USD`?)"
    ]
    assert problems("rules: [{id: r, require: balance.USD.free > 0}]\n")[0].endswith(
        "the policy declares no `currencies`"
    )

    def codes(body: str) -> list[str]:
        text = "api_version: policy-engine/v1\nname: t\nversion: 1\n" + body
        return [x.code for x in check_bytes(text.encode(), "t.yaml").diagnostics]

    assert codes("currencies: [USD]\nrules: [{id: r, require: 'true'}]\n") == ["PT431"]
    quoted = "currencies: [USD, AUD]\nrules: [{id: r, require: balance.quote.free >= 0}]\n"
    assert "PT431" not in codes(quoted)  # `quote` reads whichever currency the intent names


@pytest.mark.parametrize("name", ["events", "journal"])
def test_the_schemas_know_balances(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = {"type": "balance", "currency": "USDT", "free": 5, "locked": 0, "timestamp": at(0)}
    assert [e.message for e in validator.iter_errors(good)] == []
    assert list(validator.iter_errors({**good, "currency": "usdt"}))
    priced = {"type": "intent", **buy("a", 10)}
    assert [e.message for e in validator.iter_errors(priced)] == []
