"""Order groups (issue 23, item 1): a group is decided all or none, atomically; rules read
`group.count`, `group.risk`, `group.notional`; a rejected or clipped member reserves nothing
of the group and the records name the member and the rule; `cancel_group` releases the
members together; journaled, replayed and snapshotted exactly. On the workflow:
tests/test_temporal_orders.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from policy_engine import PortfolioController, load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError, canonical
from policy_engine.control.metrics import ControlMetrics
from policy_engine.control.replay import replay

from support.events import intent

ROOT = Path(__file__).resolve().parent.parent
POLICY = """\
api_version: policy-engine/v1
name: groups
version: 1
windows:
  asks_1h: {count: requests, per: portfolio, over: 1h}
rules:
  - id: exits
    allow: intent.risk_reducing
  - id: three-at-most
    require: group.count <= 3
  - id: notional
    when: has(group.notional)
    require: group.notional <= 500000
  - id: heat-cap
    limit: 1000 - portfolio.heat
    on_exceed: clip
"""


def at(second: int) -> str:
    return f"2026-01-05T09:00:{second:02}+00:00"


def bracket(prefix: str, risk: float = 300, second: int = 0) -> list[dict[str, Any]]:
    exit_leg = {"side": "short", "reduce_only": True, "requested_risk_abs": 0}
    return [
        intent(f"{prefix}-entry", at(second), requested_risk_abs=risk),
        intent(f"{prefix}-sl", at(second), **exit_leg),
        intent(f"{prefix}-tp", at(second), **exit_leg),
    ]


def controller(**kw: Any) -> PortfolioController:
    return PortfolioController(load_policy_text(POLICY), equity=100_000, clock=None, **kw)


def test_a_bracket_is_reserved_whole_and_members_read_the_group() -> None:
    records: list[dict[str, Any]] = []
    ctl = controller(records=records)
    group = ctl.request_group("b1", bracket("b1"))
    assert (group["kind"], group["approved"], group["reserved_risk_abs"]) == ("group", True, 300.0)
    members = [r for r in records if r["kind"] == "decision"]
    assert [(r["intent_id"], r["decision_code"], r["group_id"]) for r in members] == [
        ("b1-entry", "approved_full", "b1"),
        ("b1-sl", "approved_full", "b1"),
        ("b1-tp", "approved_full", "b1"),
    ]
    assert ctl.state.reserved_units == 300_000_000 and ctl.state.active_trades == 1
    assert ctl.core.state.windows["asks_1h"] == 3  # each member decided is counted
    four = [*bracket("b2", second=1), intent("b2-extra", at(1))]
    refused = ctl.request_group("b2", four)
    assert (refused["decision_code"], refused["rule_id"], refused["member"]) == (
        "rejected_group",
        "three-at-most",
        "b2-entry",
    )


def test_a_member_clipped_or_rejected_reserves_nothing_of_the_group() -> None:
    records: list[dict[str, Any]] = []
    ctl = controller(records=records)
    ctl.request_allocation(intent("a", at(0), requested_risk_abs=500))
    before = ctl.get_portfolio_state()["totals"]
    # the second entry would be clipped (1000 - 500 - 300 leaves 200): none is reserved
    legs = [
        intent("g-1", at(1), requested_risk_abs=300),
        intent("g-2", at(1), requested_risk_abs=300),
    ]
    group = ctl.request_group("g", legs)
    assert (group["approved"], group["member"], group["rule_id"]) == (False, "g-2", "heat-cap")
    assert ctl.get_portfolio_state()["totals"] == before
    first, second = [r for r in records if r["kind"] == "decision" and r.get("group_id") == "g"]
    assert (first["decision_code"], first["context"], first["reserved_risk_abs"]) == (
        "rejected_group",
        {"member": "g-2"},
        0.0,
    )
    assert second["decision_code"] == "rejected_group"
    assert second["reasons"][0] == "group g: heat-cap would clip it from 300.0 to 200.0"
    # the ids are consumed: the same group again is refused whole, not journaled
    again = ctl.request_group("g", legs)
    assert (again["seq"], again["decision_code"], again["member"]) == (
        None,
        "rejected_duplicate_intent",
        "g-1",
    )
    # a notional over the group's cap rejects at the first member; later ones are not reached
    rich = [intent(f"n-{i}", at(2), requested_notional_abs=200_000) for i in range(3)]
    out = ctl.request_group("n", rich)
    assert (out["member"], out["rule_id"]) == ("n-0", "notional")
    # the members not reached used their ids too: none can be decided again
    assert ctl.request_allocation(intent("n-2", at(3))).decision_code == "rejected_duplicate_intent"
    assert ctl.get_portfolio_state()["totals"] == before


def test_cancel_group_releases_the_members_together() -> None:
    ctl = controller()
    legs = [
        intent("x-1", at(0), requested_risk_abs=100),
        intent("x-2", at(0), requested_risk_abs=200),
    ]
    ctl.request_group("x", legs)
    ctl.on_fill_update(
        {"intent_id": "x-1", "fill_id": "f", "filled_risk_abs": 40, "timestamp": at(1)}
    )
    out = ctl.cancel_group("x", at(2))
    assert (out["status"], out["released_risk_abs"], out["members"]) == (
        "cancelled",
        260.0,
        ["x-1", "x-2"],
    )
    assert ctl.state.reserved_units == 0 and ctl.state.active_units == 40_000_000
    assert ctl.cancel_group("x", at(3))["status"] == "unknown"  # nothing left: not an event


def test_groups_journal_replay_and_snapshot_exactly() -> None:
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = controller(journal=journal, records=records)
    ctl.request_group("b1", bracket("b1"))
    ctl.request_group("b2", bracket("b2", risk=900, second=1))  # clipped: rejected whole
    ctl.cancel_group("b1", at(2))
    assert [e["type"] for e in journal[2:]] == ["group", "group", "cancel_group"]
    live = [r for r in records if r["kind"] == "decision"]
    assert [canonical(r) for r in replay(journal)] == [canonical(r) for r in live]
    core = ControlCore(load_policy_text(POLICY))
    for event in journal[1:]:
        core.apply(event)
    assert canonical(core.snapshot()) == canonical(ctl.core.snapshot())
    restored = ControlCore.restore(ctl.core.snapshot())
    assert restored.snapshot() == ctl.core.snapshot()


def test_a_group_member_keeps_its_group_across_a_snapshot() -> None:
    ctl = controller()
    ctl.request_group("b1", bracket("b1"))
    core = ControlCore.restore(ctl.core.snapshot())
    assert core.book.get("b1-entry") is not None and core.book.get("b1-entry").group == "b1"  # type: ignore[union-attr]
    assert core.apply({"type": "cancel_group", "group_id": "b1", "timestamp": at(5)}).records[-1][
        "members"
    ] == ["b1-entry"]


def test_a_malformed_group_is_refused_before_the_journal() -> None:
    journal: list[dict[str, Any]] = []
    ctl = controller(journal=journal)
    size = len(journal)
    with pytest.raises(EventError, match="intent 2"):
        ctl.request_group("bad", [intent("a", at(0)), {"intent_id": "b"}])
    with pytest.raises(EventError, match="appears twice"):
        ctl.request_group("bad", [intent("a", at(0)), intent("a", at(0))])
    with pytest.raises(EventError, match="1 to 64"):
        ctl.request_group("bad", [])
    assert len(journal) == size


def test_metrics_count_groups() -> None:
    metrics = ControlMetrics()
    ctl = controller(metrics=metrics)
    ctl.request_group("b1", bracket("b1"))
    ctl.request_group("b2", bracket("b2", risk=900))
    ctl.request_group("b2", bracket("b2", risk=900))
    families = {f.name: f for f in metrics.collect()}
    groups = {s.labels["outcome"]: s.value for s in families["policy_engine_order_groups"].samples}
    assert groups == {"approved": 1.0, "rejected": 1.0, "refused": 1.0}


@pytest.mark.parametrize("name", ["events", "journal"])
def test_the_schemas_know_groups(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = {"type": "group", "group_id": "b1", "intents": bracket("b1")}
    assert [e.message for e in validator.iter_errors(good)] == []
    cancel = {"type": "cancel_group", "group_id": "b1", "timestamp": at(1)}
    assert [e.message for e in validator.iter_errors(cancel)] == []
    assert list(validator.iter_errors({"type": "group", "group_id": "b1", "intents": []}))
