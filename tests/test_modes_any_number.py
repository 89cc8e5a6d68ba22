"""Modes of any number (issue 11): `modes` are ordered mildest to most severe as written,
`normal` first, any names; the ladder, overrides, envelopes and lints work for all of them,
and the usual three-mode policies behave exactly as before."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy_engine import PolicyError, PortfolioController, PortfolioSnapshot, load_policy_text
from policy_engine.analysis.check import check_bytes
from policy_engine.control.events import EventError
from policy_engine.engine.contracts import PortfolioIntent

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

LADDER = """\
api_version: policy-engine/v1
name: ladder
version: 1
params: {cap: 1000}
modes:
  normal:   {risk_multiplier: 1.0}
  cautious: {risk_multiplier: 0.75, when: "portfolio.drawdown >= 2%"}
  defensive: {risk_multiplier: 0.5, when: "portfolio.drawdown >= 4%"}
  critical: {risk_multiplier: 0.25, max_new: 1, when: "portfolio.drawdown >= 6%"}
  halted:   {risk_multiplier: 0.0, flatten_only: true, when: "portfolio.drawdown >= 8%"}
envelope:
  max_new_risk_abs: params.cap * mode.risk_multiplier
rules:
  - id: exits
    allow: intent.risk_reducing
  - id: flatten-only
    require: not mode.flatten_only
    message: "portfolio is {mode.name}"
  - id: cap
    limit: params.cap * mode.risk_multiplier
    on_exceed: clip
"""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def intent(n: int, risk: float = 1000, side: str = "long") -> dict[str, Any]:
    return {
        "intent_id": f"i{n}",
        "strategy": "S",
        "symbol": "BTC-USD",
        "side": side,
        "requested_risk_abs": risk,
        "timestamp": at(n).isoformat(),
    }


@pytest.mark.parametrize(
    ("equity", "mode", "approved"),
    [
        (100_000, "normal", 1000),
        (98_000, "cautious", 750),
        (96_000, "defensive", 500),
        (94_000, "critical", 250),
        (92_000, "halted", 0),
        (50_000, "halted", 0),
    ],
)
def test_the_most_severe_mode_whose_when_holds_applies(
    equity: float, mode: str, approved: float
) -> None:
    policy = load_policy_text(LADDER)
    snap = PortfolioSnapshot(equity=equity, peak_equity=100_000)
    verdict = policy.evaluate(PortfolioIntent.model_validate(intent(1)), snap)
    assert verdict.mode == mode
    assert verdict.approved_risk_abs == approved
    assert policy.envelope(snap).portfolio_mode == mode
    assert policy.mode_of(snap).level == list(policy.declared_modes).index(mode)


def test_a_mode_inherits_from_the_one_before_it_as_written() -> None:
    policy = load_policy_text(LADDER)
    modes = {m.name: m.values for m in policy.data.modes}
    assert [m.name for m in policy.data.modes] == [
        "normal",
        "cautious",
        "defensive",
        "critical",
        "halted",
    ]
    assert modes["halted"]["max_new"] == 1  # set in `critical`, inherited by `halted`
    assert modes["critical"]["flatten_only"] is False


def test_an_override_names_any_declared_mode_and_the_stricter_one_applies() -> None:
    ctl = PortfolioController(load_policy_text(LADDER), equity=100_000, clock=None)
    envelope = ctl.set_portfolio_mode("critical", "judge", at(0))
    assert envelope.portfolio_mode == "critical"
    decision = ctl.request_allocation(intent(1))
    assert decision.mode == "critical" and decision.mode_source == "override"
    assert decision.approved_risk_abs == 250
    ctl.update_equity(91_000, at(2))  # the drawdown selects `halted`, stricter than the override
    decision = ctl.request_allocation(intent(3))
    assert decision.mode == "halted" and decision.mode_source == "drawdown"
    assert decision.decision_code == "rejected_flatten_only"


def test_an_override_of_an_undeclared_mode_is_refused_with_a_suggestion() -> None:
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(load_policy_text(LADDER), equity=100_000, clock=None, journal=journal)
    with pytest.raises(EventError, match=r"'cautios' is not declared .*did you mean `cautious`"):
        ctl.set_portfolio_mode("cautios", "typo", at(0))
    with pytest.raises(EventError, match="must be a mode's name"):
        ctl.set_portfolio_mode("risk off!", "x", at(0))
    assert [e["type"] for e in journal] == ["policy", "equity"]  # nothing journaled


def test_a_snapshot_overriding_an_undeclared_mode_fails_closed() -> None:
    policy = load_policy_text(LADDER)
    snap = PortfolioSnapshot(equity=100_000, mode_override="risk_off")
    verdict = policy.evaluate(PortfolioIntent.model_validate(intent(1)), snap)
    assert verdict.decision_code == "rejected_eval_error"
    assert "`risk_off` is not a mode the policy declares" in verdict.reasons[0]
    assert policy.interpret(PortfolioIntent.model_validate(intent(1)), snap)[0] == 2


def test_normal_must_come_first() -> None:
    swapped = textwrap.dedent(
        """\
        api_version: policy-engine/v1
        name: t
        version: 1
        modes:
          cautious: {risk_multiplier: 0.5, when: "portfolio.drawdown >= 2%"}
          normal: {}
        rules: [{id: a, require: "true"}]
        """
    )
    with pytest.raises(PolicyError) as info:
        load_policy_text(swapped)
    assert [x.format() for x in info.value.diagnostics] == [
        "<policy>:5:3: PT111 `normal` must be the first mode (modes run mildest to most "
        "severe as written), not `cautious`"
    ]


def test_tier_lints_compare_every_neighbouring_pair() -> None:
    loosening = LADDER.replace(
        'critical: {risk_multiplier: 0.25, max_new: 1, when: "portfolio.drawdown >= 6%"}',
        'critical: {risk_multiplier: 0.6, max_new: 1, when: "portfolio.drawdown >= 3%"}',
    )
    found = [x.format() for x in check_bytes(loosening.encode(), "l.yaml").diagnostics]
    assert found == [
        "l.yaml:9:31: PT407 mode `critical` has `risk_multiplier` 0.6, above 0.5 in "
        "`defensive`: multipliers must not grow",
        "l.yaml:9:77: PT407 mode `critical` starts at drawdown 3%, not above `defensive` at "
        "4%: thresholds must rise",
    ]
    assert check_bytes(LADDER.encode(), "ok.yaml").diagnostics == []
