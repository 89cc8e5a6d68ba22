"""`policy explain` of an order group (issue 23, item 1): each member decided as the control
core decides a `group` event (engine/groups.py, the one path both use), each against the
state with the members before it reserved, with the deciding member and rule; the same
group through the in-process controller gives the same member decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from policy_engine import PortfolioController, load_policy
from policy_engine.cli import cli

DATA = Path(__file__).resolve().parent / "data"
POLICY = DATA / "orders_policy.yaml"  # free-balance, then a heat cap of 1000 that clips
TS = "2026-01-05T09:00:03Z"


def _member(intent_id: str, risk: float, notional: float | None, **more: Any) -> dict[str, Any]:
    member: dict[str, Any] = {
        "intent_id": intent_id,
        "strategy": "S",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": TS,
    }
    if notional is not None:
        member.update(requested_notional_abs=notional, quote_currency="USD")
    return {**member, **more}


def _explain(tmp_path: Path, group: dict[str, Any], *more: str) -> Any:
    path, state = tmp_path / "group.json", tmp_path / "state.json"
    path.write_text(json.dumps(group))
    state.write_text(json.dumps({"equity": 100000, "balances": {"USD": {"free": 700000}}}))
    args = ["explain", str(POLICY), "--intent", str(path), "--state", str(state), *more]
    return CliRunner().invoke(cli, args)


def _core(group: dict[str, Any]) -> list[dict[str, Any]]:
    """The member decision records of the same group on the same state, in the controller."""
    records: list[dict[str, Any]] = []
    with PortfolioController(load_policy(POLICY), equity=100000, records=records.append) as c:
        c.apply(
            {"type": "balance", "currency": "USD", "free": 700000, "locked": 0, "timestamp": TS}
        )
        records.clear()
        c.apply({"type": "group", **group})
    return [r for r in records if r.get("kind") == "decision"]


def test_a_member_reads_the_members_before_it_reserved_as_the_core_does(tmp_path: Path) -> None:
    # the first member's 500000 leaves 200000 free: the second's 400000 fails free-balance
    group = {
        "group_id": "b",
        "intents": [
            _member("b-entry", 300, 500000),
            _member("b-add", 300, 400000),
            _member("b-sl", 300, None, side="short", reduce_only=True),
        ],
    }
    out = _explain(tmp_path, group, "--json")
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["group"] == {
        "group_id": "b",
        "approved": False,
        "decision_code": "rejected_group",
        "rule_id": "free-balance",
        "member": "b-add",
    }
    decisions = [m["decision"] for m in shown["members"]]
    core = _core(group)
    keys = ("intent_id", "approved", "decision_code", "rule_id", "approved_risk_abs", "reasons")
    assert [{k: d[k] for k in keys} for d in decisions] == [{k: r[k] for k in keys} for r in core]
    assert [d["decision_code"] for d in decisions] == [
        "rejected_group",
        "rejected_free_balance",
        "rejected_group",
    ]
    second = {r["rule_id"]: r["values"] for r in shown["members"][1]["rules"]}
    assert second["free-balance"]["balance.quote.free"] == 200000  # after the first's lock
    assert second["heat-cap"]["portfolio.heat"] == 300  # the first member's reservation
    assert shown["members"][2]["rules"] is None  # not reached: not evaluated


def test_a_clipped_member_rejects_the_group_and_the_text_names_it(tmp_path: Path) -> None:
    group = {"group_id": "c", "intents": [_member("c1", 600, 1000), _member("c2", 600, 1000)]}
    out = _explain(tmp_path, group)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "group c of 2: REJECTED by member c2 (`heat-cap`)" in lines
    assert "member 1 c1: rejected_group (600 -> 0) by `heat-cap`" in lines
    assert "  group c: heat-cap would clip it from 600.0 to 400.0" in lines
    assert [r["decision_code"] for r in _core(group)] == ["rejected_group", "rejected_group"]


def test_an_approved_group_of_two_reads_group_values(tmp_path: Path) -> None:
    group = {"group_id": "d", "intents": [_member("d1", 200, 1000), _member("d2", 300, 2000)]}
    out = _explain(tmp_path, group, "--json")
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["group"]["approved"] is True
    assert [m["decision"]["approved_risk_abs"] for m in shown["members"]] == [200, 300]
    assert [r["approved"] for r in _core(group)] == [True, True]


def test_a_malformed_group_is_a_usage_error(tmp_path: Path) -> None:
    twice = {"group_id": "e", "intents": [_member("e1", 1, None), _member("e1", 1, None)]}
    assert "names a member id twice" in _explain(tmp_path, twice).output
    assert "needs a `group_id`" in _explain(tmp_path, {"intents": [_member("x", 1, None)]}).output
    assert "a list of `intents`" in _explain(tmp_path, {"group_id": "f", "intents": []}).output
    out = _explain(
        tmp_path, {"group_id": "g", "intents": [_member("g1", 1, None)]}, "--request", "cancel"
    )
    assert out.exit_code == 2 and "drop --request" in out.output
