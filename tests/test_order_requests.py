"""Decided cancels and modifies (issue 23, item 2): `request_cancel` / `request_modify` pass
through the rules of their own kind (`applies_to`), windows count them, a refusal names its
rule, a modify that grows passes the caps like an intent and one that shrinks releases the
difference exactly; journaled, replayed (and what-if replayed) identically, counted by the
metrics. On the workflow: tests/test_temporal_orders.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from policy_engine import PortfolioController, load_policy_text
from policy_engine.cli import cli
from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError, canonical
from policy_engine.control.metrics import ControlMetrics
from policy_engine.control.replay import replay

from support.events import intent

ROOT = Path(__file__).resolve().parent.parent
POLICY = """\
api_version: policy-engine/v1
name: orders
version: 1
inputs:
  price: {type: number, default: null}
windows:
  modifies_1s: {count: modify_requests, per: portfolio, over: 1s}
  cancels_1h: {count: cancel_requests, per: symbol, over: 1h}
  released_1h: {count: cancels, per: portfolio, over: 1h}
rules:
  - id: heat-cap
    limit: 1000 - portfolio.heat
    on_exceed: clip
  - id: modify-rate
    applies_to: [modify]
    require: portfolio.modifies_1s < 3
  - id: price-band
    applies_to: [intent, modify]
    when: has(intent.price)
    require: intent.price < 2
  - id: keep-eth
    applies_to: [cancel]
    require: intent.symbol != "ETH-USD" or symbol.cancels_1h < 1
"""


def at(second: int) -> str:
    return f"2026-01-05T09:00:{second:02}+00:00"


def controller(**kw: Any) -> PortfolioController:
    return PortfolioController(load_policy_text(POLICY), equity=100_000, clock=None, **kw)


def test_an_existing_policy_decides_intents_exactly_as_before() -> None:
    """Rules without `applies_to` decide intents only: the intent chain holds every one of
    them, and the cancel and modify chains none."""
    policy = load_policy_text(POLICY.replace("applies_to: [modify]", "applies_to: [intent]"))
    assert [r.id for r in policy.rules] == ["heat-cap", "modify-rate", "price-band"]
    assert [r.id for r in policy.for_request("cancel").rules] == ["keep-eth"]
    assert [r.id for r in policy.for_request("modify").rules] == ["price-band"]
    plain = load_policy_text(POLICY.split("  - id: modify-rate")[0])
    assert plain.for_request("grow") is plain  # nothing new to decide a growth by
    assert plain.for_request("cancel").rules == ()


def test_a_modify_that_grows_passes_the_caps_and_one_that_shrinks_releases_exactly() -> None:
    records: list[dict[str, Any]] = []
    ctl = controller(records=records)
    assert ctl.request_allocation(intent("a", at(0), requested_risk_abs=600)).approved
    assert ctl.request_allocation(intent("b", at(0), requested_risk_abs=300)).approved
    # decided without its own reservation: 1000 - 300 leaves 700 for a
    grown = ctl.request_modify("a", 700, at(1))
    assert (grown["status"], grown["decision_code"], grown["reserved_risk_abs"]) == (
        "modified",
        "approved_full",
        700.0,
    )
    assert ctl.state.reserved_units == 1_000_000_000
    # a clip that leaves it at least its size grows it less; never more than requested
    clipped = ctl.request_modify("a", 900, at(1))
    assert (clipped["decision_code"], clipped["rule_id"], clipped["approved_risk_abs"]) == (
        "approved_clipped",
        "heat-cap",
        700.0,
    )
    ctl.on_fill_update(
        {"intent_id": "a", "fill_id": "f", "filled_risk_abs": 200, "timestamp": at(2)}
    )
    # shrinking releases the difference exactly (the 200 filled stay active)
    shrunk = ctl.request_modify("a", 250.5, at(5))
    assert shrunk["status"] == "modified" and shrunk["reserved_risk_abs"] == 50.5
    assert ctl.state.reserved_units == 350_500_000 and ctl.state.active_units == 200_000_000
    assert ctl.state.active_trades == 2
    # below its filled risk: refused, not journaled
    below = ctl.request_modify("a", 100, at(5))
    assert (
        below["status"] == "invalid" and below["seq"] is None and "filled risk" in below["message"]
    )


def test_a_clip_below_the_orders_size_rejects_the_growth_and_names_the_rule() -> None:
    ctl = controller()
    ctl.request_allocation(intent("a", at(0), requested_risk_abs=500))
    ctl.request_allocation(intent("b", at(0), requested_risk_abs=400))
    ctl.request_allocation(intent("c", at(0), requested_risk_abs=100))
    # a fills beyond its reservation: the book now holds 1,100, more than the cap
    ctl.on_fill_update(
        {"intent_id": "a", "fill_id": "f", "filled_risk_abs": 600, "timestamp": at(1)}
    )
    out = ctl.request_modify("b", 450, at(2))  # 1000 - 700 without b: 300, below its 400
    assert (out["status"], out["decision_code"], out["rule_id"]) == (
        "rejected",
        "rejected_request_clipped",
        "heat-cap",
    )
    assert (
        out["reserved_risk_abs"] == 400.0
        and "would clip it from 450.0 to 300.0" in out["reasons"][0]
    )
    assert ctl.state.reserved_units == 500_000_000  # b's 400 and c's 100, as they were
    # a shrink is decided by the modify rules alone: the over-full book does not stop it
    assert ctl.request_modify("b", 350, at(3))["status"] == "modified"


def test_rejected_requests_name_the_rule_and_change_nothing_but_the_counts() -> None:
    records: list[dict[str, Any]] = []
    ctl = controller(records=records)
    ctl.request_allocation(intent("a", at(0), symbol="ETH-USD"))
    ctl.request_allocation(intent("b", at(0), symbol="ETH-USD"))
    first = ctl.request_cancel("a", at(1))
    assert first["status"] == "cancelled" and first["released_risk_abs"] == 100.0
    before = ctl.get_portfolio_state()["totals"]
    second = ctl.request_cancel("b", at(2))
    assert (second["status"], second["rule_id"], second["decision_code"]) == (
        "rejected",
        "keep-eth",
        "rejected_keep_eth",
    )
    assert ctl.get_portfolio_state()["totals"] == before
    for n in range(3):
        assert ctl.request_modify("b", 100, at(3), price=1.5)["status"] == "modified", n
    throttled = ctl.request_modify("b", 90, at(3))
    assert (throttled["status"], throttled["rule_id"]) == ("rejected", "modify-rate")
    banned = ctl.request_modify("b", 90, at(5), price=2.5)  # the window emptied; the band holds
    assert (banned["rule_id"], banned["reserved_risk_abs"]) == ("price-band", 100.0)
    # the released remainder counted as a cancel: `cancels` saw one
    assert ctl.core.state.windows["released_1h"] == 1


def test_requests_are_journaled_and_replay_identically_also_as_a_what_if() -> None:
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = controller(journal=journal, records=records)
    ctl.request_allocation(intent("a", at(0), symbol="ETH-USD"))
    ctl.request_allocation(intent("b", at(0), symbol="ETH-USD"))
    ctl.request_cancel("a", at(1))
    ctl.request_cancel("b", at(2))  # rejected: journaled (the window counted it)
    ctl.request_cancel("a", at(3))  # nothing live: answered, not journaled
    ctl.request_modify("b", 250, at(4), price=1.0)
    kinds = [e["type"] for e in journal]
    assert kinds.count("request_cancel") == 2 and kinds.count("request_modify") == 1
    assert journal[-1] == {
        "type": "request_modify",
        "intent_id": "b",
        "requested_risk_abs": 250,
        "timestamp": at(4),
        "price": 1.0,
    }
    live = [r for r in records if r["kind"] != "decision" and r["kind"].startswith("request_")]
    live = [r for r in live if r["seq"] is not None]
    replayed = [r for r in replay(journal) if r["kind"].startswith("request_")]
    assert [canonical(r) for r in replayed] == [canonical(r) for r in live]
    # what-if: a policy without the cancel rule cancels b too
    looser = load_policy_text(POLICY.split("  - id: keep-eth")[0])
    what_if = [r for r in replay(journal, looser) if r["kind"] == "request_cancel"]
    assert [r["status"] for r in what_if] == ["cancelled", "cancelled"]
    core = ControlCore(load_policy_text(POLICY))
    for event in journal[1:]:
        core.apply(event)
    assert canonical(core.snapshot()["trades"]) == canonical(ctl.core.snapshot()["trades"])


def test_bad_requests_are_refused_before_the_journal() -> None:
    journal: list[dict[str, Any]] = []
    ctl = controller(journal=journal)
    ctl.request_allocation(intent("a", at(0)))
    size = len(journal)
    with pytest.raises(EventError, match="cannot be restated"):
        ctl.request_modify("a", 50, at(1), symbol="ETH-USD")
    with pytest.raises(EventError, match="requested_risk_abs"):
        ctl.request_modify("a", -1, at(1))
    with pytest.raises(EventError, match="timestamp"):
        ctl.request_cancel("a", "yesterday")
    bad = ctl.request_modify("a", 50, at(1), price="cheap")
    assert bad["status"] == "invalid" and "price" in bad["message"]
    assert ctl.request_cancel("nope", at(1))["status"] == "unknown"
    assert len(journal) == size


def test_metrics_count_decided_cancels_and_modifies() -> None:
    metrics = ControlMetrics()
    ctl = controller(metrics=metrics)
    ctl.request_allocation(intent("a", at(0), symbol="ETH-USD"))
    ctl.request_allocation(intent("b", at(0), symbol="ETH-USD"))
    ctl.request_cancel("a", at(1))
    ctl.request_cancel("b", at(1))
    ctl.request_modify("b", 50, at(1))
    ctl.request_modify("zz", 50, at(1))
    families = {f.name: f for f in metrics.collect()}
    cancels = {
        s.labels["status"]: s.value for s in families["policy_engine_cancel_requests"].samples
    }
    modifies = {
        s.labels["status"]: s.value for s in families["policy_engine_modify_requests"].samples
    }
    assert cancels == {"cancelled": 1.0, "rejected": 1.0}
    assert modifies == {"modified": 1.0, "unknown": 1.0}


@pytest.mark.parametrize("name", ["events", "journal"])
def test_the_schemas_know_the_requests(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = [
        {"type": "request_cancel", "intent_id": "a", "timestamp": at(1)},
        {"type": "request_modify", "intent_id": "a", "requested_risk_abs": 5, "timestamp": at(1)},
        {
            "type": "request_modify",
            "intent_id": "a",
            "requested_risk_abs": 5,
            "timestamp": at(1),
            "price": 1.2,
        },
    ]
    for event in good:
        assert [e.message for e in validator.iter_errors(event)] == []
    assert list(
        validator.iter_errors({"type": "request_modify", "intent_id": "a", "timestamp": at(1)})
    )
    assert list(validator.iter_errors({"type": "request_cancel", "intent_id": "a"}))


def test_policy_explain_shows_the_chain_of_a_request(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    (tmp_path / "i.json").write_text(json.dumps(intent("a", at(0), symbol="ETH-USD")))
    (tmp_path / "s.json").write_text(
        json.dumps({"equity": 1, "symbols": {"ETH-USD": {"windows": {"cancels_1h": 1}}}})
    )
    args = [
        "explain",
        str(policy),
        "--intent",
        str(tmp_path / "i.json"),
        "--state",
        str(tmp_path / "s.json"),
    ]
    shown = CliRunner().invoke(cli, [*args, "--request", "cancel"])
    assert shown.exit_code == 0, shown.output
    assert "decision rejected_keep_eth" in shown.output and "heat-cap" not in shown.output
    assert "decision approved_full" in CliRunner().invoke(cli, args).output
