"""Latches (issue 11): set after any event whose outcome makes their `when` hold, set even
when it clears, until the rollover (`until: rollover`) or a journaled `reset_latch`; a mode
reading a latch moves the envelope at once; the reset is an API call, an event and a command.
The daily-loss limit through `policy run`: tests/limits/daily_loss.*."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine import PortfolioConstraintEnvelope, PortfolioController, load_policy_text
from policy_engine.cli import cli
from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError, PolicyEvent, canonical
from policy_engine.control.replay import replay

from support.events import intent as make_intent
from support.loading import problems

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
POLICY = """\
api_version: policy-engine/v1
name: latches
version: 1
latches:
  daily_loss: {when: "portfolio.day_pnl <= -2% * portfolio.day_start_equity", until: rollover}
  big_loss: {when: "portfolio.drawdown >= 10%", until: reset}
modes:
  normal: {}
  halted: {risk_multiplier: 0, flatten_only: true, when: latch.big_loss}
rules:
  - id: halt
    require: not latch.daily_loss and not mode.flatten_only
"""


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def intent(iid: str, hours: float) -> dict[str, Any]:
    return make_intent(iid, at(hours))


def controller(**kw: Any) -> PortfolioController:
    return PortfolioController(load_policy_text(POLICY), equity=100_000, clock=None, **kw)


def test_a_latch_stays_set_after_its_condition_clears_until_the_rollover() -> None:
    records: list[dict[str, Any]] = []
    ctl = controller(records=records)
    assert ctl.request_allocation(intent("a", 0)).approved
    ctl.update_equity(97_900, at(1))
    latch = [r for r in records if r["kind"] == "latch"]
    assert latch == [
        {
            "kind": "latch",
            "seq": 3,
            "ts": at(1).isoformat(),
            "name": "daily_loss",
            "status": "set",
            "when": "portfolio.day_pnl <= -2% * portfolio.day_start_equity",
            "until": "rollover",
        }
    ]
    assert records[-1]["kind"] == "equity"  # the event's own record stays last
    ctl.update_equity(100_500, at(2))
    assert ctl.request_allocation(intent("b", 2)).decision_code == "rejected_halt"
    assert ctl.get_portfolio_state()["latches"] == {
        "daily_loss": {"seq": 3, "ts": at(1).isoformat(), "error": None}
    }
    assert ctl.request_allocation(intent("c", 15)).approved  # the next day (UTC midnight)


def test_a_mode_reading_a_latch_is_broadcast_when_it_sets_and_when_it_is_reset() -> None:
    inbox: list[PortfolioConstraintEnvelope] = []
    ctl = controller()
    ctl.subscribe(inbox.append)
    ctl.update_equity(89_000, at(1))
    assert inbox[-1].portfolio_mode == "halted" and inbox[-1].force_flatten_only
    ctl.update_equity(100_000, at(2))  # recovered: the drawdown is 0, the latch holds
    assert ctl.constraints().portfolio_mode == "halted"
    ctl.advance_time(at(30))  # `until: reset` survives the rollover
    assert ctl.constraints().portfolio_mode == "halted"
    record = ctl.reset_latch("big_loss", "risk desk: reviewed", at(31))
    assert record["status"] == "reset" and record["reason"] == "risk desk: reviewed"
    assert inbox[-1].portfolio_mode == "normal"


def test_a_reset_that_would_change_nothing_is_refused_and_not_journaled() -> None:
    journal: list[dict[str, Any]] = []
    ctl = controller(journal=journal)
    assert ctl.reset_latch("big_loss", "x", at(0))["status"] == "not_set"
    ctl.update_equity(89_000, at(1))
    refused = ctl.reset_latch("big_loss", "too early", at(2))
    assert (refused["status"], refused["seq"]) == ("still_holds", None)
    assert "would be set again at once" in refused["message"]
    with pytest.raises(
        EventError, match=r"declares no latch 'big_los' \(did you mean `big_loss`\?\)"
    ):
        ctl.reset_latch("big_los", "typo", at(2))
    assert [e["type"] for e in journal] == ["policy", "equity", "equity"]


def test_resets_are_journaled_and_replay_exactly() -> None:
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = controller(journal=journal, records=records)
    ctl.update_equity(89_000, at(1))
    ctl.update_equity(99_000, at(2))
    ctl.reset_latch("big_loss", "reviewed", at(3))
    ctl.request_allocation(intent("a", 4))
    assert journal[-2] == {
        "type": "reset_latch",
        "name": "big_loss",
        "reason": "reviewed",
        "timestamp": at(3).isoformat(),
    }
    live = [canonical(r) for r in records if r.get("seq") is not None]
    assert [canonical(r) for r in replay(journal, lifecycle=True)] == live


def test_a_latch_that_cannot_be_evaluated_is_set() -> None:
    """Fail closed: a `when` that fails (here a division by zero) sets the latch."""
    text = POLICY.replace(
        '"portfolio.drawdown >= 10%"', '"portfolio.heat / portfolio.open_positions > 1"'
    )
    core = ControlCore(load_policy_text(text))
    out = core.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    latch = [r for r in out.records if r["kind"] == "latch"]
    assert latch[0]["name"] == "big_loss"
    assert "is zero" in latch[0]["error"]
    assert out.broadcast is not None and out.broadcast.portfolio_mode == "halted"


def test_a_snapshot_keeps_the_set_latches() -> None:
    core = ControlCore(load_policy_text(POLICY))
    core.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    core.apply({"type": "equity", "equity": 89_000, "timestamp": at(1).isoformat()})
    restored = ControlCore.restore(json.loads(json.dumps(core.snapshot())))
    assert restored.state.latches == {"big_loss": True, "daily_loss": True}
    assert restored.snapshot() == core.snapshot()


def test_a_reload_that_drops_a_latch_clears_it() -> None:
    core = ControlCore(load_policy_text(POLICY))
    core.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    core.apply({"type": "equity", "equity": 97_000, "timestamp": at(1).isoformat()})
    lean = (
        POLICY.replace("version: 1", "version: 2")
        .replace(
            '  daily_loss: {when: "portfolio.day_pnl <= -2% * portfolio.day_start_equity", until: rollover}\n',
            "",
        )
        .replace("not latch.daily_loss and ", "")
    )
    out = core.apply(PolicyEvent(load_policy_text(lean)))
    assert out.records[-1]["latches_dropped"] == ["daily_loss"]
    assert core.state.latches == {}


def test_what_a_latch_cannot_read_is_refused() -> None:
    assert problems(
        """\
        latches:
          a: {when: "strategy.heat > 5", until: rollover}
          b: {when: "portfolio.heat", until: reset}
          c: {when: "latch.a", until: reset}
        rules: [{id: r, require: not latch.d}]
        """
    ) == [
        "t.yaml:5:14: PT310 `strategy.heat` cannot be read in a latch's `when` (only `params`, "
        "`portfolio`)",
        "t.yaml:6:14: PT303 the `when` of latch `b` must be true or false, but `portfolio.heat` "
        "is a number",
        "t.yaml:7:14: PT310 `latch.a` cannot be read in a latch's `when` (only `params`, "
        "`portfolio`)",
        "t.yaml:8:30: PT301 unknown name `latch.d` (did you mean `latch.c`?)",
    ]
    assert problems("rules: [{id: r, require: not latch.x}]") == [
        "t.yaml:4:30: PT301 unknown name `latch.x`: the policy declares no `latches`"
    ]


def test_the_reset_command_prints_or_appends_the_event(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "reset-latch",
            str(policy),
            "big_loss",
            "--reason",
            "desk",
            "--timestamp",
            "2026-01-05T10:00:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "type": "reset_latch",
        "name": "big_loss",
        "reason": "desk",
        "timestamp": "2026-01-05T10:00:00+00:00",
    }
    events = tmp_path / "events.jsonl"
    result = runner.invoke(
        cli, ["reset-latch", str(policy), "daily_loss", "--reason", "desk", "--append", str(events)]
    )
    assert result.exit_code == 0 and events.read_text().count("reset_latch") == 1
    wrong = runner.invoke(cli, ["reset-latch", str(policy), "dayly_loss", "--reason", "x"])
    assert wrong.exit_code == 2
    assert "declares no latch `dayly_loss` (did you mean `daily_loss`?)" in wrong.output


def test_a_latch_set_by_an_intent_or_a_close_reaches_every_subscriber() -> None:
    text = (
        POLICY.replace('"portfolio.drawdown >= 10%"', '"portfolio.day_realized_pnl <= -500"')
        .replace(
            "  daily_loss:",
            "  heavy: {when: portfolio.heat >= 1000, until: rollover}\n  daily_loss:",
        )
        .replace("when: latch.big_loss}", "when: latch.big_loss or latch.heavy}")
    )
    by_intent = PortfolioController(load_policy_text(text), equity=100_000, clock=None)
    inbox: list[PortfolioConstraintEnvelope] = []
    by_intent.subscribe(inbox.append)
    big = {**intent("a", 0), "requested_risk_abs": 1_000}
    assert by_intent.request_allocation(big).approved  # decided before the latch set
    assert [e.portfolio_mode for e in inbox] == ["normal", "halted"]

    by_close = PortfolioController(load_policy_text(text), equity=100_000, clock=None)
    by_close.request_allocation(intent("b", 0))
    by_close.on_fill_update(
        {"intent_id": "b", "fill_id": "f", "filled_risk_abs": 100, "timestamp": at(0)}
    )
    inbox2: list[PortfolioConstraintEnvelope] = []
    by_close.subscribe(inbox2.append)
    by_close.close_position("b", at(1), realized_pnl=-600)
    assert [e.portfolio_mode for e in inbox2] == ["normal", "halted"]
